#include "server/telemetry_hooks.h"

namespace quiver {
namespace {

class TelemetryObserver : public http::ResponseObserver {
 public:
  TelemetryObserver(const observe::Telemetry* telemetry,
                    std::unique_ptr<observe::RequestTelemetry> request)
      : telemetry_(telemetry), request_(std::move(request)) {}

  void OnResponse(http::Response& response) override {
    response.headers.emplace_back("x-request-id", request_->request_id);
    telemetry_->Finish(std::move(request_), response.status, response.body,
                       response.content_type);
  }

  observe::RequestTelemetry* request() const { return request_.get(); }

 private:
  const observe::Telemetry* telemetry_;
  std::unique_ptr<observe::RequestTelemetry> request_;
};

}  // namespace

void AttachTelemetry(const observe::Telemetry& telemetry, http::Request& request,
                     http::Responder& responder) {
  auto lookup = [&request](std::string_view name) { return request.header(name); };
  auto r = telemetry.Begin(observe::RequestTelemetry::Transport::kHttp, request.method(),
                           request.target(), lookup, request.body().size());
  responder.Observe(std::make_unique<TelemetryObserver>(&telemetry, std::move(r)));
}

observe::RequestTelemetry* TelemetryOf(const http::Responder& responder) {
  auto* observer = dynamic_cast<TelemetryObserver*>(responder.observer());
  return observer != nullptr ? observer->request() : nullptr;
}

void CopyPhases(const ModelJob& job, observe::RequestTelemetry* t) {
  if (t == nullptr) return;
  t->enqueued = job.enqueued;
  t->exec_start = job.compute_start;
  t->exec_end = job.compute_end;
}

std::unique_ptr<observe::RequestTelemetry> BeginGrpcTelemetry(
    const observe::Telemetry& telemetry, grpc::CallbackServerContext* ctx,
    std::string_view method, uint64_t bytes_in) {
  const auto& metadata = ctx->client_metadata();
  auto lookup = [&metadata](std::string_view name) -> std::string_view {
    auto it = metadata.find(grpc::string_ref(name.data(), name.size()));
    if (it == metadata.end()) return {};
    return {it->second.data(), it->second.size()};
  };
  std::string target = "/inference.GRPCInferenceService/" + std::string(method);
  auto r = telemetry.Begin(observe::RequestTelemetry::Transport::kGrpc, method, target, lookup,
                           bytes_in);
  ctx->AddInitialMetadata("x-request-id", r->request_id);
  return r;
}

void FinishGrpcTelemetry(const observe::Telemetry* telemetry,
                         std::unique_ptr<observe::RequestTelemetry> request,
                         const grpc::Status& status, uint64_t bytes_out) {
  if (telemetry == nullptr || request == nullptr) return;
  request->error = status.error_message();
  request->bytes_out = bytes_out;
  // gRPC payloads are not payload-logged, so no body is passed.
  telemetry->Finish(std::move(request), static_cast<int>(status.error_code()), {}, {});
}

}  // namespace quiver
