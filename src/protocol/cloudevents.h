// CloudEvents (v1.0) around V1 requests, as KServe's server accepts them: binary mode (ce-*
// headers, the body is the data) and structured mode (a JSON envelope with the data inside).
// Answers go back in the mode the request used. Pure functions.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace quiver {

enum class CloudEventMode { kNone, kBinary, kStructured };

struct CloudEvent {
  CloudEventMode mode = CloudEventMode::kNone;
  std::string id;
  std::string source;
  std::string type;
  std::string specversion;
  std::string data;  // the payload: for V1, the JSON request body
};

using HeaderLookup = std::function<std::string_view(std::string_view name)>;

// Recognises a CloudEvent. Binary mode: a ce-specversion header (then ce-id, ce-source and
// ce-type are required). Structured mode: Content-Type application/cloudevents+json, or a JSON
// body holding specversion, id, source, type, time and data (KServe's rule). Anything else is
// kNone and `data` is the body unchanged. Errors (kInvalidArgument) name the missing attribute.
StatusOr<CloudEvent> DecodeCloudEvent(const HeaderLookup& header, std::string body);

// The response event for `model`: type io.kserve.inference.response and source
// io.kserve.inference.<model> (overridable with $CE_TYPE / $CE_SOURCE, as KServe). Fills
// `headers` (binary mode) or wraps `data` in an envelope (structured mode); returns the body.
std::string EncodeCloudEventResponse(CloudEventMode mode, std::string_view model,
                                     std::string data,
                                     std::vector<std::pair<std::string, std::string>>* headers,
                                     std::string_view* content_type);

}  // namespace quiver
