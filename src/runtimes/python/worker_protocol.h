// The wire between the Python runtime plugin (in `quiver serve`) and one Python worker process:
// frames on a Unix socketpair and tensors in a shared memory region. Pure functions and a
// move-only region; nothing here is shared between threads (one worker is used by one thread at a
// time). The Python end is pylib/quiver_model/_worker.py; the two must agree on what is below.
//
// A frame is a 16-byte head (kind: u32, header_len: u32, payload_len: u64, little-endian), a JSON
// header of header_len bytes and payload_len raw bytes (a V1 JSON body or answer). Tensors never
// travel in frames: a V2 request's inputs are copied once into the region, where the worker wraps
// them as numpy arrays without copying, and the worker writes its outputs into the region after
// the inputs (output_offset), growing it with ftruncate when they do not fit and announcing the
// new size in its answer.
//
//   server -> worker                              worker -> server
//   kLoad    {format, name, model_file, ...}      kReady    {inputs, outputs, platform,
//                                                            headers, explain}
//   kInferV2 {region_size, id, parameters,        kResultV2 {region_size, parameters,
//             inputs: [{name, datatype, shape,               outputs: [{name, datatype, shape,
//             offset, nbytes, parameters}],                  offset, nbytes, parameters}]}
//             outputs: [{name}], output_offset,
//             headers}
//   kPredictV1 / kExplainV1 {headers} + body      kResultV1 {} + answer body
//                                                 kError    {code, message} (for any request)
//
// `headers` (requests) is an object of the request's headers, present only when the model
// wants them (kReady's `headers: true`); each byte of a value is one code point (latin-1, as
// Starlette decodes HTTP headers for KServe), so any bytes reach Python as a str. A repeated
// name appears repeatedly; Python keeps the last, as KServe's dict(request.headers.items()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "runtime/model.h"
#include "tensor/infer.h"

namespace quiver::python_runtime {

enum class FrameKind : uint32_t {
  kLoad = 1,
  kInferV2 = 2,
  kPredictV1 = 3,
  kExplainV1 = 4,
  kReady = 16,
  kResultV2 = 17,
  kResultV1 = 18,
  kError = 19,
};

inline constexpr size_t kFrameHeadBytes = 16;
// A header is a few hundred bytes; past these limits a frame is corrupt rather than large.
inline constexpr uint32_t kMaxHeaderBytes = 64u << 20;
inline constexpr uint64_t kMaxPayloadBytes = uint64_t{4} << 30;
// Tensors start at multiples of this in the region, so numpy (and SIMD code) sees aligned data.
inline constexpr size_t kTensorAlignment = 64;

struct Frame {
  FrameKind kind = FrameKind::kError;
  std::string header;
  std::string payload;
};

// How a transport call failed: the peer went away (EOF, reset, broken pipe) or said something
// that is not a frame. The worker tells the two apart when it reports the failure.
enum class TransportError { kNone, kClosed, kMalformed, kSystem };

struct TransportStatus {
  TransportError error = TransportError::kNone;
  std::string message;  // empty when ok
  bool ok() const { return error == TransportError::kNone; }
};

// Writes one frame, retrying on EINTR and partial writes; never raises SIGPIPE.
TransportStatus WriteFrame(int fd, FrameKind kind, std::string_view header,
                           std::string_view payload);
// Reads one whole frame (blocking).
TransportStatus ReadFrame(int fd, Frame* frame);

// A memfd shared with one worker, mapped read-write. Either side may grow the file; the other
// maps the new size when told. Never shrinks: a worker may still hold numpy views of the old
// size. Move-only; not thread-safe.
class SharedRegion {
 public:
  SharedRegion() = default;
  ~SharedRegion();
  SharedRegion(SharedRegion&& other) noexcept;
  SharedRegion& operator=(SharedRegion&& other) noexcept;
  SharedRegion(const SharedRegion&) = delete;
  SharedRegion& operator=(const SharedRegion&) = delete;

  // A new memfd (close-on-exec) named for /proc listings, `initial_bytes` long.
  static StatusOr<SharedRegion> Create(const std::string& name, size_t initial_bytes);

  int fd() const { return fd_; }
  std::byte* data() const { return data_; }
  size_t size() const { return size_; }

  // Grows the file and the mapping to at least `bytes` (rounded up, at least doubling).
  Status Reserve(size_t bytes);
  // The peer says the file is now `announced` bytes: maps the file's size when it is larger
  // than the current mapping. kInternal when the file is smaller than announced.
  Status Refresh(uint64_t announced);

 private:
  Status Map(size_t bytes);
  void Release();

  int fd_ = -1;
  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

// Where each input goes in the region: 64-byte aligned offsets from 0, in input order.
struct Placement {
  size_t offset = 0;
  size_t nbytes = 0;
};
// Returns the end of the last input (the first free byte, aligned), which is where the worker
// starts writing outputs.
size_t LayoutInputs(const std::vector<Tensor>& inputs, std::vector<Placement>* placements);
inline size_t AlignUp(size_t n) {
  return (n + kTensorAlignment - 1) / kTensorAlignment * kTensorAlignment;
}

// The kInferV2 header for `request` with its inputs at `placements` (and its headers, when set).
std::string EncodeInferHeader(const InferRequest& request, const std::vector<Placement>& placements,
                              size_t region_size, size_t output_offset);

// One output of a kResultV2 answer, before its bytes are read from the region.
struct OutputDescriptor {
  std::string name;
  DataType datatype = DataType::kFp32;
  Shape shape;
  uint64_t offset = 0;
  uint64_t nbytes = 0;
  Parameters parameters;
};
struct InferResult {
  uint64_t region_size = 0;
  Parameters parameters;
  std::vector<OutputDescriptor> outputs;
};
// The kPredictV1 / kExplainV1 header: {} or {"headers": {...}}.
std::string EncodeV1Header(const RequestHeaders* headers);

// Parses a kResultV2 header. kInternal names what is malformed.
StatusOr<InferResult> ParseInferResult(std::string_view header);
// Copies the outputs out of the region into `response` after checking that each lies inside the
// region and that its bytes agree with its datatype and shape (a buggy or hostile worker cannot
// make the server read out of bounds or send a tensor whose size lies).
Status CopyOutputs(const InferResult& result, const std::byte* region, size_t region_size,
                   InferResponse* response);

// The Status a kError header describes: codes INVALID_ARGUMENT, NOT_FOUND, UNAVAILABLE,
// UNIMPLEMENTED and FAILED_PRECONDITION keep their meaning; anything else is kInternal.
Status ParseError(std::string_view header);

// The kLoad header: what the worker needs to load `config` (format, files, parameters).
std::string EncodeLoadHeader(const ModelConfig& config);
// The kReady header: metadata the Python model declared (may be empty lists), and what it can
// take.
struct WorkerMetadata {
  std::string platform;
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
  bool wants_headers = false;  // one of its methods takes a headers argument
  bool has_explainer = false;  // it defines explain() (or forwards to an explainer_host)
};
StatusOr<WorkerMetadata> ParseReady(std::string_view header);

// JSON text of a string (with quotes), for headers.
void AppendJsonString(std::string_view s, std::string* out);

}  // namespace quiver::python_runtime
