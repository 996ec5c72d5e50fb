// The frontends' side of observe::Telemetry: attaching a request's telemetry to a REST
// Responder (so that it finishes, and x-request-id is returned, whatever answer is sent) or to
// a gRPC call, and copying a job's phase times. Thread-safety as the objects they touch.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>

#include "batching/infer_job.h"
#include "http/server.h"
#include "observe/telemetry.h"

namespace quiver {

// Begins telemetry for a REST request and attaches it to `responder`.
void AttachTelemetry(const observe::Telemetry& telemetry, http::Request& request,
                     http::Responder& responder);

// The telemetry attached to `responder`, or null (telemetry off).
observe::RequestTelemetry* TelemetryOf(const http::Responder& responder);

// Copies `job`'s phase times (enqueued, execution start and end) into `telemetry`; no-op for
// null. The job must have been submitted with `timed` set.
void CopyPhases(const ModelJob& job, observe::RequestTelemetry* telemetry);

// Begins telemetry for a gRPC call; adds x-request-id to its initial metadata.
std::unique_ptr<observe::RequestTelemetry> BeginGrpcTelemetry(
    const observe::Telemetry& telemetry, grpc::CallbackServerContext* ctx,
    std::string_view method, uint64_t bytes_in);

// Finishes a gRPC call's telemetry (no-op for null) with its status and answer size.
void FinishGrpcTelemetry(const observe::Telemetry* telemetry,
                         std::unique_ptr<observe::RequestTelemetry> request,
                         const grpc::Status& status, uint64_t bytes_out);

}  // namespace quiver
