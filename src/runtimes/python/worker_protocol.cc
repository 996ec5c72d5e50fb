#include "runtimes/python/worker_protocol.h"

#include <errno.h>
#include <simdjson.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <bit>
#include <charconv>
#include <cstring>
#include <limits>
#include <utility>

namespace quiver::python_runtime {
namespace {

static_assert(std::endian::native == std::endian::little, "frames are little-endian");

TransportStatus SystemError(const char* what) {
  int e = errno;
  if (e == EPIPE || e == ECONNRESET) return {TransportError::kClosed, std::strerror(e)};
  return {TransportError::kSystem, std::string(what) + ": " + std::strerror(e)};
}

// Reads exactly n bytes. kClosed on EOF, even part-way.
TransportStatus ReadExact(int fd, char* out, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::read(fd, out + done, n - done);
    if (r > 0) {
      done += static_cast<size_t>(r);
    } else if (r == 0) {
      return {TransportError::kClosed, "end of stream"};
    } else if (errno != EINTR) {
      return SystemError("read");
    }
  }
  return {};
}

void AppendInt(int64_t v, std::string* out) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, r.ptr);
}

void AppendUint(uint64_t v, std::string* out) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, r.ptr);
}

void AppendShape(const Shape& shape, std::string* out) {
  out->push_back('[');
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out->push_back(',');
    AppendInt(shape[i], out);
  }
  out->push_back(']');
}

void AppendParameters(const Parameters& params, std::string* out) {
  out->push_back('{');
  bool first = true;
  for (const auto& [name, value] : params) {
    if (!first) out->push_back(',');
    first = false;
    AppendJsonString(name, out);
    out->push_back(':');
    std::visit(
        [out](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, bool>) {
            out->append(v ? "true" : "false");
          } else if constexpr (std::is_same_v<T, int64_t>) {
            AppendInt(v, out);
          } else if constexpr (std::is_same_v<T, uint64_t>) {
            AppendUint(v, out);
          } else if constexpr (std::is_same_v<T, double>) {
            if (v != v || v == std::numeric_limits<double>::infinity() ||
                v == -std::numeric_limits<double>::infinity()) {
              out->append("null");
            } else {
              char buf[32];
              auto r = std::to_chars(buf, buf + sizeof(buf), v);
              out->append(buf, r.ptr);
            }
          } else {
            AppendJsonString(v, out);
          }
        },
        value);
  }
  out->push_back('}');
}

// A header value as a JSON string whose code points are its bytes (latin-1): HTTP header values
// are bytes, and gRPC binary metadata may be anything.
void AppendLatin1JsonString(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (u < 0x20 || u >= 0x80) {
      out->append("\\u00");
      out->push_back(kHex[u >> 4]);
      out->push_back(kHex[u & 15]);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

void AppendHeaders(const RequestHeaders& headers, std::string* out) {
  out->push_back('{');
  for (size_t i = 0; i < headers.size(); ++i) {
    if (i) out->push_back(',');
    AppendLatin1JsonString(headers[i].first, out);
    out->push_back(':');
    AppendLatin1JsonString(headers[i].second, out);
  }
  out->push_back('}');
}

using simdjson::dom::element;
using simdjson::dom::object;

// Parses `header` into `doc` (the parser owns the memory).
Status ParseJson(simdjson::dom::parser& parser, std::string_view header, element* doc,
                 std::string_view what) {
  if (parser.parse(header.data(), header.size()).get(*doc) != simdjson::SUCCESS) {
    return Internal("malformed " + std::string(what) + " from the python worker");
  }
  return Status::Ok();
}

Status ParseParameters(element e, std::string_view path, Parameters* out) {
  if (e.is_null()) return Status::Ok();
  object obj;
  if (e.get(obj) != simdjson::SUCCESS) {
    return Internal(std::string(path) + ": expected an object of parameters");
  }
  for (auto field : obj) {
    std::string name(field.key);
    element v = field.value;
    switch (v.type()) {
      case simdjson::dom::element_type::BOOL:
        out->Set(name, bool(v.get_bool().value()));
        break;
      case simdjson::dom::element_type::INT64:
        out->Set(name, v.get_int64().value());
        break;
      case simdjson::dom::element_type::UINT64:
        out->Set(name, v.get_uint64().value());
        break;
      case simdjson::dom::element_type::DOUBLE:
        out->Set(name, v.get_double().value());
        break;
      case simdjson::dom::element_type::STRING:
        out->Set(name, std::string(v.get_string().value()));
        break;
      case simdjson::dom::element_type::NULL_VALUE:
        break;
      default:  // lists and objects travel as their JSON text
        out->Set(name, simdjson::minify(v));
        break;
    }
  }
  return Status::Ok();
}

Status ParseTensorSpecs(element e, std::string_view path, std::vector<TensorSpec>* out) {
  if (e.is_null()) return Status::Ok();
  simdjson::dom::array list;
  if (e.get(list) != simdjson::SUCCESS) return Internal(std::string(path) + ": expected a list");
  size_t i = 0;
  for (element t : list) {
    std::string p = std::string(path) + "[" + std::to_string(i++) + "]";
    std::string_view name, datatype;
    if (t["name"].get(name) != simdjson::SUCCESS || name.empty()) {
      return Internal(p + ".name: expected a string");
    }
    if (t["datatype"].get(datatype) != simdjson::SUCCESS) {
      return Internal(p + ".datatype: expected a string");
    }
    auto type = ParseDataType(datatype);
    if (!type) return Internal(p + ".datatype: unknown datatype '" + std::string(datatype) + "'");
    TensorSpec spec{std::string(name), *type, {}};
    simdjson::dom::array dims;
    if (t["shape"].get(dims) == simdjson::SUCCESS) {
      for (element d : dims) {
        int64_t v;
        if (d.get(v) != simdjson::SUCCESS || v < -1) {
          return Internal(p + ".shape: expected integers >= -1");
        }
        spec.shape.push_back(v);
      }
    }
    out->push_back(std::move(spec));
  }
  return Status::Ok();
}

}  // namespace

TransportStatus WriteFrame(int fd, FrameKind kind, std::string_view header,
                           std::string_view payload) {
  char head[kFrameHeadBytes];
  const uint32_t k = static_cast<uint32_t>(kind);
  const uint32_t header_len = static_cast<uint32_t>(header.size());
  const uint64_t payload_len = payload.size();
  std::memcpy(head, &k, 4);
  std::memcpy(head + 4, &header_len, 4);
  std::memcpy(head + 8, &payload_len, 8);
  iovec iov[3] = {{head, sizeof(head)},
                  {const_cast<char*>(header.data()), header.size()},
                  {const_cast<char*>(payload.data()), payload.size()}};
  int first = 0;
  while (first < 3) {
    msghdr msg{};
    msg.msg_iov = iov + first;
    msg.msg_iovlen = static_cast<size_t>(3 - first);
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return SystemError("send");
    }
    size_t left = static_cast<size_t>(n);
    while (first < 3 && left >= iov[first].iov_len) {
      left -= iov[first].iov_len;
      ++first;
    }
    if (first < 3) {
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
      iov[first].iov_len -= left;
    }
  }
  return {};
}

TransportStatus ReadFrame(int fd, Frame* frame) {
  char head[kFrameHeadBytes];
  if (TransportStatus s = ReadExact(fd, head, sizeof(head)); !s.ok()) return s;
  uint32_t kind, header_len;
  uint64_t payload_len;
  std::memcpy(&kind, head, 4);
  std::memcpy(&header_len, head + 4, 4);
  std::memcpy(&payload_len, head + 8, 8);
  if (kind < static_cast<uint32_t>(FrameKind::kLoad) ||
      kind > static_cast<uint32_t>(FrameKind::kError) ||
      (kind > static_cast<uint32_t>(FrameKind::kExplainV1) &&
       kind < static_cast<uint32_t>(FrameKind::kReady))) {
    return {TransportError::kMalformed, "unknown frame kind " + std::to_string(kind)};
  }
  if (header_len > kMaxHeaderBytes || payload_len > kMaxPayloadBytes) {
    return {TransportError::kMalformed, "frame of " + std::to_string(header_len) + "+" +
                                            std::to_string(payload_len) + " bytes is too large"};
  }
  frame->kind = static_cast<FrameKind>(kind);
  frame->header.resize(header_len);
  frame->payload.resize(payload_len);
  if (TransportStatus s = ReadExact(fd, frame->header.data(), header_len); !s.ok()) return s;
  return ReadExact(fd, frame->payload.data(), payload_len);
}

SharedRegion::~SharedRegion() { Release(); }

SharedRegion::SharedRegion(SharedRegion&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

SharedRegion& SharedRegion::operator=(SharedRegion&& other) noexcept {
  if (this != &other) {
    Release();
    fd_ = std::exchange(other.fd_, -1);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void SharedRegion::Release() {
  if (data_ != nullptr) ::munmap(data_, size_);
  if (fd_ >= 0) ::close(fd_);
  data_ = nullptr;
  size_ = 0;
  fd_ = -1;
}

StatusOr<SharedRegion> SharedRegion::Create(const std::string& name, size_t initial_bytes) {
  SharedRegion region;
  region.fd_ = ::memfd_create(name.c_str(), MFD_CLOEXEC);
  if (region.fd_ < 0) {
    return Internal("memfd_create for the python worker's tensors failed: " +
                    std::string(std::strerror(errno)));
  }
  QUIVER_RETURN_IF_ERROR(region.Reserve(std::max<size_t>(initial_bytes, kTensorAlignment)));
  return region;
}

Status SharedRegion::Map(size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (p == MAP_FAILED) {
    return Internal("mapping " + std::to_string(bytes) +
                    " bytes of tensor memory failed: " + std::strerror(errno));
  }
  if (data_ != nullptr) ::munmap(data_, size_);
  data_ = static_cast<std::byte*>(p);
  size_ = bytes;
  return Status::Ok();
}

Status SharedRegion::Reserve(size_t bytes) {
  if (bytes <= size_ && data_ != nullptr) return Status::Ok();
  // Round to whole 64 KiB and at least double, so a growing stream of requests remaps rarely.
  size_t target = std::max(bytes, size_ * 2);
  target = (target + 65535) / 65536 * 65536;
  struct stat st;
  if (::fstat(fd_, &st) != 0) return Internal(std::string("fstat: ") + std::strerror(errno));
  if (static_cast<size_t>(st.st_size) < target &&
      ::ftruncate(fd_, static_cast<off_t>(target)) != 0) {
    return ResourceExhausted("growing tensor memory to " + std::to_string(target) +
                             " bytes failed: " + std::strerror(errno));
  }
  return Map(std::max(target, static_cast<size_t>(st.st_size)));
}

Status SharedRegion::Refresh(uint64_t announced) {
  if (announced <= size_) return Status::Ok();
  struct stat st;
  if (::fstat(fd_, &st) != 0) return Internal(std::string("fstat: ") + std::strerror(errno));
  if (static_cast<uint64_t>(st.st_size) < announced) {
    return Internal("the python worker announced " + std::to_string(announced) +
                    " bytes of tensor memory but the region holds " + std::to_string(st.st_size));
  }
  return Map(static_cast<size_t>(st.st_size));
}

size_t LayoutInputs(const std::vector<Tensor>& inputs, std::vector<Placement>* placements) {
  placements->clear();
  size_t offset = 0;
  for (const Tensor& t : inputs) {
    placements->push_back({offset, t.data.size()});
    offset = AlignUp(offset + t.data.size());
  }
  return offset;
}

void AppendJsonString(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (u < 0x20) {
      out->append("\\u00");
      out->push_back(kHex[u >> 4]);
      out->push_back(kHex[u & 15]);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

std::string EncodeInferHeader(const InferRequest& request, const std::vector<Placement>& placements,
                              size_t region_size, size_t output_offset) {
  std::string out;
  out.reserve(256);
  out.append("{\"region_size\":");
  AppendUint(region_size, &out);
  out.append(",\"output_offset\":");
  AppendUint(output_offset, &out);
  out.append(",\"id\":");
  AppendJsonString(request.id, &out);
  out.append(",\"model_version\":");
  AppendJsonString(request.model_version, &out);
  out.append(",\"parameters\":");
  AppendParameters(request.parameters, &out);
  out.append(",\"inputs\":[");
  for (size_t i = 0; i < request.inputs.size(); ++i) {
    const Tensor& t = request.inputs[i];
    if (i) out.push_back(',');
    out.append("{\"name\":");
    AppendJsonString(t.name, &out);
    out.append(",\"datatype\":\"");
    out.append(DataTypeName(t.datatype));
    out.append("\",\"shape\":");
    AppendShape(t.shape, &out);
    out.append(",\"offset\":");
    AppendUint(placements[i].offset, &out);
    out.append(",\"nbytes\":");
    AppendUint(placements[i].nbytes, &out);
    out.append(",\"parameters\":");
    AppendParameters(t.parameters, &out);
    out.push_back('}');
  }
  out.append("],\"outputs\":[");
  for (size_t i = 0; i < request.outputs.size(); ++i) {
    if (i) out.push_back(',');
    out.append("{\"name\":");
    AppendJsonString(request.outputs[i].name, &out);
    out.append(",\"parameters\":");
    AppendParameters(request.outputs[i].parameters, &out);
    out.push_back('}');
  }
  out.push_back(']');
  if (request.headers != nullptr) {
    out.append(",\"headers\":");
    AppendHeaders(*request.headers, &out);
  }
  out.push_back('}');
  return out;
}

std::string EncodeV1Header(const RequestHeaders* headers) {
  if (headers == nullptr) return "{}";
  std::string out = "{\"headers\":";
  AppendHeaders(*headers, &out);
  out.push_back('}');
  return out;
}

StatusOr<InferResult> ParseInferResult(std::string_view header) {
  simdjson::dom::parser parser;
  element doc;
  QUIVER_RETURN_IF_ERROR(ParseJson(parser, header, &doc, "inference result"));
  InferResult result;
  if (doc["region_size"].get(result.region_size) != simdjson::SUCCESS) {
    return Internal("inference result from the python worker: region_size: expected an integer");
  }
  element params;
  if (doc["parameters"].get(params) == simdjson::SUCCESS) {
    QUIVER_RETURN_IF_ERROR(ParseParameters(params, "parameters", &result.parameters));
  }
  simdjson::dom::array outputs;
  if (doc["outputs"].get(outputs) != simdjson::SUCCESS) {
    return Internal("inference result from the python worker: outputs: expected a list");
  }
  size_t i = 0;
  for (element o : outputs) {
    const std::string path = "outputs[" + std::to_string(i++) + "]";
    OutputDescriptor d;
    std::string_view name, datatype;
    if (o["name"].get(name) != simdjson::SUCCESS) {
      return Internal("inference result: " + path + ".name: expected a string");
    }
    d.name = name;
    if (o["datatype"].get(datatype) != simdjson::SUCCESS) {
      return Internal("inference result: output '" + d.name + "': datatype: expected a string");
    }
    auto type = ParseDataType(datatype);
    if (!type) {
      return Internal("inference result: output '" + d.name + "': unknown datatype '" +
                      std::string(datatype) + "'");
    }
    d.datatype = *type;
    simdjson::dom::array dims;
    if (o["shape"].get(dims) != simdjson::SUCCESS) {
      return Internal("inference result: output '" + d.name + "': shape: expected a list");
    }
    for (element dim : dims) {
      int64_t v;
      if (dim.get(v) != simdjson::SUCCESS || v < 0) {
        return Internal("inference result: output '" + d.name +
                        "': shape: expected non-negative integers");
      }
      d.shape.push_back(v);
    }
    if (o["offset"].get(d.offset) != simdjson::SUCCESS ||
        o["nbytes"].get(d.nbytes) != simdjson::SUCCESS) {
      return Internal("inference result: output '" + d.name +
                      "': offset and nbytes: expected integers");
    }
    element p;
    if (o["parameters"].get(p) == simdjson::SUCCESS) {
      QUIVER_RETURN_IF_ERROR(
          ParseParameters(p, "output '" + d.name + "' parameters", &d.parameters));
    }
    result.outputs.push_back(std::move(d));
  }
  return result;
}

Status CopyOutputs(const InferResult& result, const std::byte* region, size_t region_size,
                   InferResponse* response) {
  for (const OutputDescriptor& d : result.outputs) {
    if (d.offset > region_size || d.nbytes > region_size - d.offset) {
      return Internal("python worker placed output '" + d.name + "' at bytes [" +
                      std::to_string(d.offset) + ", +" + std::to_string(d.nbytes) +
                      ") outside its " + std::to_string(region_size) + "-byte region");
    }
    Tensor t;
    t.name = d.name;
    t.datatype = d.datatype;
    t.shape = d.shape;
    t.parameters = d.parameters;
    t.data = TensorData::CopyOf(region + d.offset, d.nbytes);
    if (Status s = ValidateTensorData(t); !s.ok()) {
      return Internal("python worker returned an inconsistent output: " + s.message());
    }
    response->outputs.push_back(std::move(t));
  }
  for (const auto& [name, value] : result.parameters) response->parameters.Set(name, value);
  return Status::Ok();
}

Status ParseError(std::string_view header) {
  simdjson::dom::parser parser;
  element doc;
  if (Status s = ParseJson(parser, header, &doc, "error report"); !s.ok()) return s;
  std::string_view code, message;
  if (doc["code"].get(code) != simdjson::SUCCESS) code = "INTERNAL";
  if (doc["message"].get(message) != simdjson::SUCCESS || message.empty()) {
    message = "the python worker reported an error without a message";
  }
  std::string m(message);
  if (code == "INVALID_ARGUMENT") return InvalidArgument(std::move(m));
  if (code == "NOT_FOUND") return NotFound(std::move(m));
  if (code == "UNAVAILABLE") return Unavailable(std::move(m));
  if (code == "UNIMPLEMENTED") return Unimplemented(std::move(m));
  if (code == "FAILED_PRECONDITION") return FailedPrecondition(std::move(m));
  return Internal(std::move(m));
}

std::string EncodeLoadHeader(const ModelConfig& config) {
  std::string out = "{\"format\":";
  AppendJsonString(config.format, &out);
  out.append(",\"name\":");
  AppendJsonString(config.name, &out);
  out.append(",\"version\":");
  AppendJsonString(config.version, &out);
  out.append(",\"model_dir\":");
  AppendJsonString(config.path.string(), &out);
  out.append(",\"model_file\":");
  AppendJsonString(config.model_file.string(), &out);
  out.append(",\"parameters\":{");
  bool first = true;
  for (const auto& [key, value] : config.parameters) {
    if (!first) out.push_back(',');
    first = false;
    AppendJsonString(key, &out);
    out.push_back(':');
    AppendJsonString(value, &out);
  }
  out.append("}}");
  return out;
}

StatusOr<WorkerMetadata> ParseReady(std::string_view header) {
  simdjson::dom::parser parser;
  element doc;
  QUIVER_RETURN_IF_ERROR(ParseJson(parser, header, &doc, "load answer"));
  WorkerMetadata m;
  std::string_view platform;
  if (doc["platform"].get(platform) == simdjson::SUCCESS) m.platform = platform;
  element e;
  if (doc["inputs"].get(e) == simdjson::SUCCESS) {
    QUIVER_RETURN_IF_ERROR(ParseTensorSpecs(e, "inputs", &m.inputs));
  }
  if (doc["outputs"].get(e) == simdjson::SUCCESS) {
    QUIVER_RETURN_IF_ERROR(ParseTensorSpecs(e, "outputs", &m.outputs));
  }
  bool flag = false;
  if (doc["headers"].get(flag) == simdjson::SUCCESS) m.wants_headers = flag;
  if (doc["explain"].get(flag) == simdjson::SUCCESS) m.has_explainer = flag;
  return m;
}

}  // namespace quiver::python_runtime
