#include "storage/storage_uri.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "storage/sha256.h"

namespace quiver::storage {
namespace {

using ::testing::HasSubstr;

TEST(StorageUriTest, LocalPathsWithoutScheme) {
  auto uri = ParseStorageUri("/models/iris");
  ASSERT_TRUE(uri.ok());
  EXPECT_EQ(uri->scheme, UriScheme::kLocal);
  EXPECT_EQ(uri->path, "/models/iris");
  auto relative = ParseStorageUri("models/iris");
  ASSERT_TRUE(relative.ok());
  EXPECT_EQ(relative->path, "models/iris");
}

TEST(StorageUriTest, FileUriIsDecodedAndMustBeAbsolute) {
  auto uri = ParseStorageUri("file:///srv/my%20model");
  ASSERT_TRUE(uri.ok());
  EXPECT_EQ(uri->scheme, UriScheme::kFile);
  EXPECT_EQ(uri->path, "/srv/my model");
  auto host = ParseStorageUri("file://localhost/srv/m");
  ASSERT_TRUE(host.ok());
  EXPECT_EQ(host->path, "/srv/m");
  auto relative = ParseStorageUri("file://models/m");
  EXPECT_EQ(relative.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(relative.status().message(), HasSubstr("absolute path"));
  auto bad = ParseStorageUri("file:///m%zz");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("%zz"));
}

TEST(StorageUriTest, HttpTakesTheLastPathSegmentAsFileName) {
  auto uri = ParseStorageUri("https://example.com:8443/a/b/model%2Bv2.tar.gz?sig=abc#frag");
  ASSERT_TRUE(uri.ok());
  EXPECT_EQ(uri->scheme, UriScheme::kHttps);
  EXPECT_EQ(uri->host, "example.com:8443");
  EXPECT_EQ(uri->file_name, "model+v2.tar.gz");
  auto no_file = ParseStorageUri("http://example.com/models/");
  EXPECT_EQ(no_file.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(no_file.status().message(), HasSubstr("names no file"));
  EXPECT_EQ(ParseStorageUri("http:///x").status().code(), StatusCode::kInvalidArgument);
  // A decoded name must not become a path.
  EXPECT_EQ(ParseStorageUri("http://h/a/..%2Fetc").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseStorageUri("http://h/a/%2E%2E").status().code(), StatusCode::kInvalidArgument);
}

TEST(StorageUriTest, S3BucketAndPrefix) {
  auto uri = ParseStorageUri("s3://my-bucket/models/iris/v1");
  ASSERT_TRUE(uri.ok());
  EXPECT_EQ(uri->scheme, UriScheme::kS3);
  EXPECT_EQ(uri->bucket, "my-bucket");
  EXPECT_EQ(uri->key, "models/iris/v1");
  auto whole = ParseStorageUri("s3://my-bucket");
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(whole->key, "");
  auto none = ParseStorageUri("s3:///models");
  EXPECT_EQ(none.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(none.status().message(), HasSubstr("no bucket"));
}

TEST(StorageUriTest, PvcMapsUnderTheRoot) {
  auto uri = ParseStorageUri("pvc://claim-a/models/iris");
  ASSERT_TRUE(uri.ok());
  EXPECT_EQ(uri->scheme, UriScheme::kPvc);
  EXPECT_EQ(PvcPath(*uri, "/mnt/pvc"), std::filesystem::path("/mnt/pvc/claim-a/models/iris"));
  auto claim_only = ParseStorageUri("pvc://claim-a");
  ASSERT_TRUE(claim_only.ok());
  EXPECT_EQ(PvcPath(*claim_only, "/data"), std::filesystem::path("/data/claim-a"));
  auto escape = ParseStorageUri("pvc://claim-a/../other/secret");
  EXPECT_EQ(escape.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(escape.status().message(), HasSubstr(".."));
  EXPECT_EQ(ParseStorageUri("pvc://../x").status().code(), StatusCode::kInvalidArgument);
}

TEST(StorageUriTest, UnsupportedSchemesAreUnimplementedNamingTheScheme) {
  auto gs = ParseStorageUri("gs://kfserving-examples/models/sklearn");
  EXPECT_EQ(gs.status().code(), StatusCode::kUnimplemented);
  EXPECT_THAT(gs.status().message(), HasSubstr("'gs://'"));
  EXPECT_THAT(gs.status().message(), HasSubstr("not supported"));
  auto weird = ParseStorageUri("ftp://host/x");
  EXPECT_EQ(weird.status().code(), StatusCode::kUnimplemented);
  EXPECT_THAT(weird.status().message(), HasSubstr("'ftp://' is unknown"));
  EXPECT_EQ(ParseStorageUri("").status().code(), StatusCode::kInvalidArgument);
}

TEST(StorageUriTest, ArchiveNames) {
  EXPECT_TRUE(IsArchiveName("model.tar.gz"));
  EXPECT_TRUE(IsArchiveName("MODEL.TGZ"));
  EXPECT_TRUE(IsArchiveName("m.zip"));
  EXPECT_TRUE(IsArchiveName("m.tar"));
  EXPECT_FALSE(IsArchiveName("model.bst"));
  EXPECT_FALSE(IsArchiveName("model.gz"));
  EXPECT_FALSE(IsArchiveName(".zip"));
}

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Sha256Hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

}  // namespace
}  // namespace quiver::storage
