#include "protocol/status_mapping.h"

namespace quiver {

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kFailedPrecondition: return 400;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kAlreadyExists: return 409;
    case StatusCode::kResourceExhausted: return 413;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kUnimplemented: return 501;
    case StatusCode::kDeadlineExceeded: return 504;
    case StatusCode::kInternal: return 500;
  }
  return 500;
}

int GrpcStatusFor(StatusCode code) {
  // Numbers from grpc/status.h; this module does not link gRPC.
  switch (code) {
    case StatusCode::kOk: return 0;
    case StatusCode::kInvalidArgument: return 3;     // INVALID_ARGUMENT
    case StatusCode::kFailedPrecondition: return 9;  // FAILED_PRECONDITION
    case StatusCode::kNotFound: return 5;            // NOT_FOUND
    case StatusCode::kAlreadyExists: return 6;       // ALREADY_EXISTS
    case StatusCode::kResourceExhausted: return 8;   // RESOURCE_EXHAUSTED
    case StatusCode::kUnavailable: return 14;        // UNAVAILABLE
    case StatusCode::kUnimplemented: return 12;      // UNIMPLEMENTED
    case StatusCode::kDeadlineExceeded: return 4;    // DEADLINE_EXCEEDED
    case StatusCode::kInternal: return 3;            // KServe: InferenceError -> INVALID_ARGUMENT
  }
  return 13;  // INTERNAL
}

}  // namespace quiver
