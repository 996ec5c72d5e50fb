#include "protocol/cloudevents.h"

#include <simdjson.h>

#include <chrono>
#include <cstdlib>
#include <ctime>

#include "common/system.h"
#include "protocol/json_writer.h"

namespace quiver {
namespace {

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

std::string NowRfc3339() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()) %
            std::chrono::seconds(1);
  std::tm tm;
  gmtime_r(&t, &tm);
  char buf[40];
  size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof(buf) - n, ".%06ldZ", static_cast<long>(us.count()));
  return buf;
}

std::string EnvOr(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

Status CheckSpecVersion(std::string_view v) {
  if (v == "1.0" || v == "0.3") return Status::Ok();
  return InvalidArgument("CloudEvent specversion '" + std::string(v) +
                         "' is not supported (expected 1.0 or 0.3)");
}

// Base64 (RFC 4648) for data_base64.
bool DecodeBase64(std::string_view in, std::string* out) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    int v = val(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return true;
}

}  // namespace

StatusOr<CloudEvent> DecodeCloudEvent(const HeaderLookup& header, std::string body) {
  CloudEvent ev;
  std::string_view specversion = header("ce-specversion");
  if (!specversion.empty()) {
    ev.mode = CloudEventMode::kBinary;
    ev.specversion = std::string(specversion);
    QUIVER_RETURN_IF_ERROR(CheckSpecVersion(specversion));
    for (auto [name, field] : {std::pair{"ce-id", &ev.id}, std::pair{"ce-source", &ev.source},
                               std::pair{"ce-type", &ev.type}}) {
      std::string_view v = header(name);
      if (v.empty()) {
        return InvalidArgument(std::string("CloudEvent in binary mode is missing the ") + name +
                               " header");
      }
      *field = std::string(v);
    }
    ev.data = std::move(body);
    return ev;
  }
  bool declared = StartsWithNoCase(header("content-type"), "application/cloudevents+json");
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  bool parsed = parser.parse(body.data(), body.size(), true).get(root) == simdjson::SUCCESS &&
                root.type() == simdjson::dom::element_type::OBJECT;
  if (!parsed) {
    if (declared) return InvalidArgument("CloudEvent in structured mode is not a JSON object");
    ev.data = std::move(body);
    return ev;
  }
  simdjson::dom::object obj(root);
  simdjson::dom::element v;
  if (!declared) {
    // KServe's rule for a plain JSON body that is a structured event.
    for (const char* k : {"time", "type", "source", "id", "specversion", "data"}) {
      if (obj[k].get(v) != simdjson::SUCCESS) {
        ev.data = std::move(body);
        return ev;
      }
    }
  }
  ev.mode = CloudEventMode::kStructured;
  for (auto [name, field] : {std::pair{"specversion", &ev.specversion}, std::pair{"id", &ev.id},
                             std::pair{"source", &ev.source}, std::pair{"type", &ev.type}}) {
    if (obj[name].get(v) != simdjson::SUCCESS) {
      return InvalidArgument(std::string("CloudEvent in structured mode is missing '") + name +
                             "'");
    }
    if (v.type() != simdjson::dom::element_type::STRING || std::string_view(v).empty()) {
      return InvalidArgument(std::string("CloudEvent attribute '") + name +
                             "' must be a non-empty string");
    }
    *field = std::string(std::string_view(v));
  }
  QUIVER_RETURN_IF_ERROR(CheckSpecVersion(ev.specversion));
  if (obj["data"].get(v) == simdjson::SUCCESS) {
    ev.data = v.type() == simdjson::dom::element_type::STRING ? std::string(std::string_view(v))
                                                               : simdjson::minify(v);
  } else if (obj["data_base64"].get(v) == simdjson::SUCCESS &&
             v.type() == simdjson::dom::element_type::STRING) {
    if (!DecodeBase64(std::string_view(v), &ev.data)) {
      return InvalidArgument("CloudEvent data_base64 is not valid base64");
    }
  } else {
    return InvalidArgument("CloudEvent in structured mode has no data");
  }
  return ev;
}

std::string EncodeCloudEventResponse(CloudEventMode mode, std::string_view model,
                                     std::string data,
                                     std::vector<std::pair<std::string, std::string>>* headers,
                                     std::string_view* content_type) {
  std::string type = EnvOr("CE_TYPE", "io.kserve.inference.response");
  std::string source = EnvOr("CE_SOURCE", "io.kserve.inference." + std::string(model));
  std::string id = NewUuid();
  std::string time = NowRfc3339();
  if (mode == CloudEventMode::kBinary) {
    headers->emplace_back("ce-specversion", "1.0");
    headers->emplace_back("ce-id", id);
    headers->emplace_back("ce-source", source);
    headers->emplace_back("ce-type", type);
    headers->emplace_back("ce-time", time);
    *content_type = "application/json";
    return data;
  }
  std::string out;
  JsonWriter w(&out);
  w.Raw("{\"specversion\":\"1.0\",\"id\":");
  w.String(id);
  w.Raw(",\"source\":");
  w.String(source);
  w.Raw(",\"type\":");
  w.String(type);
  w.Raw(",\"time\":");
  w.String(time);
  w.Raw(",\"datacontenttype\":\"application/json\",\"data\":");
  w.Raw(data);
  w.Char('}');
  *content_type = "application/cloudevents+json";
  return out;
}

}  // namespace quiver
