#include "server/server_core.h"

#include <spdlog/spdlog.h>

#include "common/system.h"
#include "protocol/json_writer.h"
#include "protocol/status_mapping.h"
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

// Completes an inference over REST: encodes the response (or error) and answers.
class RestInferJob : public InferJob {
 public:
  explicit RestInferJob(http::Responder responder) : responder_(std::move(responder)) {}

  void Complete(Status status, InferResponse response) override {
    if (status.ok()) {
      std::string body;
      body.reserve(256);
      status = EncodeV2Response(response, &body);
      if (status.ok()) {
        responder_.Send(Json(200, std::move(body)));
        return;
      }
    }
    responder_.Send(Error(status));
  }

 private:
  http::Responder responder_;
};

}  // namespace

ServerCore::ServerCore(ModelRepository* repository, ServerCoreOptions options)
    : repository_(repository), options_(std::move(options)) {}

void ServerCore::Handle(http::Request&& request, http::Responder responder) {
  std::string_view method = request.method();
  auto seg = PathSegments(request.target());
  auto method_not_allowed = [&](std::string_view allowed) {
    responder.Send(Json(405, ErrorJson("method " + std::string(method) + " not allowed on " +
                                       std::string(request.target()) + "; use " +
                                       std::string(allowed))));
  };
  bool get = method == "GET";
  if (seg.empty()) {
    if (!get) return method_not_allowed("GET");
    return responder.Send(Json(200, R"({"status":"alive"})"));
  }
  if (seg[0] == "v2") {
    if (seg.size() == 1) {
      if (!get) return method_not_allowed("GET");
      std::string out;
      JsonWriter w(&out);
      w.Raw("{\"name\":");
      w.String(options_.server_name);
      w.Raw(",\"version\":");
      w.String(options_.server_version);
      w.Raw(",\"extensions\":[]}");
      return responder.Send(Json(200, std::move(out)));
    }
    if (seg[1] == "health" && seg.size() == 3 && (seg[2] == "live" || seg[2] == "ready")) {
      if (!get) return method_not_allowed("GET");
      if (seg[2] == "live") return responder.Send(Json(200, R"({"live":true})"));
      bool ready = repository_->Ready(options_.strict_readiness);
      return responder.Send(ready ? Json(200, R"({"ready":true})")
                                  : Json(503, R"({"ready":false,"error":"server is not ready"})"));
    }
    if (seg[1] == "models") {
      if (seg.size() == 2) {
        if (!get) return method_not_allowed("GET");
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
          return HandleModel(method, name, version, action, request, responder);
        }
      }
    }
  }
  responder.Send(Json(404, ErrorJson("Not Found: no route for " + std::string(method) + " " +
                                     std::string(request.target()))));
}

void ServerCore::HandleModel(std::string_view method, std::string_view name,
                             std::string_view version, std::string_view action,
                             http::Request& request, http::Responder& responder) {
  std::string_view want = action == "infer" ? "POST" : "GET";
  if (method != want) {
    return responder.Send(Json(405, ErrorJson("method " + std::string(method) +
                                              " not allowed on " + std::string(request.target()) +
                                              "; use " + std::string(want))));
  }
  std::shared_ptr<const ModelEntry> entry = repository_->Find(name);
  if (entry == nullptr) {
    return responder.Send(
        Error(NotFound("Model with name " + std::string(name) + " does not exist.")));
  }
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
  Infer(std::move(entry), request, responder);
}

void ServerCore::Infer(std::shared_ptr<const ModelEntry> entry, http::Request& request,
                       http::Responder& responder) {
  auto job = std::make_unique<RestInferJob>(std::move(responder));
  InferRequest& req = job->request;
  req.model_name = entry->name;
  req.model_version = entry->version;
  Status status = DecodeV2Request(request.body(), &req);
  if (status.ok()) status = CheckRequest(entry->servable->metadata(), req);
  if (!status.ok()) {
    job->Complete(std::move(status), InferResponse{});
    return;
  }
  if (req.id.empty()) req.id = NewUuid();
  entry->servable->Submit(std::move(job));
}

}  // namespace quiver
