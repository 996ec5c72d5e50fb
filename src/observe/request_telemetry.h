// RequestTelemetry: what the access log, the trace exporter and the payload logger need to know
// about one request: its id, its trace context, its phase times and its outcome. Created by
// Telemetry::Begin when a request arrives and finished by Telemetry::Finish when its answer
// leaves. Owned by one request at a time (the frontend, then the job that answers); not
// thread-safe, handed between threads with the request.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "observe/trace_context.h"

namespace quiver::observe {

struct RequestTelemetry {
  using Steady = std::chrono::steady_clock;
  enum class Transport { kHttp, kGrpc };

  Transport transport = Transport::kHttp;
  // x-request-id from the request, or a new UUID; returned to the client as x-request-id.
  std::string request_id;
  std::string method;  // HTTP method; for gRPC, the RPC's name (ModelInfer)
  std::string target;  // HTTP target (path and query); for gRPC, /package.Service/Method
  std::string model_name;
  std::string model_version;

  // Tracing. `trace` is this request's server span: the trace id comes from an incoming
  // traceparent when there is one (and then `parent_span_id` is the caller's span) or is new.
  // With tracing off, an incoming context is kept unchanged so outgoing calls still carry it.
  bool has_trace = false;  // trace is set (tracing on, or a valid traceparent came in)
  bool export_span = false;  // tracing on and sampled: spans go to the exporter
  TraceContext trace;
  SpanId parent_span_id;  // all zero for a root span

  // Phase times. `enqueued` is unset (epoch) when the request ran without waiting in a queue;
  // exec_* are unset for requests that never reached a model.
  std::chrono::system_clock::time_point start_wall;
  Steady::time_point start;
  Steady::time_point enqueued;
  Steady::time_point exec_start;
  Steady::time_point exec_end;
  Steady::time_point end;

  // Outcome: the HTTP status, or for gRPC the status code (0 OK).
  int status = 0;
  std::string error;  // the error message of a failed gRPC call
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;

  // Payload logging: set for inference requests when a payload logger is configured.
  bool log_payload = false;
  std::string event_id;  // CloudEvent id shared by the request and response events

  // The traceparent / tracestate an outgoing call made for this request should carry (empty
  // when there is no trace context). The call becomes a child of this request's span.
  std::string OutgoingTraceparent() const { return has_trace ? trace.Traceparent() : ""; }
  const std::string& OutgoingTracestate() const { return trace.tracestate; }

  // Wall-clock nanoseconds since the Unix epoch of a steady time taken during this request.
  uint64_t UnixNanos(Steady::time_point t) const {
    auto wall = start_wall + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                 t - start);
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(wall.time_since_epoch()).count());
  }
  bool queued() const { return enqueued != Steady::time_point{}; }
  bool executed() const { return exec_start != Steady::time_point{}; }
  // Queue wait: from enqueued to the start of execution (0 when the request did not queue).
  double queue_ms() const {
    return queued() && executed() ? Ms(exec_start - enqueued) : 0.0;
  }
  double compute_ms() const { return executed() ? Ms(exec_end - exec_start) : 0.0; }
  double total_ms() const { return Ms(end - start); }

 private:
  static double Ms(Steady::duration d) {
    return std::chrono::duration<double, std::milli>(d).count();
  }
};

}  // namespace quiver::observe
