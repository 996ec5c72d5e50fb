#include "storage/s3_protocol.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace quiver::storage {
namespace {

using ::testing::HasSubstr;

TEST(S3SettingsTest, DefaultsAreAwsAnonymousUsEast1) {
  auto s = S3SettingsFromEnv({});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->region, "us-east-1");
  EXPECT_TRUE(s->anonymous());
  EXPECT_TRUE(s->verify_tls);
  EXPECT_EQ(SigV4Parameter(*s), "aws:amz:us-east-1:s3");
  // Virtual-hosted style on AWS.
  EXPECT_EQ(S3ObjectUrl(*s, "bkt", "models/a b.bin"),
            "https://bkt.s3.us-east-1.amazonaws.com/models/a%20b.bin");
}

TEST(S3SettingsTest, RegionAndCredentialsFromEnv) {
  auto s = S3SettingsFromEnv({{"AWS_ACCESS_KEY_ID", "AKID"},
                              {"AWS_SECRET_ACCESS_KEY", "SECRET"},
                              {"AWS_SESSION_TOKEN", "TOKEN"},
                              {"AWS_DEFAULT_REGION", "eu-west-1"}});
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->anonymous());
  EXPECT_EQ(s->access_key_id, "AKID");
  EXPECT_EQ(s->session_token, "TOKEN");
  EXPECT_EQ(SigV4Parameter(*s), "aws:amz:eu-west-1:s3");
  // AWS_REGION wins over AWS_DEFAULT_REGION, as in the AWS SDKs.
  auto both =
      S3SettingsFromEnv({{"AWS_REGION", "ap-south-1"}, {"AWS_DEFAULT_REGION", "eu-west-1"}});
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->region, "ap-south-1");
}

TEST(S3SettingsTest, CustomEndpointIsPathStyle) {
  auto s = S3SettingsFromEnv({{"S3_ENDPOINT", "minio.local:9000"}, {"S3_USE_HTTPS", "0"}});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->endpoint, "http://minio.local:9000");
  EXPECT_EQ(S3ObjectUrl(*s, "bkt", "m/x.bin"), "http://minio.local:9000/bkt/m/x.bin");
  auto https = S3SettingsFromEnv({{"S3_ENDPOINT", "minio.local:9000"}});
  ASSERT_TRUE(https.ok());
  EXPECT_EQ(https->endpoint, "https://minio.local:9000");
  // AWS_ENDPOINT_URL is a full URL and wins over S3_ENDPOINT.
  auto url = S3SettingsFromEnv({{"AWS_ENDPOINT_URL", "http://127.0.0.1:4568/"},
                                {"S3_ENDPOINT", "other:1"},
                                {"S3_VERIFY_SSL", "0"},
                                {"AWS_CA_BUNDLE", "/etc/ca.pem"}});
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->endpoint, "http://127.0.0.1:4568");
  EXPECT_FALSE(url->verify_tls);
  EXPECT_EQ(url->ca_bundle, "/etc/ca.pem");
}

TEST(S3SettingsTest, MalformedVariablesAreNamed) {
  auto flag = S3SettingsFromEnv({{"S3_USE_HTTPS", "yes"}});
  EXPECT_EQ(flag.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(flag.status().message(), HasSubstr("S3_USE_HTTPS='yes'"));
  auto verify = S3SettingsFromEnv({{"S3_VERIFY_SSL", "maybe"}});
  EXPECT_THAT(verify.status().message(), HasSubstr("S3_VERIFY_SSL"));
  auto endpoint = S3SettingsFromEnv({{"AWS_ENDPOINT_URL", "ftp://x"}});
  EXPECT_THAT(endpoint.status().message(), HasSubstr("AWS_ENDPOINT_URL='ftp://x'"));
  auto half = S3SettingsFromEnv({{"AWS_ACCESS_KEY_ID", "AKID"}});
  EXPECT_THAT(half.status().message(), HasSubstr("AWS_SECRET_ACCESS_KEY"));
  auto region = S3SettingsFromEnv({{"AWS_REGION", "us east"}});
  EXPECT_THAT(region.status().message(), HasSubstr("'us east'"));
}

TEST(S3ProtocolTest, ListUrlIsCanonicallyOrderedAndEncoded) {
  auto s = S3SettingsFromEnv({{"AWS_ENDPOINT_URL", "http://h:1"}});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(S3ListUrl(*s, "b", "models/iris v1", ""),
            "http://h:1/b/?list-type=2&prefix=models%2Firis%20v1");
  EXPECT_EQ(S3ListUrl(*s, "b", "p", "1/a+b="),
            "http://h:1/b/?continuation-token=1%2Fa%2Bb%3D&list-type=2&prefix=p");
  EXPECT_EQ(S3UriEncode("a-b_c.d~e/f g", true), "a-b_c.d~e/f%20g");
  EXPECT_EQ(S3UriEncode("\xc3\xa9", false), "%C3%A9");
}

TEST(S3ProtocolTest, ParsesListObjectsV2Pages) {
  const char* xml =
      R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name>
<Prefix>models/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>
<Contents><Key>models/a&amp;b.bin</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified>
<ETag>&quot;0cc175b9c0f1b6a831c399e269772661&quot;</ETag><Size>1</Size><StorageClass>STANDARD</StorageClass></Contents>
<Contents><Key>models/sub/c.bin</Key><ETag>"abc"</ETag><Size>12345678901</Size></Contents>
<NextContinuationToken>tok/en==</NextContinuationToken></ListBucketResult>)";
  auto page = ParseListObjectsV2(xml);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->objects.size(), 2u);
  EXPECT_EQ(page->objects[0].key, "models/a&b.bin");
  EXPECT_EQ(page->objects[0].etag, "\"0cc175b9c0f1b6a831c399e269772661\"");
  EXPECT_EQ(page->objects[0].size, 1u);
  EXPECT_EQ(page->objects[1].size, 12345678901u);
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->next_continuation_token, "tok/en==");
}

TEST(S3ProtocolTest, RejectsWhatIsNotAListing) {
  EXPECT_EQ(ParseListObjectsV2("<html>proxy login</html>").status().code(),
            StatusCode::kInvalidArgument);
  auto bad_size = ParseListObjectsV2(
      "<ListBucketResult><Contents><Key>k</Key><Size>x</Size></Contents></ListBucketResult>");
  EXPECT_THAT(bad_size.status().message(), HasSubstr("'k'"));
  auto no_token =
      ParseListObjectsV2("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>");
  EXPECT_THAT(no_token.status().message(), HasSubstr("NextContinuationToken"));
  auto empty = ParseListObjectsV2("<ListBucketResult><KeyCount>0</KeyCount></ListBucketResult>");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->objects.empty());
  EXPECT_FALSE(empty->truncated);
}

TEST(S3ProtocolTest, ParsesErrorDocuments) {
  auto e = ParseS3Error(
      "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket "
      "does not exist</Message><BucketName>x</BucketName></Error>");
  EXPECT_EQ(e.code, "NoSuchBucket");
  EXPECT_EQ(e.message, "The specified bucket does not exist");
  EXPECT_EQ(ParseS3Error("not xml").code, "");
}

}  // namespace
}  // namespace quiver::storage
