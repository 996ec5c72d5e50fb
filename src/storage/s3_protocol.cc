#include "storage/s3_protocol.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace quiver::storage {
namespace {

std::string Get(const Environment& env, const std::string& name) {
  auto it = env.find(name);
  return it == env.end() ? std::string() : it->second;
}

// KServe's boolean variables are "1"/"0"; "true"/"false" are accepted as well.
StatusOr<bool> ParseFlag(const Environment& env, const std::string& name, bool fallback) {
  std::string value = Get(env, name);
  if (value.empty()) return fallback;
  std::string lower = value;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "1" || lower == "true") return true;
  if (lower == "0" || lower == "false") return false;
  return InvalidArgument("environment variable " + name + "='" + value +
                         "': expected 1, 0, true or false");
}

// Decodes the five predefined entities and numeric references; anything else stays as is.
std::string DecodeEntities(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '&') {
      out.push_back(text[i]);
      continue;
    }
    size_t semi = text.find(';', i);
    if (semi == std::string_view::npos || semi - i > 10) {
      out.push_back('&');
      continue;
    }
    std::string_view entity = text.substr(i + 1, semi - i - 1);
    uint32_t cp = 0;
    bool ok = true;
    if (entity == "amp")
      cp = '&';
    else if (entity == "lt")
      cp = '<';
    else if (entity == "gt")
      cp = '>';
    else if (entity == "quot")
      cp = '"';
    else if (entity == "apos")
      cp = '\'';
    else if (entity.size() > 1 && entity[0] == '#') {
      bool hex = entity[1] == 'x' || entity[1] == 'X';
      std::string_view digits = entity.substr(hex ? 2 : 1);
      auto r = std::from_chars(digits.data(), digits.data() + digits.size(), cp, hex ? 16 : 10);
      ok = r.ec == std::errc() && r.ptr == digits.data() + digits.size() && cp <= 0x10FFFF;
    } else {
      ok = false;
    }
    if (!ok) {
      out.push_back('&');
      continue;
    }
    // UTF-8 encode.
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
    i = semi;
  }
  return out;
}

// Finds the raw content of the next <name>...</name> at or after `from`; npos when none.
// `<name/>` (empty element) yields an empty content.
size_t FindElement(std::string_view xml, std::string_view name, size_t from,
                   std::string_view* content, size_t* end) {
  std::string open = "<" + std::string(name);
  for (size_t pos = xml.find(open, from); pos != std::string_view::npos;
       pos = xml.find(open, pos + 1)) {
    size_t after = pos + open.size();
    if (after >= xml.size()) return std::string_view::npos;
    char c = xml[after];
    if (c == '/' && after + 1 < xml.size() && xml[after + 1] == '>') {
      *content = std::string_view();
      *end = after + 2;
      return pos;
    }
    if (c != '>' && c != ' ') continue;  // a longer name, e.g. <KeyCount> for <Key>
    size_t gt = xml.find('>', after);
    if (gt == std::string_view::npos) return std::string_view::npos;
    std::string close = "</" + std::string(name) + ">";
    size_t close_pos = xml.find(close, gt + 1);
    if (close_pos == std::string_view::npos) return std::string_view::npos;
    *content = xml.substr(gt + 1, close_pos - gt - 1);
    *end = close_pos + close.size();
    return pos;
  }
  return std::string_view::npos;
}

std::string HostOf(const S3Settings& settings, std::string_view bucket) {
  if (!settings.endpoint.empty()) return settings.endpoint + "/" + S3UriEncode(bucket, false);
  return "https://" + std::string(bucket) + ".s3." + settings.region + ".amazonaws.com";
}

}  // namespace

StatusOr<S3Settings> S3SettingsFromEnv(const Environment& env) {
  S3Settings out;
  out.access_key_id = Get(env, "AWS_ACCESS_KEY_ID");
  out.secret_access_key = Get(env, "AWS_SECRET_ACCESS_KEY");
  out.session_token = Get(env, "AWS_SESSION_TOKEN");
  if (out.access_key_id.empty() != out.secret_access_key.empty()) {
    return InvalidArgument(std::string("environment: ") +
                           (out.access_key_id.empty() ? "AWS_SECRET_ACCESS_KEY is set but "
                                                        "AWS_ACCESS_KEY_ID is not"
                                                      : "AWS_ACCESS_KEY_ID is set but "
                                                        "AWS_SECRET_ACCESS_KEY is not") +
                           "; set both, or neither for anonymous access");
  }
  std::string region = Get(env, "AWS_REGION");
  if (region.empty()) region = Get(env, "AWS_DEFAULT_REGION");
  if (!region.empty()) {
    bool valid = std::all_of(region.begin(), region.end(), [](unsigned char c) {
      return std::isalnum(c) || c == '-' || c == '_';
    });
    if (!valid) {
      return InvalidArgument("environment variable AWS_REGION/AWS_DEFAULT_REGION='" + region +
                             "': expected a region name such as us-east-1");
    }
    out.region = region;
  }
  QUIVER_ASSIGN_OR_RETURN(bool use_https, ParseFlag(env, "S3_USE_HTTPS", true));
  QUIVER_ASSIGN_OR_RETURN(out.verify_tls, ParseFlag(env, "S3_VERIFY_SSL", true));
  out.ca_bundle = Get(env, "AWS_CA_BUNDLE");
  std::string variable = "AWS_ENDPOINT_URL";
  std::string endpoint = Get(env, variable);
  if (endpoint.empty()) {
    variable = "S3_ENDPOINT";
    endpoint = Get(env, variable);
    if (!endpoint.empty() && endpoint.find("://") == std::string::npos) {
      endpoint = (use_https ? "https://" : "http://") + endpoint;
    }
  }
  if (!endpoint.empty()) {
    while (endpoint.ends_with("/")) endpoint.pop_back();
    size_t sep = endpoint.find("://");
    std::string scheme = sep == std::string::npos ? "" : endpoint.substr(0, sep);
    std::string host = sep == std::string::npos ? "" : endpoint.substr(sep + 3);
    if ((scheme != "http" && scheme != "https") || host.empty() ||
        host.find_first_of("/?#") != std::string::npos) {
      return InvalidArgument("environment variable " + variable + "='" + Get(env, variable) +
                             "': expected http(s)://host[:port]");
    }
    out.endpoint = endpoint;
  }
  return out;
}

std::string SigV4Parameter(const S3Settings& settings) {
  return "aws:amz:" + settings.region + ":s3";
}

std::string S3UriEncode(std::string_view text, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

std::string S3ObjectUrl(const S3Settings& settings, std::string_view bucket, std::string_view key) {
  return HostOf(settings, bucket) + "/" + S3UriEncode(key, true);
}

std::string S3ListUrl(const S3Settings& settings, std::string_view bucket, std::string_view prefix,
                      std::string_view continuation_token) {
  // Sorted by name, values encoded: the canonical query string SigV4 signs.
  std::string url = HostOf(settings, bucket) + "/?";
  if (!continuation_token.empty()) {
    url += "continuation-token=" + S3UriEncode(continuation_token, false) + "&";
  }
  url += "list-type=2&prefix=" + S3UriEncode(prefix, false);
  return url;
}

std::string XmlElementText(std::string_view xml, std::string_view name) {
  std::string_view content;
  size_t end = 0;
  if (FindElement(xml, name, 0, &content, &end) == std::string_view::npos) return {};
  return DecodeEntities(content);
}

StatusOr<S3ListPage> ParseListObjectsV2(std::string_view xml) {
  if (xml.find("<ListBucketResult") == std::string_view::npos) {
    return InvalidArgument("S3 listing: the response is not a ListBucketResult document");
  }
  S3ListPage page;
  std::string_view contents;
  size_t end = 0;
  for (size_t pos = FindElement(xml, "Contents", 0, &contents, &end); pos != std::string_view::npos;
       pos = FindElement(xml, "Contents", end, &contents, &end)) {
    S3Object object;
    object.key = XmlElementText(contents, "Key");
    if (object.key.empty()) return InvalidArgument("S3 listing: a <Contents> element has no <Key>");
    object.etag = XmlElementText(contents, "ETag");
    std::string size = XmlElementText(contents, "Size");
    auto r = std::from_chars(size.data(), size.data() + size.size(), object.size);
    if (r.ec != std::errc() || r.ptr != size.data() + size.size()) {
      return InvalidArgument("S3 listing: object '" + object.key + "' has a bad <Size> '" + size +
                             "'");
    }
    page.objects.push_back(std::move(object));
  }
  page.truncated = XmlElementText(xml, "IsTruncated") == "true";
  page.next_continuation_token = XmlElementText(xml, "NextContinuationToken");
  if (page.truncated && page.next_continuation_token.empty()) {
    return InvalidArgument(
        "S3 listing: IsTruncated is true but there is no NextContinuationToken (the endpoint "
        "must support ListObjectsV2)");
  }
  return page;
}

S3ErrorDocument ParseS3Error(std::string_view xml) {
  S3ErrorDocument out;
  if (xml.find("<Error") == std::string_view::npos) return out;
  out.code = XmlElementText(xml, "Code");
  out.message = XmlElementText(xml, "Message");
  return out;
}

}  // namespace quiver::storage
