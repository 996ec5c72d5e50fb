// The one table that turns a Status code into an HTTP status (and, with the gRPC frontend, a
// gRPC code). Pure functions.
#pragma once

#include "common/status.h"

namespace quiver {

// 400 bad input, 404 unknown, 503 not ready, 501 unimplemented, 500 inference failure, ...
int HttpStatusFor(StatusCode code);

// gRPC status code numbers (grpc::StatusCode), following KServe's mapping: inference failures
// and bad input are INVALID_ARGUMENT, not ready is UNAVAILABLE, unknown is NOT_FOUND.
int GrpcStatusFor(StatusCode code);

}  // namespace quiver
