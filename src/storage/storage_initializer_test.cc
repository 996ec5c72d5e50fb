#include "storage/storage_initializer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <thread>

#include "storage/test_archives.h"
#include "storage/test_http_server.h"

namespace quiver::storage {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::ReadFile;
using testing::Reply;
using testing::SeenRequest;
using testing::TempDir;
using testing::TestHttpServer;
using testing::WriteArchive;

// Files served by path, with an ETag each; statuses to answer first, per path.
class FileHost {
 public:
  void Put(const std::string& path, std::string body, std::string etag = "") {
    std::lock_guard<std::mutex> lock(mu_);
    files_[path] = {std::move(body), std::move(etag)};
  }
  void FailNext(const std::string& path, std::vector<int> statuses) {
    std::lock_guard<std::mutex> lock(mu_);
    failures_[path] = std::move(statuses);
  }
  Reply Handle(const SeenRequest& r) {
    std::lock_guard<std::mutex> lock(mu_);
    auto f = failures_.find(r.target);
    if (f != failures_.end() && !f->second.empty() && r.method == "GET") {
      int status = f->second.front();
      f->second.erase(f->second.begin());
      return Reply{status, "try later", {}};
    }
    auto it = files_.find(r.target);
    if (it == files_.end()) return Reply{404, "not found", {}};
    Reply reply{200, it->second.first, {}};
    if (!it->second.second.empty()) reply.headers.push_back({"ETag", it->second.second});
    return reply;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::pair<std::string, std::string>> files_;
  std::map<std::string, std::vector<int>> failures_;
};

class StorageInitializerTest : public ::testing::Test {
 protected:
  std::unique_ptr<StorageInitializer> Make(Environment env = {}) {
    StorageOptions options;
    options.cache_dir = tmp_.path() / "cache";
    options.pvc_root = tmp_.path() / "pvc";
    options.env = std::move(env);
    options.retry = RetryPolicy{3, milliseconds(100), milliseconds(1000)};
    options.sleeper = [this](milliseconds d) {
      std::lock_guard<std::mutex> lock(mu_);
      slept_.push_back(d);
    };
    options.transfer.connect_timeout = milliseconds(2000);
    options.transfer.request_timeout = milliseconds(5000);
    auto made = StorageInitializer::Create(std::move(options));
    EXPECT_TRUE(made.ok()) << made.status().ToString();
    return std::move(made).value();
  }
  std::vector<milliseconds> Slept() {
    std::lock_guard<std::mutex> lock(mu_);
    return slept_;
  }
  int StagingLeft() {
    return static_cast<int>(std::distance(fs::directory_iterator(tmp_.path() / "cache/staging"),
                                          fs::directory_iterator()));
  }

  TempDir tmp_;
  FileHost host_;
  TestHttpServer server_{[this](const SeenRequest& r) { return host_.Handle(r); }};
  std::mutex mu_;
  std::vector<milliseconds> slept_;
};

TEST_F(StorageInitializerTest, HttpFileIsDownloadedUnderItsNameThenServedFromTheCache) {
  host_.Put("/models/model.bst", "weights-v1", "\"v1\"");
  auto storage = Make();
  std::vector<ProgressUpdate> updates;
  Progress progress = [&](const ProgressUpdate& p) { updates.push_back(p); };
  const std::string uri = server_.url("/models/model.bst");

  auto first = storage->Materialize(uri, progress, nullptr);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_FALSE(first->from_cache);
  EXPECT_EQ(first->bytes_downloaded, 10u);
  EXPECT_EQ(ReadFile(first->model_dir / "model.bst"), "weights-v1");
  ASSERT_FALSE(updates.empty());
  EXPECT_EQ(updates.back().bytes_done, 10u);
  EXPECT_EQ(updates.back().bytes_total, 10u);
  EXPECT_EQ(updates.back().current_file, "model.bst");

  auto second = storage->Materialize(uri, {}, nullptr);
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->from_cache);
  EXPECT_EQ(second->model_dir, first->model_dir);
  EXPECT_EQ(server_.Count("GET"), 1);  // validated with a HEAD, not downloaded again
  EXPECT_EQ(server_.Count("HEAD"), 2);

  // A new version behind the same URI is downloaded into a new entry.
  host_.Put("/models/model.bst", "weights-v2", "\"v2\"");
  auto third = storage->Materialize(uri, {}, nullptr);
  ASSERT_TRUE(third.ok());
  EXPECT_FALSE(third->from_cache);
  EXPECT_NE(third->model_dir, first->model_dir);
  EXPECT_EQ(ReadFile(third->model_dir / "model.bst"), "weights-v2");
  EXPECT_EQ(server_.Count("GET"), 2);
}

TEST_F(StorageInitializerTest, ArchivesAreUnpacked) {
  fs::path tgz = tmp_.path() / "m.tar.gz";
  fs::path zip = tmp_.path() / "m.zip";
  ASSERT_TRUE(WriteArchive(
      tgz, "tar.gz", {testing::File("model.bst", "tree"), testing::File("cfg/c.yaml", "a: 1")}));
  ASSERT_TRUE(WriteArchive(zip, "zip", {testing::File("model.onnx", "graph")}));
  host_.Put("/m.tar.gz", ReadFile(tgz), "\"t\"");
  host_.Put("/m.zip", ReadFile(zip), "\"z\"");
  auto storage = Make();
  auto a = storage->Materialize(server_.url("/m.tar.gz"), {}, nullptr);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(ReadFile(a->model_dir / "model.bst"), "tree");
  EXPECT_EQ(ReadFile(a->model_dir / "cfg/c.yaml"), "a: 1");
  EXPECT_FALSE(fs::exists(a->model_dir / "m.tar.gz"));  // the archive itself is not kept
  auto z = storage->Materialize(server_.url("/m.zip"), {}, nullptr);
  ASSERT_TRUE(z.ok()) << z.status().ToString();
  EXPECT_EQ(ReadFile(z->model_dir / "model.onnx"), "graph");
}

TEST_F(StorageInitializerTest, CorruptArchiveFailsNamingTheUriAndLeavesNothing) {
  host_.Put("/bad.tgz", "this is not gzip", "\"b\"");
  auto storage = Make();
  const std::string uri = server_.url("/bad.tgz");
  auto r = storage->Materialize(uri, {}, nullptr);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("archive '" + uri + "' is corrupt"));
  EXPECT_EQ(StagingLeft(), 0);
  EXPECT_EQ(server_.Count("GET"), 1);  // a corrupt file is not retried
  // Nothing was cached: the next attempt downloads again.
  (void)storage->Materialize(uri, {}, nullptr);
  EXPECT_EQ(server_.Count("GET"), 2);
}

TEST_F(StorageInitializerTest, NotFoundIsReportedAndNotRetried) {
  auto storage = Make();
  const std::string uri = server_.url("/missing/model.bst");
  auto r = storage->Materialize(uri, {}, nullptr);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr(uri));
  EXPECT_THAT(r.status().message(), HasSubstr("HTTP 404"));
  EXPECT_EQ(server_.requests().size(), 1u);
  EXPECT_TRUE(Slept().empty());
}

TEST_F(StorageInitializerTest, TransientFailuresAreRetriedWithBackoff) {
  host_.Put("/m.bin", "bytes", "\"e\"");
  host_.FailNext("/m.bin", {503, 429});
  auto storage = Make();
  auto r = storage->Materialize(server_.url("/m.bin"), {}, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadFile(r->model_dir / "m.bin"), "bytes");
  EXPECT_EQ(server_.Count("GET"), 3);
  EXPECT_THAT(Slept(), ElementsAre(milliseconds(100), milliseconds(200)));
}

TEST_F(StorageInitializerTest, PersistentServerErrorsGiveUpAfterTheAttempts) {
  host_.Put("/m.bin", "bytes", "\"e\"");
  host_.FailNext("/m.bin", {500, 502, 503, 504});
  auto storage = Make();
  auto r = storage->Materialize(server_.url("/m.bin"), {}, nullptr);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("HTTP 503"));
  EXPECT_EQ(server_.Count("GET"), 3);
  EXPECT_EQ(StagingLeft(), 0);
}

TEST_F(StorageInitializerTest, ConnectionRefusedNamesTheHost) {
  int port = 0;
  {
    TestHttpServer closed([](const SeenRequest&) { return Reply{}; });
    port = closed.port();
  }
  auto storage = Make();
  const std::string host = "127.0.0.1:" + std::to_string(port);
  auto r = storage->Materialize("http://" + host + "/m.bin", {}, nullptr);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("could not connect to '" + host + "'"));
  EXPECT_EQ(Slept().size(), 2u);  // three attempts
}

TEST_F(StorageInitializerTest, UnresolvableHostIsNamed) {
  auto storage = Make();
  auto r = storage->Materialize("http://no-such-host.invalid/m.bin", {}, nullptr);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("could not resolve host 'no-such-host.invalid'"));
}

TEST_F(StorageInitializerTest, ConcurrentCallsForOneUriDownloadOnce) {
  host_.Put("/big.bin", std::string(4 << 20, 'x'), "\"big\"");
  auto storage = Make();
  const std::string uri = server_.url("/big.bin");
  StatusOr<MaterializedModel> a = Internal("unset"), b = Internal("unset");
  std::thread t1([&] { a = storage->Materialize(uri, {}, nullptr); });
  std::thread t2([&] { b = storage->Materialize(uri, {}, nullptr); });
  t1.join();
  t2.join();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(server_.Count("GET"), 1);
  EXPECT_EQ(a->model_dir, b->model_dir);
  EXPECT_NE(a->from_cache, b->from_cache);
}

TEST_F(StorageInitializerTest, WithoutAValidatorEveryCallDownloads) {
  host_.Put("/plain.bin", "v", "");  // neither ETag nor Last-Modified
  auto storage = Make();
  auto a = storage->Materialize(server_.url("/plain.bin"), {}, nullptr);
  auto b = storage->Materialize(server_.url("/plain.bin"), {}, nullptr);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_FALSE(b->from_cache);
  EXPECT_EQ(server_.Count("GET"), 2);
}

TEST_F(StorageInitializerTest, CancelStopsADownload) {
  host_.Put("/huge.bin", std::string(64 << 20, 'y'), "\"h\"");
  auto storage = Make();
  std::atomic<bool> cancel{false};
  Progress progress = [&](const ProgressUpdate& p) {
    if (p.bytes_done > 0) cancel = true;
  };
  auto r = storage->Materialize(server_.url("/huge.bin"), progress, &cancel);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("cancelled"));
  EXPECT_EQ(server_.Count("GET"), 1);
  EXPECT_EQ(StagingLeft(), 0);
}

TEST_F(StorageInitializerTest, LocalFileAndPvcPathsAreUsedInPlace) {
  testing::WriteFile(tmp_.path() / "local/model.bst", "m");
  testing::WriteFile(tmp_.path() / "pvc/claim-a/models/iris/model.bst", "p");
  auto storage = Make();
  auto local = storage->Materialize((tmp_.path() / "local").string(), {}, nullptr);
  ASSERT_TRUE(local.ok());
  EXPECT_TRUE(local->in_place);
  EXPECT_EQ(local->model_dir, tmp_.path() / "local");
  auto file = storage->Materialize("file://" + (tmp_.path() / "local").string(), {}, nullptr);
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(file->model_dir, tmp_.path() / "local");
  auto pvc = storage->Materialize("pvc://claim-a/models/iris", {}, nullptr);
  ASSERT_TRUE(pvc.ok());
  EXPECT_EQ(pvc->model_dir, tmp_.path() / "pvc/claim-a/models/iris");
  EXPECT_EQ(ReadFile(pvc->model_dir / "model.bst"), "p");

  auto missing = storage->Materialize((tmp_.path() / "nope").string(), {}, nullptr);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr((tmp_.path() / "nope").string()));
  auto missing_pvc = storage->Materialize("pvc://claim-b/x", {}, nullptr);
  EXPECT_EQ(missing_pvc.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing_pvc.status().message(), HasSubstr("pvc/claim-b/x"));
  auto gs = storage->Materialize("gs://bucket/model", {}, nullptr);
  EXPECT_EQ(gs.status().code(), StatusCode::kUnimplemented);
  EXPECT_THAT(gs.status().message(), HasSubstr("gs://"));
  // Nothing was downloaded or cached for these.
  EXPECT_TRUE(server_.requests().empty());
}

TEST(StorageInitializerCreateTest, BadEnvironmentIsRejectedAtCreate) {
  StorageOptions options;
  options.env = {{"S3_USE_HTTPS", "2"}};
  auto made = StorageInitializer::Create(options);
  EXPECT_EQ(made.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(made.status().message(), HasSubstr("S3_USE_HTTPS"));
  StorageOptions no_cache;
  auto storage = StorageInitializer::Create(no_cache);
  ASSERT_TRUE(storage.ok());
  auto r = (*storage)->Materialize("http://127.0.0.1:1/m.bin", {}, nullptr);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("cache directory"));
}

// ---- S3, against a small fake speaking the parts of the protocol the initializer uses ----

class FakeS3 {
 public:
  explicit FakeS3(std::string bucket) : bucket_(std::move(bucket)) {}
  void Put(const std::string& key, std::string body) {
    std::lock_guard<std::mutex> lock(mu_);
    objects_[key] = std::move(body);
  }
  Reply Handle(const SeenRequest& r) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!error_code_.empty()) {
      return Reply{error_status_,
                   "<?xml version=\"1.0\"?><Error><Code>" + error_code_ +
                       "</Code><Message>nope</Message></Error>",
                   {}};
    }
    std::string path = r.target.substr(0, r.target.find('?'));
    std::string query =
        r.target.find('?') == std::string::npos ? "" : r.target.substr(r.target.find('?') + 1);
    if (path.rfind("/" + bucket_, 0) != 0) {
      return Reply{404, "<Error><Code>NoSuchBucket</Code><Message>none</Message></Error>", {}};
    }
    if (path == "/" + bucket_ + "/" && query.find("list-type=2") != std::string::npos) {
      return List(query);
    }
    std::string key = path.substr(bucket_.size() + 2);
    auto it = objects_.find(key);
    if (it == objects_.end()) return Reply{404, "<Error><Code>NoSuchKey</Code></Error>", {}};
    return Reply{200, it->second, {{"ETag", "\"" + std::to_string(it->second.size()) + "\""}}};
  }
  void FailWith(int status, std::string code) {
    std::lock_guard<std::mutex> lock(mu_);
    error_status_ = status;
    error_code_ = std::move(code);
  }

 private:
  static std::string Param(const std::string& query, const std::string& name) {
    size_t pos = ("&" + query).find("&" + name + "=");
    if (pos == std::string::npos) return "";
    size_t start = pos + name.size() + 1;
    size_t end = query.find('&', start);
    std::string raw =
        query.substr(start, end == std::string::npos ? std::string::npos : end - start);
    std::string out;  // %XX decoding
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '%' && i + 2 < raw.size()) {
        out.push_back(static_cast<char>(std::stoi(raw.substr(i + 1, 2), nullptr, 16)));
        i += 2;
      } else {
        out.push_back(raw[i]);
      }
    }
    return out;
  }
  // Two keys per page, so that pagination is exercised.
  Reply List(const std::string& query) {
    std::string prefix = Param(query, "prefix");
    std::string token = Param(query, "continuation-token");
    std::vector<std::string> keys;
    for (const auto& [key, body] : objects_) {
      if (key.rfind(prefix, 0) == 0) keys.push_back(key);
    }
    size_t start = token.empty() ? 0 : std::stoul(token.substr(4));
    std::string xml = "<?xml version=\"1.0\"?><ListBucketResult><Name>" + bucket_ + "</Name>";
    size_t end = std::min(keys.size(), start + 2);
    for (size_t i = start; i < end; ++i) {
      xml += "<Contents><Key>" + keys[i] + "</Key><ETag>&quot;" +
             std::to_string(objects_[keys[i]].size()) + "&quot;</ETag><Size>" +
             std::to_string(objects_[keys[i]].size()) + "</Size></Contents>";
    }
    bool truncated = end < keys.size();
    xml += std::string("<IsTruncated>") + (truncated ? "true" : "false") + "</IsTruncated>";
    if (truncated)
      xml += "<NextContinuationToken>tok/" + std::to_string(end) + "</NextContinuationToken>";
    xml += "</ListBucketResult>";
    return Reply{200, xml, {{"Content-Type", "application/xml"}}};
  }

  std::mutex mu_;
  std::string bucket_;
  std::map<std::string, std::string> objects_;
  int error_status_ = 0;
  std::string error_code_;
};

class S3Test : public StorageInitializerTest {
 protected:
  Environment Env(bool credentials = true) {
    Environment env = {
        {"AWS_ENDPOINT_URL", "http://127.0.0.1:" + std::to_string(s3_server_.port())},
        {"AWS_DEFAULT_REGION", "eu-west-1"}};
    if (credentials) {
      env["AWS_ACCESS_KEY_ID"] = "AKIDTEST";
      env["AWS_SECRET_ACCESS_KEY"] = "secret";
    }
    return env;
  }
  int ObjectGets() {
    int n = 0;
    for (const SeenRequest& r : s3_server_.requests()) {
      n += r.method == "GET" && r.target.find('?') == std::string::npos ? 1 : 0;
    }
    return n;
  }
  FakeS3 s3_{"bkt"};
  TestHttpServer s3_server_{[this](const SeenRequest& r) { return s3_.Handle(r); }};
};

TEST_F(S3Test, DownloadsEveryObjectUnderThePrefixSignedThenUsesTheCache) {
  s3_.Put("models/iris/model.bst", "tree");
  s3_.Put("models/iris/config.yaml", "format: xgboost");
  s3_.Put("models/iris/sub/vocab.txt", "a b c");
  s3_.Put("models/iris2/other.bin", "must not be taken");
  auto storage = Make(Env());
  auto r = storage->Materialize("s3://bkt/models/iris", {}, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadFile(r->model_dir / "model.bst"), "tree");
  EXPECT_EQ(ReadFile(r->model_dir / "config.yaml"), "format: xgboost");
  EXPECT_EQ(ReadFile(r->model_dir / "sub/vocab.txt"), "a b c");
  EXPECT_FALSE(fs::exists(r->model_dir / "other.bin"));
  EXPECT_FALSE(fs::exists(r->model_dir.parent_path() / "iris2"));
  EXPECT_EQ(r->bytes_downloaded, 4u + 15u + 5u);
  EXPECT_EQ(ObjectGets(), 3);

  // Path-style requests to the custom endpoint, signed for the region from the environment.
  bool saw_object = false;
  for (SeenRequest req : s3_server_.requests()) {
    EXPECT_THAT(req.headers["authorization"], HasSubstr("AWS4-HMAC-SHA256 Credential=AKIDTEST/"));
    EXPECT_THAT(req.headers["authorization"], HasSubstr("/eu-west-1/s3/aws4_request"));
    EXPECT_EQ(req.headers["x-amz-content-sha256"],
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    saw_object |= req.target == "/bkt/models/iris/model.bst";
  }
  EXPECT_TRUE(saw_object);

  auto again = storage->Materialize("s3://bkt/models/iris", {}, nullptr);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->from_cache);
  EXPECT_EQ(ObjectGets(), 3);  // only listed

  s3_.Put("models/iris/model.bst", "retrained");
  auto changed = storage->Materialize("s3://bkt/models/iris", {}, nullptr);
  ASSERT_TRUE(changed.ok());
  EXPECT_FALSE(changed->from_cache);
  EXPECT_EQ(ReadFile(changed->model_dir / "model.bst"), "retrained");
}

TEST_F(S3Test, ASingleObjectKeyWorksAndAnonymousRequestsAreUnsigned) {
  s3_.Put("models/m.onnx", "graph");
  auto storage = Make(Env(/*credentials=*/false));
  auto r = storage->Materialize("s3://bkt/models/m.onnx", {}, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadFile(r->model_dir / "m.onnx"), "graph");
  for (const SeenRequest& req : s3_server_.requests()) {
    EXPECT_EQ(req.headers.count("authorization"), 0u) << req.target;
  }
}

TEST_F(S3Test, ErrorsNameTheBucketTheCodeAndThePrefix) {
  auto storage = Make(Env());
  auto bucket = storage->Materialize("s3://nobucket/models", {}, nullptr);
  EXPECT_EQ(bucket.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(bucket.status().message(), HasSubstr("bucket 'nobucket' does not exist"));

  auto empty = storage->Materialize("s3://bkt/models/none", {}, nullptr);
  EXPECT_EQ(empty.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(empty.status().message(), HasSubstr("no objects under prefix 'models/none'"));

  s3_.FailWith(403, "InvalidAccessKeyId");
  auto denied = storage->Materialize("s3://bkt/models", {}, nullptr);
  EXPECT_EQ(denied.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(denied.status().message(), HasSubstr("HTTP 403 (InvalidAccessKeyId: nope)"));
  EXPECT_THAT(denied.status().message(), HasSubstr("s3://bkt/models"));
  EXPECT_TRUE(Slept().empty());  // none of these is retried

  s3_.FailWith(503, "SlowDown");
  auto slow = storage->Materialize("s3://bkt/models", {}, nullptr);
  EXPECT_EQ(slow.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(slow.status().message(), HasSubstr("SlowDown"));
  EXPECT_EQ(Slept().size(), 2u);
}

TEST_F(S3Test, KeysThatWouldEscapeTheModelDirectoryAreRefused) {
  s3_.Put("models/a/../../escape.bin", "x");
  auto storage = Make(Env());
  auto r = storage->Materialize("s3://bkt/models/a", {}, nullptr);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("'models/a/../../escape.bin'"));
}

}  // namespace
}  // namespace quiver::storage
