#include "server/grpc_frontend.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "common/system.h"
#include "grpc_predict_v2.grpc.pb.h"
#include "protocol/grpc_codec.h"
#include "protocol/status_mapping.h"
#include "runtime/validate.h"
#include "server/serve_metrics.h"
#include "server/telemetry_hooks.h"

namespace quiver {
namespace {

using inference::GRPCInferenceService;

grpc::Status ToGrpc(const Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(GrpcStatusFor(s.code())), s.message());
}

grpc::Status NotReady(const ModelEntry& e) {
  std::string msg = "Model " + e.name + " is not ready: " + std::string(ModelStateName(e.state));
  if (!e.reason.empty()) msg += ": " + e.reason;
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, msg);
}

grpc::Status UnknownModel(const std::string& name) {
  return grpc::Status(grpc::StatusCode::NOT_FOUND,
                      "Model with name " + name + " does not exist.");
}

// Finds a model and checks its version; sets `status` when it cannot serve.
std::shared_ptr<const ModelEntry> Lookup(ModelRepository* repo, const std::string& name,
                                         const std::string& version, grpc::Status* status) {
  auto entry = repo->Find(name);
  if (entry == nullptr) {
    *status = UnknownModel(name);
    return nullptr;
  }
  if (!version.empty() && version != entry->version) {
    *status = grpc::Status(grpc::StatusCode::NOT_FOUND,
                           "Model " + name + " version " + version + " does not exist.");
    return nullptr;
  }
  return entry;
}

// The call's metadata as KServe hands it to a model (gRPC keys are lower-case already). Only
// built for models that want it (Model::WantsHeaders).
std::shared_ptr<const RequestHeaders> HeadersOf(const grpc::CallbackServerContext& ctx) {
  auto out = std::make_shared<RequestHeaders>();
  for (const auto& [key, value] : ctx.client_metadata()) {
    out->emplace_back(std::string(key.data(), key.size()), std::string(value.data(), value.size()));
  }
  return out;
}

class GrpcInferJob : public InferJob {
 public:
  GrpcInferJob(grpc::ServerUnaryReactor* reactor, inference::ModelInferResponse* response,
               bool raw, RequestMeter meter)
      : reactor_(reactor), response_(response), raw_(raw), meter_(meter) {}

  void Complete(Status status, InferResponse response) override {
    const bool model_ok = status.ok();
    meter_.Encoding();
    if (status.ok()) status = EncodeGrpcResponse(response, raw_, response_);
    meter_.Finish(*this, model_ok, status.ok());
    grpc::Status out = ToGrpc(status);
    if (telemetry_ != nullptr) {
      CopyPhases(*this, telemetry_.get());
      // Before Finish: the response message may be gone after it.
      FinishGrpcTelemetry(telemetry_owner_, std::move(telemetry_), out,
                          status.ok() ? response_->ByteSizeLong() : 0);
    }
    reactor_->Finish(std::move(out));
  }

  // Telemetry of this call (access log, spans), finished with the call.
  void SetTelemetry(const observe::Telemetry* owner,
                    std::unique_ptr<observe::RequestTelemetry> telemetry) {
    telemetry_owner_ = owner;
    telemetry_ = std::move(telemetry);
  }

 private:
  grpc::ServerUnaryReactor* reactor_;
  inference::ModelInferResponse* response_;
  bool raw_;
  RequestMeter meter_;
  const observe::Telemetry* telemetry_owner_ = nullptr;
  std::unique_ptr<observe::RequestTelemetry> telemetry_;
};

class Service final : public GRPCInferenceService::CallbackService {
 public:
  explicit Service(ServerCore* core) : core_(core), repo_(core->repository()) {}

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* ctx,
                                       const inference::ServerLiveRequest*,
                                       inference::ServerLiveResponse* out) override {
    out->set_live(true);
    return Done(ctx, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* ctx,
                                        const inference::ServerReadyRequest*,
                                        inference::ServerReadyResponse* out) override {
    out->set_ready(repo_->Ready(core_->options().strict_readiness));
    return Done(ctx, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* ctx,
                                       const inference::ModelReadyRequest* in,
                                       inference::ModelReadyResponse* out) override {
    grpc::Status status;
    auto entry = Lookup(repo_, in->name(), in->version(), &status);
    if (entry) out->set_ready(entry->state == ModelState::kReady);
    return Done(ctx, status);
  }

  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* ctx,
                                           const inference::ServerMetadataRequest*,
                                           inference::ServerMetadataResponse* out) override {
    out->set_name(core_->options().server_name);
    out->set_version(core_->options().server_version);
    for (const char* e : {"binary_tensor_data", "model_repository", "model_repository_extension"}) {
      out->add_extensions(e);
    }
    return Done(ctx, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* ctx,
                                          const inference::ModelMetadataRequest* in,
                                          inference::ModelMetadataResponse* out) override {
    grpc::Status status;
    auto entry = Lookup(repo_, in->name(), in->version(), &status);
    if (!entry) return Done(ctx, status);
    if (entry->state != ModelState::kReady) return Done(ctx, NotReady(*entry));
    const quiver::ModelMetadata& md = entry->servable->metadata();
    out->set_name(entry->name);
    out->add_versions(entry->version);
    out->set_platform(md.platform);
    auto fill = [](const std::vector<TensorSpec>& specs, auto* list) {
      for (const auto& s : specs) {
        auto* t = list->Add();
        t->set_name(s.name);
        t->set_datatype(std::string(DataTypeName(s.datatype)));
        for (int64_t d : s.shape) t->add_shape(d);
      }
    };
    fill(md.inputs, out->mutable_inputs());
    fill(md.outputs, out->mutable_outputs());
    return Done(ctx, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* ctx,
                                       const inference::ModelInferRequest* in,
                                       inference::ModelInferResponse* out) override {
    auto* reactor = ctx->DefaultReactor();
    const observe::Telemetry* telemetry = core_->options().telemetry;
    std::unique_ptr<observe::RequestTelemetry> tel;
    if (telemetry != nullptr) {
      tel = BeginGrpcTelemetry(*telemetry, ctx, "ModelInfer", in->ByteSizeLong());
      tel->model_name = in->model_name();
    }
    grpc::Status status;
    auto entry = Lookup(repo_, in->model_name(), in->model_version(), &status);
    if (!entry || entry->state != ModelState::kReady) {
      if (entry) status = NotReady(*entry);
      FinishGrpcTelemetry(telemetry, std::move(tel), status, 0);
      reactor->Finish(status);
      return reactor;
    }
    auto job = std::make_unique<GrpcInferJob>(reactor, out, in->raw_input_contents_size() > 0,
                                              RequestMeter(entry->servable->metrics()));
    if (tel != nullptr) {
      telemetry->OnInference(*tel, entry->name, entry->version, nullptr, {});
      job->timed = true;
      job->SetTelemetry(telemetry, std::move(tel));
    }
    InferRequest& req = job->request;
    req.model_name = entry->name;
    req.model_version = entry->version;
    if (entry->servable->model().WantsHeaders()) req.headers = HeadersOf(*ctx);
    // Raw inputs borrow `in`'s bytes: gRPC keeps the request alive until Finish.
    Status s = DecodeGrpcRequest(*in, &req);
    if (s.ok()) s = CheckRequest(entry->servable->metadata(), req);
    if (!s.ok()) {
      job->Complete(std::move(s), InferResponse{});
      return reactor;
    }
    if (req.id.empty()) req.id = NewUuid();
    if (job->timed) job->enqueued = std::chrono::steady_clock::now();
    entry->servable->Submit(std::move(job));
    return reactor;
  }

  grpc::ServerUnaryReactor* RepositoryModelLoad(
      grpc::CallbackServerContext* ctx, const inference::RepositoryModelLoadRequest* in,
      inference::RepositoryModelLoadResponse* out) override {
    auto* reactor = ctx->DefaultReactor();
    std::string name = in->model_name();
    core_->PostControl([this, reactor, out, name] {
      Status s = repo_->Load(name);
      out->set_model_name(name);
      out->set_isloaded(s.ok());
      reactor->Finish(ToGrpc(s));
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* RepositoryModelUnload(
      grpc::CallbackServerContext* ctx, const inference::RepositoryModelUnloadRequest* in,
      inference::RepositoryModelUnloadResponse* out) override {
    auto* reactor = ctx->DefaultReactor();
    std::string name = in->model_name();
    core_->PostControl([this, reactor, out, name] {
      Status s = repo_->Unload(name);
      out->set_model_name(name);
      out->set_isunloaded(s.ok());
      reactor->Finish(ToGrpc(s));
    });
    return reactor;
  }

 private:
  static grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* ctx, grpc::Status status) {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(std::move(status));
    return reactor;
  }

  ServerCore* core_;
  ModelRepository* repo_;
};

}  // namespace

struct GrpcFrontend::Impl {
  std::unique_ptr<Service> service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  bool shut_down = false;
};

GrpcFrontend::GrpcFrontend(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

GrpcFrontend::~GrpcFrontend() {
  if (!impl_->shut_down) Shutdown(std::chrono::system_clock::now());
}

StatusOr<std::unique_ptr<GrpcFrontend>> GrpcFrontend::Start(ServerCore* core,
                                                            const GrpcOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->service = std::make_unique<Service>(core);
  grpc::ServerBuilder builder;
  std::string address = options.host + ":" + std::to_string(options.port);
  if (options.host.find(':') != std::string::npos) {
    address = "[" + options.host + "]:" + std::to_string(options.port);
  }
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &impl->port);
  builder.RegisterService(impl->service.get());
  builder.SetMaxReceiveMessageSize(options.max_receive_bytes);
  builder.SetMaxSendMessageSize(options.max_send_bytes);
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr || impl->port == 0) {
    return Unavailable("cannot listen for gRPC on " + address);
  }
  return std::unique_ptr<GrpcFrontend>(new GrpcFrontend(std::move(impl)));
}

int GrpcFrontend::port() const { return impl_->port; }

void GrpcFrontend::Shutdown(std::chrono::system_clock::time_point deadline) {
  if (impl_->shut_down) return;
  impl_->shut_down = true;
  impl_->server->Shutdown(deadline);
  impl_->server->Wait();
}

}  // namespace quiver
