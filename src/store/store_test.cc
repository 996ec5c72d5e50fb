#include "store/store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <string>

#include "store/process_identity.h"

namespace quiver::store {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("quiver_store_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    store_ = OpenStore();
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }

  std::unique_ptr<Store> OpenStore() {
    StoreOptions options;
    options.path = (dir_ / "state.db").string();
    options.clock = [this] { return now_; };
    options.new_uid = [this] { return "uid-" + std::to_string(++uids_); };
    options.max_events_per_resource = 3;
    auto store = Store::Open(options);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(*store) : nullptr;
  }

  static Json Isvc(const std::string& name, int min_replicas, const std::string& ns = "default") {
    Json doc = {{"apiVersion", "serving.kserve.io/v1beta1"},
                {"kind", "InferenceService"},
                {"metadata", {{"name", name}, {"namespace", ns}}},
                {"spec", {{"predictor", {{"minReplicas", min_replicas}}}}}};
    return doc;
  }

  fs::path dir_;
  std::chrono::system_clock::time_point now_ =
      std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));
  int uids_ = 0;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, CreateAssignsKubernetesMetadata) {
  auto created = store_->Create(Isvc("iris", 1));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  const Json& m = (*created)["metadata"];
  EXPECT_EQ(m["uid"], "uid-1");
  EXPECT_EQ(m["generation"], 1);
  EXPECT_EQ(m["resourceVersion"], "1");
  EXPECT_EQ(m["creationTimestamp"], "2027-01-15T08:00:00Z");
  EXPECT_EQ((*created)["spec"]["predictor"]["minReplicas"], 1);

  auto again = store_->Create(Isvc("iris", 2));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  EXPECT_NE(again.status().message().find("default/iris"), std::string::npos);

  // Same name in another namespace is another resource.
  auto other = store_->Create(Isvc("iris", 1, "prod"));
  ASSERT_TRUE(other.ok());
  EXPECT_EQ((*other)["metadata"]["resourceVersion"], "2");
}

TEST_F(StoreTest, ReplaceBumpsGenerationOnlyWhenSpecChanges) {
  ASSERT_TRUE(store_->Create(Isvc("iris", 1)).ok());

  Json labelled = Isvc("iris", 1);
  labelled["metadata"]["labels"] = {{"team", "a"}};
  auto r1 = store_->Replace(labelled);
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  EXPECT_EQ((*r1)["metadata"]["generation"], 1);
  EXPECT_EQ((*r1)["metadata"]["resourceVersion"], "2");
  EXPECT_EQ((*r1)["metadata"]["labels"]["team"], "a");

  Json scaled = labelled;
  scaled["spec"]["predictor"]["minReplicas"] = 3;
  auto r2 = store_->Replace(scaled);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ((*r2)["metadata"]["generation"], 2);
  EXPECT_EQ((*r2)["metadata"]["resourceVersion"], "3");
  EXPECT_EQ((*r2)["metadata"]["uid"], "uid-1");

  // Nothing changed: nothing written.
  auto r3 = store_->Replace(scaled);
  ASSERT_TRUE(r3.ok());
  EXPECT_EQ((*r3)["metadata"]["resourceVersion"], "3");
  EXPECT_EQ(*store_->CurrentResourceVersion(), 3);
}

TEST_F(StoreTest, ReplaceWithStaleResourceVersionConflicts) {
  ASSERT_TRUE(store_->Create(Isvc("iris", 1)).ok());
  Json update = Isvc("iris", 2);
  update["metadata"]["resourceVersion"] = "1";
  ASSERT_TRUE(store_->Replace(update).ok());  // current: version 2

  update["spec"]["predictor"]["minReplicas"] = 5;  // still says version 1
  auto stale = store_->Replace(update);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(stale.status().message().find("has been modified"), std::string::npos);
  EXPECT_EQ((*store_->Get(KeyOf(update)))["spec"]["predictor"]["minReplicas"], 2);

  auto missing = store_->Replace(Isvc("nope", 1));
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST_F(StoreTest, StatusIsSeparateFromSpec) {
  ASSERT_TRUE(store_->Create(Isvc("iris", 1)).ok());
  ResourceKey key{"InferenceService", "default", "iris"};
  auto s = store_->UpdateStatus(key, {{"url", "http://iris.default.example.com"}});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)["metadata"]["generation"], 1);
  EXPECT_EQ((*s)["metadata"]["resourceVersion"], "2");

  // A spec update keeps the status; a status update with a stale version fails.
  auto r = store_->Replace(Isvc("iris", 4));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["status"]["url"], "http://iris.default.example.com");
  auto stale = store_->UpdateStatus(key, {{"url", "x"}}, "2");
  EXPECT_EQ(stale.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store_->UpdateStatus(key, {{"url", "y"}}, "3").ok());
}

TEST_F(StoreTest, ListsByNamespaceOrAll) {
  ASSERT_TRUE(store_->Create(Isvc("b", 1)).ok());
  ASSERT_TRUE(store_->Create(Isvc("a", 1)).ok());
  ASSERT_TRUE(store_->Create(Isvc("c", 1, "prod")).ok());
  Json runtime = {{"apiVersion", "serving.kserve.io/v1alpha1"},
                  {"kind", "ClusterServingRuntime"},
                  {"metadata", {{"name", "rt"}}},
                  {"spec", {{"containers", Json::array()}}}};
  ASSERT_TRUE(store_->Create(runtime).ok());

  auto in_default = store_->List("InferenceService", "default");
  ASSERT_TRUE(in_default.ok());
  ASSERT_EQ(in_default->items.size(), 2u);
  EXPECT_EQ(in_default->items[0]["metadata"]["name"], "a");
  EXPECT_EQ(in_default->items[1]["metadata"]["name"], "b");
  EXPECT_EQ(in_default->resource_version, 4);

  auto all = store_->List("InferenceService", "");
  ASSERT_EQ(all->items.size(), 3u);
  EXPECT_EQ(all->items[2]["metadata"]["namespace"], "prod");

  auto cluster = store_->List("ClusterServingRuntime", "");
  ASSERT_EQ(cluster->items.size(), 1u);
  EXPECT_FALSE(cluster->items[0]["metadata"].contains("namespace"));
}

TEST_F(StoreTest, DeleteHonoursFinalizers) {
  ASSERT_TRUE(store_->Create(Isvc("plain", 1)).ok());
  ResourceKey plain{"InferenceService", "default", "plain"};
  ASSERT_TRUE(store_->RecordEvent(plain, {"", "Normal", "Created", "made"}).ok());
  auto gone = store_->Delete(plain);
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ((*gone)["metadata"]["name"], "plain");
  EXPECT_EQ(store_->Get(plain).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->ListEvents(plain)->empty());
  EXPECT_EQ(store_->Delete(plain).status().code(), StatusCode::kNotFound);

  Json guarded = Isvc("guarded", 1);
  guarded["metadata"]["finalizers"] = {"quiver.dev/replicas"};
  ASSERT_TRUE(store_->Create(guarded).ok());
  ResourceKey key = KeyOf(guarded);
  now_ += 30s;
  auto marked = store_->Delete(key);
  ASSERT_TRUE(marked.ok());
  EXPECT_EQ((*marked)["metadata"]["deletionTimestamp"], "2027-01-15T08:00:30Z");
  ASSERT_TRUE(store_->Get(key).ok());

  guarded["metadata"].erase("finalizers");
  ASSERT_TRUE(store_->Replace(guarded).ok());
  EXPECT_EQ(store_->Get(key).status().code(), StatusCode::kNotFound);
}

TEST_F(StoreTest, RevisionsAndReplicas) {
  ComponentKey predictor{"default", "iris", "predictor"};
  auto r1 = store_->CreateRevision(predictor, "fp1", {{"minReplicas", 1}});
  auto r2 = store_->CreateRevision(predictor, "fp2", {{"minReplicas", 2}});
  ASSERT_TRUE(r1.ok() && r2.ok());
  EXPECT_EQ(r1->name, "iris-predictor-00001");
  EXPECT_EQ(r2->name, "iris-predictor-00002");
  ASSERT_TRUE(store_->UpdateRevisionState(predictor, r2->name, {{"ready", true}}).ok());
  EXPECT_EQ(store_->UpdateRevisionState(predictor, "iris-predictor-00009", {}).code(),
            StatusCode::kNotFound);

  auto revisions = store_->ListRevisions(predictor);
  ASSERT_EQ(revisions->size(), 2u);
  EXPECT_EQ((*revisions)[1].fingerprint, "fp2");
  EXPECT_EQ((*revisions)[1].state["ready"], true);
  EXPECT_EQ((*revisions)[0].spec["minReplicas"], 1);

  Replica a{predictor, r2->name, 0, 4242, 99, {8080, 8081}, "/tmp/a.log", "ready"};
  Replica b{predictor, r1->name, 0, 4241, 98, {9000}, "/tmp/b.log", "draining"};
  ASSERT_TRUE(store_->PutReplica(a).ok());
  ASSERT_TRUE(store_->PutReplica(b).ok());
  a.state = "failed";
  ASSERT_TRUE(store_->PutReplica(a).ok());  // upsert
  auto replicas = store_->ListReplicas(predictor);
  ASSERT_EQ(replicas->size(), 2u);
  EXPECT_EQ((*replicas)[0].revision, r1->name);  // by revision ordinal
  EXPECT_EQ((*replicas)[1].state, "failed");
  EXPECT_EQ((*replicas)[1].ports, (std::vector<int>{8080, 8081}));
  EXPECT_EQ((*replicas)[1].process_start_time, 99u);

  ASSERT_TRUE(store_->DeleteRevision(predictor, r1->name).ok());
  EXPECT_EQ(store_->ListReplicas(predictor)->size(), 1u);
  // Ordinals keep counting from the highest one left.
  EXPECT_EQ(store_->CreateRevision(predictor, "fp3", {})->name, "iris-predictor-00003");
}

TEST_F(StoreTest, EventsAreBoundedPerResource) {
  ResourceKey key{"InferenceService", "default", "iris"};
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(store_->RecordEvent(key, {"", "Normal", "Step", std::to_string(i)}).ok());
  }
  ASSERT_TRUE(
      store_->RecordEvent({"InferenceService", "default", "other"}, {"", "Warning", "Failed", "x"})
          .ok());
  auto events = store_->ListEvents(key);
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ((*events)[0].message, "2");
  EXPECT_EQ((*events)[2].message, "4");
  EXPECT_EQ((*events)[2].time, "2027-01-15T08:00:00Z");
  auto bad = store_->RecordEvent(key, {"", "Info", "x", "y"});
  EXPECT_NE(bad.message().find("Normal or Warning"), std::string::npos);
}

TEST_F(StoreTest, SurvivesReopen) {
  ASSERT_TRUE(store_->Create(Isvc("iris", 1)).ok());
  ASSERT_TRUE(store_->Replace(Isvc("iris", 2)).ok());
  ComponentKey predictor{"default", "iris", "predictor"};
  ASSERT_TRUE(store_->CreateRevision(predictor, "fp", {}).ok());
  store_.reset();

  store_ = OpenStore();
  auto got = store_->Get({"InferenceService", "default", "iris"});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)["metadata"]["uid"], "uid-1");
  EXPECT_EQ((*got)["metadata"]["resourceVersion"], "2");
  EXPECT_EQ((*got)["metadata"]["generation"], 2);
  EXPECT_EQ(store_->ListRevisions(predictor)->size(), 1u);
  // The version counter continues rather than restarting.
  EXPECT_EQ((*store_->Create(Isvc("next", 1)))["metadata"]["resourceVersion"], "3");
}

TEST_F(StoreTest, RefusesNewerSchema) {
  store_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "state.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  StoreOptions options;
  options.path = (dir_ / "state.db").string();
  auto store = Store::Open(options);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("schema version 99"), std::string::npos);
}

// A writer killed with SIGKILL at an arbitrary point: every write it reported as committed is
// there after reopening, and the database is intact.
TEST_F(StoreTest, KilledWriterLosesNothingCommitted) {
  store_.reset();
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(pipe_fds[0]);
    StoreOptions options;
    options.path = (dir_ / "state.db").string();
    auto store = Store::Open(options);
    if (!store.ok()) _exit(2);
    for (int i = 0;; ++i) {
      if (!(*store)->Create(Isvc("m" + std::to_string(i), i % 7)).ok()) _exit(3);
      char ack = 1;
      if (write(pipe_fds[1], &ack, 1) != 1) _exit(4);
    }
  }
  close(pipe_fds[1]);
  int acked = 0;
  char ack;
  while (acked < 200 && read(pipe_fds[0], &ack, 1) == 1) ++acked;
  kill(child, SIGKILL);  // mid-way through whatever it was doing
  int wstatus = 0;
  waitpid(child, &wstatus, 0);
  // Acknowledgements still in the pipe were sent after their commits too.
  while (read(pipe_fds[0], &ack, 1) == 1) ++acked;
  close(pipe_fds[0]);
  ASSERT_TRUE(WIFSIGNALED(wstatus)) << "child exited with " << WEXITSTATUS(wstatus);
  ASSERT_GE(acked, 200);

  store_ = OpenStore();
  auto list = store_->List("InferenceService", "default");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_GE(static_cast<int>(list->items.size()), acked);
  std::set<std::string> names;
  for (const auto& item : list->items) names.insert(item["metadata"]["name"]);
  for (int i = 0; i < acked; ++i) {
    ASSERT_TRUE(names.count("m" + std::to_string(i))) << "lost committed record m" << i;
  }
  EXPECT_EQ(
      (*store_->Get({"InferenceService", "default", "m10"}))["spec"]["predictor"]["minReplicas"],
      3);
}

TEST(ProcessIdentityTest, RecognisesTheSameProcessOnly) {
  auto mine = ProcessStartTime(getpid());
  ASSERT_TRUE(mine.ok()) << mine.status().ToString();
  EXPECT_GT(*mine, 0u);
  EXPECT_TRUE(IsSameProcess(getpid(), *mine));
  EXPECT_FALSE(IsSameProcess(getpid(), *mine + 1));

  pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  EXPECT_EQ(ProcessStartTime(child).status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(IsSameProcess(child, *mine));
}

}  // namespace
}  // namespace quiver::store
