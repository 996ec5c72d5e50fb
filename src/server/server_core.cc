#include "server/server_core.h"

#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <charconv>

#include "common/system.h"
#include "protocol/cloudevents.h"
#include "protocol/json_writer.h"
#include "protocol/status_mapping.h"
#include "protocol/v1_json.h"
#include "protocol/v2_json.h"
#include "runtime/validate.h"

namespace quiver {
namespace {

http::Response Json(int status, std::string body) {
  return http::Response{.status = status, .body = std::move(body)};
}

http::Response Error(const Status& status) {
  return Json(HttpStatusFor(status.code()), ErrorJson(status.message()));
}

http::Response UnknownModel(std::string_view name) {
  return Error(NotFound("Model with name " + std::string(name) + " does not exist."));
}

void WriteTensorSpecs(const std::vector<TensorSpec>& specs, JsonWriter& w) {
  w.Char('[');
  for (size_t i = 0; i < specs.size(); ++i) {
    if (i) w.Char(',');
    w.Raw("{\"name\":");
    w.String(specs[i].name);
    w.Raw(",\"datatype\":\"");
    w.Raw(DataTypeName(specs[i].datatype));
    w.Raw("\",\"shape\":[");
    for (size_t d = 0; d < specs[i].shape.size(); ++d) {
      if (d) w.Char(',');
      w.Int(specs[i].shape[d]);
    }
    w.Raw("]}");
  }
  w.Char(']');
}

// 503 for a model that exists but cannot serve, naming its state and reason.
http::Response NotReady(const ModelEntry& e) {
  std::string msg = "Model " + e.name + " is not ready: " + std::string(ModelStateName(e.state));
  if (!e.reason.empty()) msg += ": " + e.reason;
  std::string out;
  JsonWriter w(&out);
  w.Raw("{\"error\":");
  w.String(msg);
  w.Raw(",\"name\":");
  w.String(e.name);
  w.Raw(",\"ready\":false,\"state\":\"");
  w.Raw(ModelStateName(e.state));
  w.Raw("\",\"reason\":");
  w.String(e.reason);
  w.Char('}');
  return Json(503, std::move(out));
}

// Splits "/a/b/c?x" into {"a","b","c"}; the query string is ignored.
std::vector<std::string_view> PathSegments(std::string_view target) {
  std::vector<std::string_view> out;
  size_t q = target.find('?');
  if (q != std::string_view::npos) target = target.substr(0, q);
  size_t i = 0;
  while (i < target.size()) {
    while (i < target.size() && target[i] == '/') ++i;
    size_t j = target.find('/', i);
    if (j == std::string_view::npos) j = target.size();
    if (j > i) out.push_back(target.substr(i, j - i));
    i = j;
  }
  return out;
}

http::Response MethodNotAllowed(const http::Request& r, std::string_view allowed) {
  http::Response out = Json(405, ErrorJson("method " + std::string(r.method()) +
                                           " not allowed on " + std::string(r.target()) +
                                           "; use " + std::string(allowed)));
  // RFC 9110: a 405 lists the methods the resource supports; GET routes answer HEAD too.
  out.headers.emplace_back("Allow", allowed == "GET" ? "GET, HEAD" : std::string(allowed));
  return out;
}

// Completes an inference over REST (v2 or V1, V1 possibly inside a CloudEvent).
class RestInferJob : public InferJob {
 public:
  enum class Protocol { kV2, kV1 };
  RestInferJob(http::Responder responder, Protocol protocol, CloudEventMode ce)
      : responder_(std::move(responder)), protocol_(protocol), ce_(ce) {}

  void Complete(Status status, InferResponse response) override {
    http::Response out;
    if (status.ok()) {
      out.body.reserve(256);
      if (protocol_ == Protocol::kV2) {
        size_t json_size = 0;
        bool binary = false;
        status = EncodeV2Response(request, response, &out.body, &json_size, &binary);
        if (status.ok() && binary) {
          out.content_type = "application/octet-stream";
          out.headers.emplace_back("Inference-Header-Content-Length", std::to_string(json_size));
        }
      } else {
        status = EncodeV1Response(response, &out.body);
        if (status.ok() && ce_ != CloudEventMode::kNone) {
          out.body = EncodeCloudEventResponse(ce_, request.model_name, std::move(out.body),
                                              &out.headers, &out.content_type);
        }
      }
    }
    responder_.Send(status.ok() ? std::move(out) : Error(status));
  }

 private:
  http::Responder responder_;
  Protocol protocol_;
  CloudEventMode ce_;
};

// A V1 request for a model that takes the JSON body itself.
class V1JsonJob : public ModelJob {
 public:
  V1JsonJob(http::Responder responder, std::string body, CloudEventMode ce)
      : responder_(std::move(responder)), body_(std::move(body)), ce_(ce) {}

  bool CanRunInline(const Model& model) const override {
    return model.CanRunInline(InferRequest{});
  }

  void Run(Model& model, const ModelConfig& config) override {
    http::Response out;
    Status status = model.PredictV1(body_, &out.body);
    if (!status.ok()) {
      responder_.Send(Error(status));
      return;
    }
    if (ce_ != CloudEventMode::kNone) {
      out.body = EncodeCloudEventResponse(ce_, config.name, std::move(out.body), &out.headers,
                                          &out.content_type);
    }
    responder_.Send(std::move(out));
  }

 private:
  http::Responder responder_;
  std::string body_;
  CloudEventMode ce_;
};

}  // namespace

ServerCore::ServerCore(ModelRepository* repository, ServerCoreOptions options)
    : repository_(repository),
      options_(std::move(options)),
      control_(std::make_unique<ControlQueue>()) {}

void ServerCore::Handle(http::Request&& request, http::Responder responder) {
  // HEAD is answered as GET; the HTTP layer leaves the body out.
  std::string_view method = request.method() == "HEAD" ? "GET" : request.method();
  auto seg = PathSegments(request.target());
  bool get = method == "GET";
  if (seg.empty()) {
    if (!get) return responder.Send(MethodNotAllowed(request, "GET"));
    return responder.Send(Json(200, R"({"status":"alive"})"));
  }
  if (seg[0] == "v2") {
    if (seg.size() == 1) {
      if (!get) return responder.Send(MethodNotAllowed(request, "GET"));
      std::string out;
      JsonWriter w(&out);
      w.Raw("{\"name\":");
      w.String(options_.server_name);
      w.Raw(",\"version\":");
      w.String(options_.server_version);
      w.Raw(",\"extensions\":[\"binary_tensor_data\",\"model_repository\","
            "\"model_repository_extension\"]}");
      return responder.Send(Json(200, std::move(out)));
    }
    if (seg[1] == "health" && seg.size() == 3 && (seg[2] == "live" || seg[2] == "ready")) {
      if (!get) return responder.Send(MethodNotAllowed(request, "GET"));
      if (seg[2] == "live") return responder.Send(Json(200, R"({"live":true})"));
      bool ready = repository_->Ready(options_.strict_readiness);
      return responder.Send(ready ? Json(200, R"({"ready":true})")
                                  : Json(503, R"({"ready":false,"error":"server is not ready"})"));
    }
    if (seg[1] == "repository") return HandleRepository(method, seg, request, responder);
    if (seg[1] == "models") {
      if (seg.size() == 2) {
        if (!get) return responder.Send(MethodNotAllowed(request, "GET"));
        std::string out;
        JsonWriter w(&out);
        w.Raw("{\"models\":[");
        bool first = true;
        for (const auto& e : repository_->List()) {
          if (!first) w.Char(',');
          first = false;
          w.String(e->name);
        }
        w.Raw("]}");
        return responder.Send(Json(200, std::move(out)));
      }
      // /v2/models/{m}[/versions/{v}][/ready|/infer]
      std::string_view name = seg[2];
      std::string_view version;
      size_t next = 3;
      if (seg.size() >= 5 && seg[3] == "versions") {
        version = seg[4];
        next = 5;
      }
      if (seg.size() <= next + 1) {
        std::string_view action = seg.size() == next + 1 ? seg[next] : std::string_view();
        if (action.empty() || action == "ready" || action == "infer") {
          return HandleV2Model(method, name, version, action, request, responder);
        }
      }
    }
  }
  if (seg[0] == "v1" && seg.size() >= 2 && seg[1] == "models") {
    return HandleV1(method, seg, request, responder);
  }
  responder.Send(Json(404, ErrorJson("Not Found: no route for " + std::string(method) + " " +
                                     std::string(request.target()))));
}

void ServerCore::HandleV2Model(std::string_view method, std::string_view name,
                               std::string_view version, std::string_view action,
                               http::Request& request, http::Responder& responder) {
  std::string_view want = action == "infer" ? "POST" : "GET";
  if (method != want) return responder.Send(MethodNotAllowed(request, want));
  std::shared_ptr<const ModelEntry> entry = repository_->Find(name);
  if (entry == nullptr) return responder.Send(UnknownModel(name));
  if (!version.empty() && version != entry->version) {
    return responder.Send(Error(NotFound("Model " + std::string(name) + " version " +
                                         std::string(version) + " does not exist.")));
  }
  if (entry->state != ModelState::kReady) return responder.Send(NotReady(*entry));
  if (action == "ready") {
    std::string out;
    JsonWriter w(&out);
    w.Raw("{\"name\":");
    w.String(entry->name);
    w.Raw(",\"ready\":true}");
    return responder.Send(Json(200, std::move(out)));
  }
  if (action.empty()) {
    const ModelMetadata& md = entry->servable->metadata();
    std::string out;
    JsonWriter w(&out);
    w.Raw("{\"name\":");
    w.String(entry->name);
    w.Raw(",\"versions\":[");
    w.String(entry->version);
    w.Raw("],\"platform\":");
    w.String(md.platform);
    w.Raw(",\"inputs\":");
    WriteTensorSpecs(md.inputs, w);
    w.Raw(",\"outputs\":");
    WriteTensorSpecs(md.outputs, w);
    w.Char('}');
    return responder.Send(Json(200, std::move(out)));
  }
  InferV2(std::move(entry), request, responder);
}

void ServerCore::InferV2(std::shared_ptr<const ModelEntry> entry, http::Request& request,
                         http::Responder& responder) {
  std::optional<size_t> json_size;
  std::string_view header = request.header("inference-header-content-length");
  if (!header.empty()) {
    size_t n = 0;
    auto [p, ec] = std::from_chars(header.data(), header.data() + header.size(), n);
    if (ec != std::errc() || p != header.data() + header.size()) {
      return responder.Send(Error(InvalidArgument(
          "Inference-Header-Content-Length: expected a byte count, got '" + std::string(header) +
          "'")));
    }
    json_size = n;
  }
  auto job = std::make_unique<RestInferJob>(std::move(responder), RestInferJob::Protocol::kV2,
                                            CloudEventMode::kNone);
  InferRequest& req = job->request;
  req.model_name = entry->name;
  req.model_version = entry->version;
  // The body moves into shared ownership so that binary inputs can borrow it without a copy.
  auto body = std::make_shared<const std::string>(std::move(request.body()));
  Status status = DecodeV2Request(std::move(body), json_size, &req);
  if (status.ok()) status = CheckRequest(entry->servable->metadata(), req);
  if (!status.ok()) return job->Complete(std::move(status), InferResponse{});
  if (req.id.empty()) req.id = NewUuid();
  entry->servable->Submit(std::move(job));
}

void ServerCore::HandleRepository(std::string_view method,
                                  const std::vector<std::string_view>& seg,
                                  http::Request& request, http::Responder& responder) {
  bool index = seg.size() == 3 && seg[2] == "index";
  bool model_op = seg.size() == 5 && seg[2] == "models" && (seg[4] == "load" || seg[4] == "unload");
  if (!index && !model_op) {
    return responder.Send(Json(404, ErrorJson("Not Found: no route for " + std::string(method) +
                                               " " + std::string(request.target()))));
  }
  if (method != "POST") return responder.Send(MethodNotAllowed(request, "POST"));
  // Optional JSON bodies: {"ready": bool} for index, {"parameters": {"config": "..."}} for load.
  std::optional<bool> ready_only;
  std::optional<std::string> config;
  const std::string& body = request.body();
  if (body.find_first_not_of(" \t\r\n") != std::string::npos) {
    simdjson::dom::parser parser;
    simdjson::dom::element root, v;
    if (parser.parse(body.data(), body.size(), true).get(root) != simdjson::SUCCESS ||
        root.type() != simdjson::dom::element_type::OBJECT) {
      return responder.Send(Error(InvalidArgument("request body: expected a JSON object")));
    }
    if (root["ready"].get(v) == simdjson::SUCCESS) {
      if (v.type() != simdjson::dom::element_type::BOOL) {
        return responder.Send(Error(InvalidArgument("ready: expected true or false")));
      }
      ready_only = bool(v);
    }
    simdjson::dom::element params;
    if (root["parameters"].get(params) == simdjson::SUCCESS &&
        params.type() != simdjson::dom::element_type::OBJECT) {
      return responder.Send(Error(InvalidArgument("parameters: expected an object")));
    }
    if (root["parameters"]["config"].get(v) == simdjson::SUCCESS) {
      if (v.type() != simdjson::dom::element_type::STRING) {
        return responder.Send(Error(InvalidArgument(
            "parameters.config: expected a string holding the model's config (YAML or JSON)")));
      }
      config = std::string(std::string_view(v));
    }
  }
  if (index) {
    repository_->Rescan();
    std::string out;
    JsonWriter w(&out);
    w.Char('[');
    bool first = true;
    for (const auto& e : repository_->List()) {
      // As Triton: {"ready": true} lists only READY models; false or absent lists all.
      if (ready_only.value_or(false) && e->state != ModelState::kReady) continue;
      if (!first) w.Char(',');
      first = false;
      w.Raw("{\"name\":");
      w.String(e->name);
      w.Raw(",\"version\":");
      w.String(e->version);
      w.Raw(",\"state\":\"");
      w.Raw(ModelStateName(e->state));
      w.Raw("\",\"reason\":");
      w.String(e->reason);
      w.Char('}');
    }
    w.Char(']');
    return responder.Send(Json(200, std::move(out)));
  }
  std::string name(seg[3]);
  bool load = seg[4] == "load";
  auto shared = std::make_shared<http::Responder>(std::move(responder));
  control_->Post([this, name, load, config, shared] {
    Status s = load ? repository_->Load(name, config) : repository_->Unload(name);
    if (!s.ok()) return shared->Send(Error(s));
    std::string out;
    JsonWriter w(&out);
    w.Raw("{\"name\":");
    w.String(name);
    w.Raw(load ? ",\"load\":true}" : ",\"unload\":true}");
    shared->Send(Json(200, std::move(out)));
  });
}

void ServerCore::HandleV1(std::string_view method, const std::vector<std::string_view>& seg,
                          http::Request& request, http::Responder& responder) {
  if (seg.size() == 2) {
    if (method != "GET") return responder.Send(MethodNotAllowed(request, "GET"));
    std::string out;
    JsonWriter w(&out);
    w.Raw("{\"models\":[");
    bool first = true;
    for (const auto& e : repository_->List()) {
      if (!first) w.Char(',');
      first = false;
      w.String(e->name);
    }
    w.Raw("]}");
    return responder.Send(Json(200, std::move(out)));
  }
  if (seg.size() != 3) {
    return responder.Send(Json(404, ErrorJson("Not Found: no route for " + std::string(method) +
                                               " " + std::string(request.target()))));
  }
  std::string_view last = seg[2];
  size_t colon = last.rfind(':');
  std::string_view name = colon == std::string_view::npos ? last : last.substr(0, colon);
  std::string_view verb = colon == std::string_view::npos ? "" : last.substr(colon + 1);
  if (!verb.empty() && verb != "predict" && verb != "explain") {
    return responder.Send(Json(404, ErrorJson("Not Found: unknown V1 verb ':" + std::string(verb) +
                                               "' (expected :predict or :explain)")));
  }
  std::string_view want = verb.empty() ? "GET" : "POST";
  if (method != want) return responder.Send(MethodNotAllowed(request, want));
  std::shared_ptr<const ModelEntry> entry = repository_->Find(name);
  if (entry == nullptr) return responder.Send(UnknownModel(name));
  if (entry->state != ModelState::kReady) return responder.Send(NotReady(*entry));
  if (verb.empty()) {
    std::string out;
    JsonWriter w(&out);
    w.Raw("{\"name\":");
    w.String(entry->name);
    w.Raw(",\"ready\":true}");
    return responder.Send(Json(200, std::move(out)));
  }
  if (verb == "explain") {
    return responder.Send(Error(Unimplemented(
        "model " + entry->name + " has no explainer: :explain is not available for it")));
  }
  PredictV1(std::move(entry), request, responder);
}

void ServerCore::PredictV1(std::shared_ptr<const ModelEntry> entry, http::Request& request,
                           http::Responder& responder) {
  auto lookup = [&request](std::string_view name) { return request.header(name); };
  auto event = DecodeCloudEvent(lookup, std::move(request.body()));
  if (!event.ok()) return responder.Send(Error(event.status()));
  ServableModel& servable = *entry->servable;
  if (servable.model().TakesV1Json()) {
    servable.Submit(
        std::make_unique<V1JsonJob>(std::move(responder), std::move(event->data), event->mode));
    return;
  }
  auto job = std::make_unique<RestInferJob>(std::move(responder), RestInferJob::Protocol::kV1,
                                            event->mode);
  InferRequest& req = job->request;
  req.model_name = entry->name;
  req.model_version = entry->version;
  Status status = DecodeV1Request(event->data, servable.metadata().inputs, &req);
  if (status.ok()) status = CheckRequest(servable.metadata(), req);
  if (!status.ok()) return job->Complete(std::move(status), InferResponse{});
  req.id = NewUuid();
  servable.Submit(std::move(job));
}

}  // namespace quiver
