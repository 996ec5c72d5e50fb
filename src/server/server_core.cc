#include "server/server_core.h"

#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <charconv>

#include "common/system.h"
#include "observe/prometheus_text.h"
#include "protocol/cloudevents.h"
#include "protocol/json_writer.h"
#include "protocol/status_mapping.h"
#include "protocol/v1_json.h"
#include "protocol/v2_json.h"
#include "runtime/validate.h"
#include "server/serve_metrics.h"
#include "server/telemetry_hooks.h"

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

// The request's headers as KServe hands them to a model: names lower-cased, in arrival order.
// Only built for models that want them (Model::WantsHeaders).
std::shared_ptr<const RequestHeaders> HeadersOf(const http::Request& request) {
  auto out = std::make_shared<RequestHeaders>();
  for (const auto& field : request.message) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out->emplace_back(std::move(name), std::string(field.value()));
  }
  return out;
}

// Completes an inference over REST (v2 or V1, V1 possibly inside a CloudEvent).
class RestInferJob : public InferJob {
 public:
  enum class Protocol { kV2, kV1 };
  RestInferJob(http::Responder responder, Protocol protocol, CloudEventMode ce, RequestMeter meter)
      : responder_(std::move(responder)), protocol_(protocol), ce_(ce), meter_(meter) {}

  void Complete(Status status, InferResponse response) override {
    if (responder_.observer() != nullptr) CopyPhases(*this, TelemetryOf(responder_));
    http::Response out;
    const bool model_ok = status.ok();
    meter_.Encoding();
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
    meter_.Finish(*this, model_ok, status.ok());
    responder_.Send(status.ok() ? std::move(out) : Error(status));
  }

 private:
  http::Responder responder_;
  Protocol protocol_;
  CloudEventMode ce_;
  RequestMeter meter_;
};

// A V1 request for a model that takes the JSON body itself (:predict), or for its explainer
// (:explain). `headers` is null unless the model wants them.
class V1JsonJob : public ModelJob {
 public:
  V1JsonJob(http::Responder responder, std::string body, CloudEventMode ce, RequestMeter meter,
            bool explain, std::shared_ptr<const RequestHeaders> headers)
      : responder_(std::move(responder)),
        body_(std::move(body)),
        ce_(ce),
        meter_(meter),
        explain_(explain),
        headers_(std::move(headers)) {}

  bool CanRunInline(const Model& model) const override {
    return model.CanRunInline(InferRequest{});
  }

  void Run(Model& model, const ModelConfig& config) override {
    http::Response out;
    if (timed) StampComputeStart();
    Status status = explain_ ? model.ExplainV1(body_, headers_.get(), &out.body)
                             : model.PredictV1(body_, headers_.get(), &out.body);
    if (timed) infer_end = compute_end = std::chrono::steady_clock::now();
    if (responder_.observer() != nullptr) CopyPhases(*this, TelemetryOf(responder_));
    meter_.Encoding();
    if (!status.ok()) {
      meter_.Finish(*this, false, false);
      responder_.Send(Error(status));
      return;
    }
    if (ce_ != CloudEventMode::kNone) {
      out.body = EncodeCloudEventResponse(ce_, config.name, std::move(out.body), &out.headers,
                                          &out.content_type);
    }
    meter_.Finish(*this, true, true);
    responder_.Send(std::move(out));
  }

 private:
  http::Responder responder_;
  std::string body_;
  CloudEventMode ce_;
  RequestMeter meter_;
  bool explain_;
  std::shared_ptr<const RequestHeaders> headers_;
};

}  // namespace

ServerCore::ServerCore(ModelRepository* repository, ServerCoreOptions options)
    : repository_(repository),
      options_(std::move(options)),
      control_(std::make_unique<ControlQueue>()) {}

void ServerCore::Handle(http::Request&& request, http::Responder responder) {
  if (options_.telemetry != nullptr) AttachTelemetry(*options_.telemetry, request, responder);
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
  if (seg[0] == "metrics" && seg.size() == 1 && options_.metrics != nullptr) {
    if (!get) return responder.Send(MethodNotAllowed(request, "GET"));
    return responder.Send(http::Response{.status = 200,
                                         .body = options_.metrics->Scrape(),
                                         .content_type = observe::kPrometheusContentType});
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
  RequestMeter meter(entry->servable->metrics());
  std::optional<size_t> json_size;
  std::string_view header = request.header("inference-header-content-length");
  if (!header.empty()) {
    size_t n = 0;
    auto [p, ec] = std::from_chars(header.data(), header.data() + header.size(), n);
    if (ec != std::errc() || p != header.data() + header.size()) {
      meter.Failed(observe::FailureReason::kOther);
      return responder.Send(Error(InvalidArgument(
          "Inference-Header-Content-Length: expected a byte count, got '" + std::string(header) +
          "'")));
    }
    json_size = n;
  }
  observe::RequestTelemetry* telemetry = responder.observer() ? TelemetryOf(responder) : nullptr;
  auto job = std::make_unique<RestInferJob>(std::move(responder), RestInferJob::Protocol::kV2,
                                            CloudEventMode::kNone, meter);
  InferRequest& req = job->request;
  req.model_name = entry->name;
  req.model_version = entry->version;
  if (entry->servable->model().WantsHeaders()) req.headers = HeadersOf(request);
  // The body moves into shared ownership so that binary inputs can borrow it without a copy.
  auto body = std::make_shared<const std::string>(std::move(request.body()));
  if (telemetry != nullptr) {
    job->timed = true;
    options_.telemetry->OnInference(*telemetry, entry->name, entry->version, body,
                                    request.header("content-type"));
  }
  Status status = DecodeV2Request(std::move(body), json_size, &req);
  if (status.ok()) status = CheckRequest(entry->servable->metadata(), req);
  if (!status.ok()) return job->Complete(std::move(status), InferResponse{});
  if (req.id.empty()) req.id = NewUuid();
  if (telemetry != nullptr) job->enqueued = std::chrono::steady_clock::now();
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
  const bool explain = verb == "explain";
  if (explain && !entry->servable->model().HasExplainer()) {
    return responder.Send(Error(Unimplemented(
        "model " + entry->name + " has no explainer: :explain is not available for it")));
  }
  PredictV1(std::move(entry), request, responder, explain);
}

void ServerCore::PredictV1(std::shared_ptr<const ModelEntry> entry, http::Request& request,
                           http::Responder& responder, bool explain) {
  observe::RequestTelemetry* telemetry = responder.observer() ? TelemetryOf(responder) : nullptr;
  if (telemetry != nullptr) {
    // The payload log gets the body as it came (a copy: decoding takes the original).
    std::shared_ptr<const std::string> logged;
    if (options_.telemetry->payload_logger()) {
      logged = std::make_shared<const std::string>(request.body());
    }
    options_.telemetry->OnInference(*telemetry, entry->name, entry->version, std::move(logged),
                                    request.header("content-type"));
  }
  RequestMeter meter(entry->servable->metrics(), explain);
  auto lookup = [&request](std::string_view name) { return request.header(name); };
  auto event = DecodeCloudEvent(lookup, std::move(request.body()));
  if (!event.ok()) {
    meter.Failed(observe::FailureReason::kOther);
    return responder.Send(Error(event.status()));
  }
  ServableModel& servable = *entry->servable;
  std::shared_ptr<const RequestHeaders> headers;
  if (servable.model().WantsHeaders()) headers = HeadersOf(request);
  if (explain || servable.model().TakesV1Json()) {
    auto job = std::make_unique<V1JsonJob>(std::move(responder), std::move(event->data),
                                           event->mode, meter, explain, std::move(headers));
    if (telemetry != nullptr) {
      job->timed = true;
      job->enqueued = std::chrono::steady_clock::now();
    }
    servable.Submit(std::move(job));
    return;
  }
  auto job = std::make_unique<RestInferJob>(std::move(responder), RestInferJob::Protocol::kV1,
                                            event->mode, meter);
  if (telemetry != nullptr) job->timed = true;
  InferRequest& req = job->request;
  req.model_name = entry->name;
  req.model_version = entry->version;
  req.headers = std::move(headers);
  Status status = DecodeV1Request(event->data, servable.metadata().inputs, &req);
  if (status.ok()) status = CheckRequest(servable.metadata(), req);
  if (!status.ok()) return job->Complete(std::move(status), InferResponse{});
  req.id = NewUuid();
  if (telemetry != nullptr) job->enqueued = std::chrono::steady_clock::now();
  servable.Submit(std::move(job));
}

}  // namespace quiver
