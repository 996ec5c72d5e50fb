#include "loadgen/grpc_load.h"

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <deque>
#include <optional>
#include <random>
#include <thread>

#include "grpc_predict_v2.grpc.pb.h"

namespace quiver::loadgen {
namespace {

using Clock = std::chrono::steady_clock;
using Stub = inference::GRPCInferenceService::Stub;

constexpr auto kDelayedAfter = std::chrono::milliseconds(1);

std::string CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "code " + std::to_string(static_cast<int>(code));
  }
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address) {
  grpc::ChannelArguments args;
  // A channel of its own per sender thread, not one TCP connection shared through the global
  // subchannel pool.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

// One RPC slot: at most one call in flight.
struct Call {
  std::optional<grpc::ClientContext> context;
  std::unique_ptr<grpc::ClientAsyncResponseReader<inference::ModelInferResponse>> reader;
  inference::ModelInferResponse response;
  grpc::Status status;
  Clock::time_point origin;
};

class Worker {
 public:
  Worker(const GrpcLoadOptions& options, size_t first_request)
      : options_(options),
        channel_(MakeChannel(options.address)),
        stub_(inference::GRPCInferenceService::NewStub(channel_)),
        next_request_(first_request) {}

  ~Worker() { Join(); }

  void StartClosedLoop(int64_t streams) {
    for (int64_t i = 0; i < streams; ++i) calls_.push_back(std::make_unique<Call>());
    thread_ = std::thread([this] {
      Clock::time_point now = Clock::now();
      for (auto& c : calls_) StartCall(c.get(), now);
      Run();
    });
  }

  void StartOpenLoop(double rate, Distribution distribution, uint64_t seed,
                     std::chrono::nanoseconds phase, size_t max_in_flight) {
    open_loop_ = true;
    max_calls_ = std::max<size_t>(max_in_flight, 1);
    rng_.seed(seed);
    schedule_.emplace(
        distribution, rate, [this] { return std::uniform_real_distribution<double>(0, 1)(rng_); },
        phase);
    thread_ = std::thread([this] {
      start_ = Clock::now();
      next_due_ = start_ + schedule_->Next();
      Tick();
      Run();
    });
  }

  // Wakes the thread through an alarm; it cancels what is in flight and drains the queue.
  void Stop() {
    if (stop_requested_.exchange(true) || !thread_.joinable()) return;
    wake_.Set(&cq_, std::chrono::system_clock::now(), &wake_tag_);
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }

  SampleRecorder& recorder() { return recorder_; }
  const SampleRecorder& recorder() const { return recorder_; }

 private:
  void Run() {
    void* tag = nullptr;
    bool ok = false;
    while (cq_.Next(&tag, &ok)) {
      if (tag == &tick_tag_) {
        tick_armed_ = false;
        if (ok && !stopping_) Tick();
      } else if (tag == &wake_tag_) {
        stopping_ = true;
        if (tick_armed_) tick_.Cancel();
        for (auto& c : calls_) {
          if (c->reader) c->context->TryCancel();
        }
      } else {
        OnCallDone(static_cast<Call*>(tag));
      }
      if (stopping_ && in_flight_ == 0 && !tick_armed_ && !shut_down_) {
        shut_down_ = true;
        cq_.Shutdown();
      }
    }
  }

  // Starts a call; its latency counts from `origin`.
  void StartCall(Call* c, Clock::time_point origin) {
    c->reader.reset();  // it lives in the previous call's arena: release it before the context
    c->context.emplace();
    c->context->set_deadline(std::chrono::system_clock::now() + options_.engine.request_timeout);
    c->origin = origin;
    const auto& all = *options_.requests;
    const inference::ModelInferRequest& request = all[next_request_];
    if (++next_request_ == all.size()) next_request_ = 0;
    c->reader = stub_->PrepareAsyncModelInfer(&*c->context, request, &cq_);
    c->reader->StartCall();
    c->reader->Finish(&c->response, &c->status, c);
    ++in_flight_;
  }

  void OnCallDone(Call* c) {
    --in_flight_;
    if (stopping_) {
      c->reader.reset();
      return;
    }
    if (c->status.ok()) {
      recorder_.RecordSuccess((Clock::now() - c->origin).count());
    } else {
      recorder_.RecordError("gRPC " + CodeName(c->status.error_code()), c->status.error_message());
    }
    if (!open_loop_) {
      StartCall(c, Clock::now());
    } else if (!pending_.empty()) {
      Clock::time_point due = pending_.front();
      pending_.pop_front();
      StartAt(c, due, true);
    } else {
      idle_.push_back(c);
    }
  }

  void Tick() {
    Clock::time_point now = Clock::now();
    while (next_due_ <= now) {
      Dispatch(next_due_);
      next_due_ = start_ + schedule_->Next();
    }
    auto wait = next_due_ - Clock::now();
    tick_.Set(&cq_,
              std::chrono::system_clock::now() +
                  std::chrono::duration_cast<std::chrono::system_clock::duration>(wait),
              &tick_tag_);
    tick_armed_ = true;
  }

  // Open loop: as the HTTP engine, latency counts from the send unless the request waited for a
  // free slot (then from its schedule); lateness of the alarm itself is only counted as delayed.
  void StartAt(Call* c, Clock::time_point due, bool waited) {
    Clock::time_point now = Clock::now();
    if (now - due > kDelayedAfter) recorder_.RecordDelayed();
    StartCall(c, waited ? due : now);
  }

  void Dispatch(Clock::time_point origin) {
    if (!idle_.empty()) {
      Call* c = idle_.back();
      idle_.pop_back();
      StartAt(c, origin, false);
    } else if (calls_.size() < max_calls_) {
      calls_.push_back(std::make_unique<Call>());
      StartAt(calls_.back().get(), origin, false);
    } else {
      pending_.push_back(origin);
    }
  }

  const GrpcLoadOptions& options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<Stub> stub_;
  size_t next_request_;
  grpc::CompletionQueue cq_;
  grpc::Alarm tick_;
  grpc::Alarm wake_;
  int tick_tag_ = 0;  // addresses used as completion-queue tags
  int wake_tag_ = 0;
  std::atomic<bool> stop_requested_{false};
  // Below: only the worker thread.
  bool stopping_ = false;
  bool tick_armed_ = false;
  bool shut_down_ = false;
  int64_t in_flight_ = 0;
  std::vector<std::unique_ptr<Call>> calls_;
  SampleRecorder recorder_;
  bool open_loop_ = false;
  size_t max_calls_ = 0;
  std::vector<Call*> idle_;
  std::deque<Clock::time_point> pending_;
  std::mt19937_64 rng_;
  std::optional<RequestSchedule> schedule_;
  Clock::time_point start_;
  Clock::time_point next_due_;
  std::thread thread_;
};

class GrpcLoadEngine : public LoadEngine {
 public:
  explicit GrpcLoadEngine(GrpcLoadOptions options) : options_(std::move(options)) {}
  ~GrpcLoadEngine() override { Stop(); }

  Status Start(const LoadLevel& level) override {
    if (!options_.requests || options_.requests->empty()) {
      return InvalidArgument("no request to send");
    }
    const int threads = std::max(1, options_.engine.threads);
    const size_t n_requests = options_.requests->size();
    if (level.mode == LoadLevel::Mode::kConcurrency) {
      for (int i = 0; i < threads; ++i) {
        int64_t streams = level.concurrency / threads + (i < level.concurrency % threads ? 1 : 0);
        if (streams == 0) continue;
        workers_.push_back(std::make_unique<Worker>(options_, i % n_requests));
        workers_.back()->StartClosedLoop(streams);
      }
    } else {
      const double share = level.rate / threads;
      const double interval_ns = 1e9 / share;
      const int per_thread_max = std::max(1, options_.engine.max_in_flight / threads);
      for (int i = 0; i < threads; ++i) {
        workers_.push_back(std::make_unique<Worker>(options_, i % n_requests));
        auto phase = std::chrono::nanoseconds(static_cast<int64_t>(interval_ns * i / threads));
        workers_.back()->StartOpenLoop(share, level.distribution, options_.engine.seed + i, phase,
                                       per_thread_max);
      }
    }
    return Status::Ok();
  }

  WindowSamples Take() override {
    WindowSamples all;
    for (auto& w : workers_) all.Merge(w->recorder().Take());
    return all;
  }

  void Peek(uint64_t* completed, uint64_t* errors) const override {
    *completed = 0;
    *errors = 0;
    for (const auto& w : workers_) {
      uint64_t c, e;
      w->recorder().Peek(&c, &e);
      *completed += c;
      *errors += e;
    }
  }

  void Stop() override {
    for (auto& w : workers_) w->Stop();
    for (auto& w : workers_) w->Join();
    workers_.clear();
  }

 private:
  GrpcLoadOptions options_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace

std::unique_ptr<LoadEngine> CreateGrpcLoadEngine(GrpcLoadOptions options) {
  return std::make_unique<GrpcLoadEngine>(std::move(options));
}

StatusOr<ModelSpec> FetchGrpcModelMetadata(const std::string& address, const std::string& model,
                                           const std::string& version,
                                           std::chrono::milliseconds timeout) {
  auto stub = inference::GRPCInferenceService::NewStub(MakeChannel(address));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  inference::ModelMetadataRequest request;
  request.set_name(model);
  request.set_version(version);
  inference::ModelMetadataResponse response;
  grpc::Status s = stub->ModelMetadata(&context, request, &response);
  if (!s.ok()) {
    std::string what =
        "ModelMetadata answered " + CodeName(s.error_code()) + ": " + s.error_message();
    switch (s.error_code()) {
      case grpc::StatusCode::NOT_FOUND:
        return NotFound(what);
      case grpc::StatusCode::UNAVAILABLE:
        return Unavailable(what);
      case grpc::StatusCode::DEADLINE_EXCEEDED:
        return DeadlineExceeded(what);
      default:
        return Internal(what);
    }
  }
  ModelSpec spec;
  spec.name = response.name();
  spec.platform = response.platform();
  for (const auto& v : response.versions()) spec.versions.push_back(v);
  auto convert = [](const auto& list, std::vector<TensorSpec>* out, const char* field) -> Status {
    for (const auto& t : list) {
      auto dt = ParseDataType(t.datatype());
      if (!dt) {
        return InvalidArgument(std::string(field) + " '" + t.name() + "': unknown datatype '" +
                               t.datatype() + "'");
      }
      out->push_back(TensorSpec{t.name(), *dt, Shape(t.shape().begin(), t.shape().end())});
    }
    return Status::Ok();
  };
  QUIVER_RETURN_IF_ERROR(convert(response.inputs(), &spec.inputs, "input"));
  QUIVER_RETURN_IF_ERROR(convert(response.outputs(), &spec.outputs, "output"));
  return spec;
}

}  // namespace quiver::loadgen
