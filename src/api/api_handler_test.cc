#include "api/api_handler.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "api/api_server.h"

namespace quiver::api {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

constexpr const char* kIsvcs =
    "/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices";

constexpr const char* kIrisYaml = R"(apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: sklearn-iris
spec:
  predictor:
    model:
      modelFormat:
        name: sklearn
      storageUri: gs://kfserving-examples/models/sklearn/1.0/model
)";

class ApiHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("quiver_api_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    store::StoreOptions options;
    options.path = (dir_ / "state.db").string();
    options.new_uid = [this] { return "uid-" + std::to_string(++uids_); };
    auto s = store::Store::Open(options);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    MakeHandler("");
  }
  void TearDown() override {
    handler_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }

  void MakeHandler(std::string token) {
    ApiHandlerOptions options;
    options.token = std::move(token);
    options.on_change = [this](const store::ResourceKey& key) { changes_.push_back(key); };
    handler_ = std::make_unique<ApiHandler>(store_.get(), options);
  }

  ApiResponse Call(std::string_view method, std::string_view target, std::string_view body = {},
                   std::string_view content_type = "application/json",
                   std::string_view authorization = {}) {
    return handler_->Handle({method, target, content_type, authorization, body});
  }
  static Json Body(const ApiResponse& r) { return Json::parse(r.body); }

  fs::path dir_;
  int uids_ = 0;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<ApiHandler> handler_;
  std::vector<store::ResourceKey> changes_;
};

TEST_F(ApiHandlerTest, CreateFromYamlThenGetAndList) {
  auto created = Call("POST", kIsvcs, kIrisYaml, "application/yaml");
  ASSERT_EQ(created.status, 201) << created.body;
  Json obj = Body(created);
  EXPECT_EQ(obj["metadata"]["namespace"], "default");
  EXPECT_EQ(obj["metadata"]["uid"], "uid-1");
  EXPECT_EQ(obj["metadata"]["resourceVersion"], "1");
  ASSERT_EQ(changes_.size(), 1u);
  EXPECT_EQ(changes_[0].ToString(), "InferenceService/default/sklearn-iris");

  auto got = Call("GET", std::string(kIsvcs) + "/sklearn-iris");
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(Body(got)["spec"]["predictor"]["model"]["modelFormat"]["name"], "sklearn");

  auto list = Call("GET", kIsvcs);
  ASSERT_EQ(list.status, 200);
  Json l = Body(list);
  EXPECT_EQ(l["kind"], "InferenceServiceList");
  EXPECT_EQ(l["apiVersion"], "serving.kserve.io/v1beta1");
  EXPECT_EQ(l["metadata"]["resourceVersion"], "1");
  ASSERT_EQ(l["items"].size(), 1u);

  auto across = Call("GET", "/apis/serving.kserve.io/v1beta1/inferenceservices");
  ASSERT_EQ(across.status, 200);
  EXPECT_EQ(Body(across)["items"].size(), 1u);
  auto other_ns = Call("GET", "/apis/serving.kserve.io/v1beta1/namespaces/prod/inferenceservices");
  EXPECT_EQ(Body(other_ns)["items"].size(), 0u);
}

TEST_F(ApiHandlerTest, ErrorsAreKubernetesStatusObjects) {
  auto missing = Call("GET", std::string(kIsvcs) + "/nope");
  ASSERT_EQ(missing.status, 404);
  Json s = Body(missing);
  EXPECT_EQ(s["kind"], "Status");
  EXPECT_EQ(s["status"], "Failure");
  EXPECT_EQ(s["reason"], "NotFound");
  EXPECT_EQ(s["code"], 404);
  EXPECT_EQ(s["message"], "inferenceservices.serving.kserve.io \"nope\" not found");

  ASSERT_EQ(Call("POST", kIsvcs, kIrisYaml, "application/yaml").status, 201);
  auto dup = Call("POST", kIsvcs, kIrisYaml, "application/yaml");
  EXPECT_EQ(dup.status, 409);
  EXPECT_EQ(Body(dup)["reason"], "AlreadyExists");

  auto wrong_version =
      Call("GET", "/apis/serving.kserve.io/v1alpha1/namespaces/default/inferenceservices");
  EXPECT_EQ(wrong_version.status, 404);
  EXPECT_NE(Body(wrong_version)["message"].get<std::string>().find("v1beta1"), std::string::npos);

  auto garbage = Call("POST", kIsvcs, "{not json", "application/json");
  EXPECT_EQ(garbage.status, 400);
  EXPECT_EQ(Body(garbage)["reason"], "BadRequest");

  auto unknown_kind = Call("GET", "/apis/serving.kserve.io/v1beta1/namespaces/default/pods");
  EXPECT_EQ(unknown_kind.status, 404);
  EXPECT_EQ(Call("PATCH", std::string(kIsvcs) + "/sklearn-iris").status, 405);
}

TEST_F(ApiHandlerTest, ValidationFailuresAre422NamingTheField) {
  std::string bad = std::string(kIrisYaml) + "    minReplicas: -1\n";
  auto r = Call("POST", kIsvcs, bad, "application/yaml");
  ASSERT_EQ(r.status, 422) << r.body;
  Json s = Body(r);
  EXPECT_EQ(s["reason"], "Invalid");
  EXPECT_NE(s["message"].get<std::string>().find("spec.predictor.minReplicas"), std::string::npos)
      << s["message"];
  EXPECT_NE(s["message"].get<std::string>().find("\"sklearn-iris\" is invalid"), std::string::npos);

  std::string unknown = std::string(kIrisYaml) + "    minReplica: 1\n";
  auto u = Call("POST", kIsvcs, unknown, "application/yaml");
  ASSERT_EQ(u.status, 422) << u.body;
  EXPECT_NE(Body(u)["message"].get<std::string>().find("minReplica"), std::string::npos);

  // Knative's autoscaling annotations are checked at admission too.
  std::string window = std::string(kIrisYaml).replace(
      std::string(kIrisYaml).find("spec:"), 0,
      "  annotations:\n    autoscaling.knative.dev/window: \"2s\"\n");
  auto w = Call("POST", kIsvcs, window, "application/yaml");
  ASSERT_EQ(w.status, 422) << w.body;
  EXPECT_NE(Body(w)["message"].get<std::string>().find("autoscaling.knative.dev/window"),
            std::string::npos)
      << w.body;
  EXPECT_NE(Body(w)["message"].get<std::string>().find("2s"), std::string::npos) << w.body;

  auto wrong_ns = Call("POST", "/apis/serving.kserve.io/v1beta1/namespaces/prod/inferenceservices",
                       std::string(kIrisYaml).replace(std::string(kIrisYaml).find("  name:"), 0,
                                                      "  namespace: default\n"),
                       "application/yaml");
  EXPECT_EQ(wrong_ns.status, 400);
  EXPECT_TRUE(changes_.empty());
}

TEST_F(ApiHandlerTest, ReplaceChecksResourceVersion) {
  Json obj = Body(Call("POST", kIsvcs, kIrisYaml, "application/yaml"));
  obj["spec"]["predictor"]["minReplicas"] = 2;
  auto replaced = Call("PUT", std::string(kIsvcs) + "/sklearn-iris", obj.dump());
  ASSERT_EQ(replaced.status, 200) << replaced.body;
  EXPECT_EQ(Body(replaced)["metadata"]["generation"], 2);
  EXPECT_EQ(Body(replaced)["metadata"]["resourceVersion"], "2");

  // obj still carries resourceVersion "1".
  obj["spec"]["predictor"]["minReplicas"] = 3;
  auto stale = Call("PUT", std::string(kIsvcs) + "/sklearn-iris", obj.dump());
  ASSERT_EQ(stale.status, 409);
  EXPECT_EQ(Body(stale)["reason"], "Conflict");
  EXPECT_NE(Body(stale)["message"].get<std::string>().find("has been modified"), std::string::npos);

  auto renamed = Call("PUT", std::string(kIsvcs) + "/other", Body(replaced).dump());
  EXPECT_EQ(renamed.status, 400);
}

TEST_F(ApiHandlerTest, StatusSubresourceAndDelete) {
  ASSERT_EQ(Call("POST", kIsvcs, kIrisYaml, "application/yaml").status, 201);
  Json status_body = {{"status", {{"url", "http://sklearn-iris.default.example.com"}}}};
  auto st = Call("PUT", std::string(kIsvcs) + "/sklearn-iris/status", status_body.dump());
  ASSERT_EQ(st.status, 200) << st.body;
  EXPECT_EQ(Body(st)["status"]["url"], "http://sklearn-iris.default.example.com");
  EXPECT_EQ(Body(st)["metadata"]["generation"], 1);

  auto del = Call("DELETE", std::string(kIsvcs) + "/sklearn-iris");
  ASSERT_EQ(del.status, 200);
  EXPECT_EQ(Body(del)["metadata"]["name"], "sklearn-iris");
  EXPECT_EQ(Call("GET", std::string(kIsvcs) + "/sklearn-iris").status, 404);
  EXPECT_EQ(changes_.size(), 3u);
}

TEST_F(ApiHandlerTest, TokenIsRequiredWhenConfigured) {
  MakeHandler("s3cret");
  EXPECT_EQ(Call("GET", "/healthz").status, 200);
  auto none = Call("GET", kIsvcs);
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(Body(none)["reason"], "Unauthorized");
  EXPECT_EQ(Call("GET", kIsvcs, "", "", "Bearer wrong").status, 401);
  EXPECT_EQ(Call("GET", kIsvcs, "", "", "Bearer s3cret").status, 200);
}

TEST_F(ApiHandlerTest, LogsEventsAndRevisionsComeFromTheStore) {
  ASSERT_EQ(Call("POST", kIsvcs, kIrisYaml, "application/yaml").status, 201);
  std::string base = std::string(kIsvcs) + "/sklearn-iris";
  auto no_replicas = Call("GET", base + "/log");
  EXPECT_EQ(no_replicas.status, 404);

  store::ComponentKey predictor{"default", "sklearn-iris", "predictor"};
  auto rev = store_->CreateRevision(predictor, "fp", Json::object());
  ASSERT_TRUE(rev.ok());
  fs::path log = dir_ / "replica.log";
  std::ofstream(log) << "loaded model sklearn-iris\n";
  ASSERT_TRUE(
      store_->PutReplica({predictor, rev->name, 0, 1, 1, {8080}, log.string(), "Ready"}).ok());
  auto logs = Call("GET", base + "/log?component=predictor");
  ASSERT_EQ(logs.status, 200);
  EXPECT_EQ(logs.body, "loaded model sklearn-iris\n");
  EXPECT_EQ(Call("GET", base + "/log?component=router").status, 400);

  ASSERT_TRUE(store_
                  ->RecordEvent({"InferenceService", "default", "sklearn-iris"},
                                {"", "Normal", "RevisionCreated", "made " + rev->name})
                  .ok());
  auto events = Body(Call("GET", base + "/events"));
  ASSERT_EQ(events["items"].size(), 1u);
  EXPECT_EQ(events["items"][0]["reason"], "RevisionCreated");

  auto revisions = Body(Call("GET", base + "/revisions"));
  ASSERT_EQ(revisions["items"].size(), 1u);
  EXPECT_EQ(revisions["items"][0]["name"], "sklearn-iris-predictor-00001");
  EXPECT_EQ(revisions["items"][0]["replicas"][0]["ports"][0], 8080);
}

TEST(LoopbackTest, KnowsLoopbackAddresses) {
  EXPECT_TRUE(IsLoopbackAddress("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackAddress("127.1.2.3"));
  EXPECT_TRUE(IsLoopbackAddress("::1"));
  EXPECT_TRUE(IsLoopbackAddress("localhost"));
  EXPECT_FALSE(IsLoopbackAddress("0.0.0.0"));
  EXPECT_FALSE(IsLoopbackAddress("192.168.1.4"));
  EXPECT_FALSE(IsLoopbackAddress("::"));
}

}  // namespace
}  // namespace quiver::api
