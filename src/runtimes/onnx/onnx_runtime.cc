#include "runtimes/onnx/onnx_runtime.h"

#include <cctype>
#include <climits>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <mutex>
#include <opencv2/core.hpp>
#include <opencv2/core/utility.hpp>
#include <opencv2/dnn.hpp>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "runtimes/onnx/onnx_graph.h"

// The error texts parsed below and the thread-safety argument were checked against OpenCV 4.6.
static_assert(CV_VERSION_MAJOR == 4 && CV_VERSION_MINOR >= 6,
              "the ONNX runtime is written for OpenCV 4.6 or a later 4.x");

namespace quiver {
namespace {

using onnx_runtime::OnnxGraph;
using onnx_runtime::OnnxValue;

// The most dimensions a cv::Mat has (CV_MAX_DIM, in OpenCV's C headers).
constexpr size_t kMaxDims = 32;

std::string Engine() { return "the ONNX engine (OpenCV dnn " + cv::getVersionString() + ")"; }

// OpenCV formats an error as "OpenCV(4.6.0) path:line: error: (-215:Assertion failed) reason in
// function 'f'", and failed CV_Check()s continue on more lines ("in function 'f'\n> (expected:
// 'a == b'), where\n>     'a' is 0 ..."). A user wants the reason, on one line.
std::string CvReason(std::string_view text) {
  if (size_t p = text.find("error: ("); p != std::string_view::npos) {
    if (size_t q = text.find(") ", p); q != std::string_view::npos) text.remove_prefix(q + 2);
  }
  std::string reason;
  bool space = false;
  bool line_start = true;  // continuation lines start with "> "
  for (size_t i = 0; i < text.size(); ++i) {
    if (text.substr(i).starts_with("in function '")) {  // function signatures hold no quotes
      size_t end = text.find('\'', i + 13);
      if (end == std::string_view::npos) break;
      i = end;
      space = true;
      continue;
    }
    const char c = text[i];
    if (c == '\n') line_start = true;
    if (std::isspace(static_cast<unsigned char>(c)) || (line_start && c == '>')) {
      space = true;
      continue;
    }
    line_start = false;
    if (space && !reason.empty()) reason += ' ';
    space = false;
    reason += c;
  }
  return reason;
}

// The message of an exception from readNetFromONNX. For a node it cannot import, OpenCV 4.6
// reports (in cv::Exception::err)
//   > Node [TopK@ai.onnx]:(onnx_node!/TopK) parse error: OpenCV(4.6.0) ...: error: (-2:...)
//     Can't create layer "onnx_node!/TopK" of type "TopK" in function 'getLayerInstance'
// when no layer implements the operator, and another reason after "parse error:" when one does
// but not in the form the model uses (an attribute, an opset, dynamic shapes).
std::string DescribeImportError(const cv::Exception& e) {
  std::string_view err = e.err;
  size_t node = err.find("Node [");
  size_t close = node == std::string_view::npos ? node : err.find(']', node);
  if (close == std::string_view::npos) {
    if (err.find("Failed to parse") != std::string_view::npos) {
      return "not an ONNX model: " + Engine() + " cannot parse it (truncated or corrupt file?)";
    }
    std::string reason = CvReason(err);
    return Engine() +
           " cannot import the model: " + (reason.empty() ? std::string("unknown error") : reason);
  }
  std::string_view op = err.substr(node + 6, close - node - 6);  // "TopK@ai.onnx"
  std::string_view domain;
  if (size_t at = op.find('@'); at != std::string_view::npos) {
    domain = op.substr(at + 1);
    op = op.substr(0, at);
  }
  std::string_view node_name;  // "(onnx_node!/TopK)"
  if (err.substr(close + 1).starts_with(":(")) {
    size_t end = err.find(')', close + 3);
    if (end != std::string_view::npos) node_name = err.substr(close + 3, end - close - 3);
    if (node_name.starts_with("onnx_node!")) node_name.remove_prefix(10);
  }
  std::string_view detail;
  if (size_t p = err.find("parse error: "); p != std::string_view::npos) {
    detail = err.substr(p + 13);
  }
  std::string message = "model uses operator '" + std::string(op) + "'";
  if (!domain.empty() && domain != "ai.onnx") message += " of domain '" + std::string(domain) + "'";
  if (!node_name.empty()) message += " (node '" + std::string(node_name) + "')";
  if (detail.find("Can't create layer") != std::string_view::npos) {
    return message + " which " + Engine() + " cannot run";
  }
  std::string reason = CvReason(detail);
  return message + " in a form " + Engine() + " cannot run" + (reason.empty() ? "" : ": " + reason);
}

// The message of an exception from setInput or forward.
std::string DescribeRunError(const cv::Exception& e) {
  std::string reason = CvReason(e.err);
  if (reason.empty()) reason = "unknown error";
  // "virtual bool cv::dnn::FullyConnectedLayerImpl::getMemoryShapes(const std::vector<...>&, ...)
  // const" says which layer failed; its name is enough.
  std::string_view func = e.func;
  func = func.substr(0, func.find('('));
  if (size_t space = func.rfind(' '); space != std::string_view::npos)
    func.remove_prefix(space + 1);
  if (!func.empty()) reason += " (in " + std::string(func) + ")";
  return reason;
}

// OpenCV has one thread setting for the process. cv::setNumThreads rebuilds its thread pool
// without synchronising with parallel loops other threads may be running, so it is only called
// when the setting changes (a model loaded with another intra_op_threads than the last).
void SetOpenCvThreads(int threads) {
  static std::mutex mu;
  static int current = 0;  // guarded by mu; 0: OpenCV's default, every CPU
  std::lock_guard<std::mutex> lock(mu);
  if (threads == current) return;
  cv::setNumThreads(threads);
  current = threads;
}

bool ShapeMatches(const Shape& declared, const Shape& got) {
  if (declared.size() != got.size()) return false;
  for (size_t i = 0; i < declared.size(); ++i) {
    if (declared[i] != -1 && declared[i] != got[i]) return false;
  }
  return true;
}

// Types OpenCV's FP32 results convert to exactly enough to serve. FLOAT16 and BFLOAT16 would
// need a conversion of their own, STRING and complex values OpenCV dnn does not compute at all.
bool Servable(DataType type) {
  return type == DataType::kFp32 || type == DataType::kFp64 || type == DataType::kBool ||
         IsInteger(type);
}

template <typename T>
void CopyToFloat(const std::byte* bytes, size_t count, float* out) {
  for (size_t i = 0; i < count; ++i) {
    T v;
    std::memcpy(&v, bytes + i * sizeof(T), sizeof(T));
    out[i] = static_cast<float>(v);
  }
}

// Any servable type to FP32, as numpy's astype(float32). Borrowed bytes may be unaligned, hence
// memcpy per element.
void ConvertToFloat(DataType type, const std::byte* bytes, size_t count, float* out) {
  switch (type) {
    case DataType::kFp32:
      std::memcpy(out, bytes, count * sizeof(float));
      return;
    case DataType::kFp64:
      return CopyToFloat<double>(bytes, count, out);
    case DataType::kBool:
    case DataType::kUint8:
      return CopyToFloat<uint8_t>(bytes, count, out);
    case DataType::kUint16:
      return CopyToFloat<uint16_t>(bytes, count, out);
    case DataType::kUint32:
      return CopyToFloat<uint32_t>(bytes, count, out);
    case DataType::kUint64:
      return CopyToFloat<uint64_t>(bytes, count, out);
    case DataType::kInt8:
      return CopyToFloat<int8_t>(bytes, count, out);
    case DataType::kInt16:
      return CopyToFloat<int16_t>(bytes, count, out);
    case DataType::kInt32:
      return CopyToFloat<int32_t>(bytes, count, out);
    case DataType::kInt64:
      return CopyToFloat<int64_t>(bytes, count, out);
    default:
      return;
  }
}

// FP32 to an integer type: rounded to nearest, saturated, NaN as 0 (as cv::saturate_cast).
template <typename T>
T FromFloat(float v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v != 0.0f;
  } else if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(v);
  } else {
    if (std::isnan(v)) return 0;
    const double r = std::nearbyint(static_cast<double>(v));
    if (r <= static_cast<double>(std::numeric_limits<T>::min())) {
      return std::numeric_limits<T>::min();
    }
    if (r >= static_cast<double>(std::numeric_limits<T>::max())) {
      return std::numeric_limits<T>::max();
    }
    return static_cast<T>(r);
  }
}

template <typename T>
TensorData ConvertFromFloat(const float* values, size_t count) {
  TensorData data = TensorData::Allocate(count * sizeof(T));
  std::byte* out = data.mutable_data();
  for (size_t i = 0; i < count; ++i) {
    T v = FromFloat<T>(values[i]);
    std::memcpy(out + i * sizeof(T), &v, sizeof(T));
  }
  return data;
}

TensorData FloatsAs(DataType type, const float* values, size_t count) {
  switch (type) {
    case DataType::kFp64:
      return ConvertFromFloat<double>(values, count);
    case DataType::kBool:
      return ConvertFromFloat<bool>(values, count);
    case DataType::kUint8:
      return ConvertFromFloat<uint8_t>(values, count);
    case DataType::kUint16:
      return ConvertFromFloat<uint16_t>(values, count);
    case DataType::kUint32:
      return ConvertFromFloat<uint32_t>(values, count);
    case DataType::kUint64:
      return ConvertFromFloat<uint64_t>(values, count);
    case DataType::kInt8:
      return ConvertFromFloat<int8_t>(values, count);
    case DataType::kInt16:
      return ConvertFromFloat<int16_t>(values, count);
    case DataType::kInt32:
      return ConvertFromFloat<int32_t>(values, count);
    case DataType::kInt64:
      return ConvertFromFloat<int64_t>(values, count);
    default:
      return TensorData::CopyOf(values, count * sizeof(float));
  }
}

// The networks of one model, each used by one thread at a time: cv::dnn::Net::forward writes
// the layers' buffers, and setInput the network's inputs. Thread-safe.
class NetPool {
 public:
  // Returns its network to the pool when destroyed.
  class Lease {
   public:
    Lease(NetPool* pool, size_t index) : pool_(pool), index_(index) {}
    ~Lease() { pool_->Release(index_); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    cv::dnn::Net& net() { return pool_->nets_[index_]; }

   private:
    NetPool* pool_;
    size_t index_;
  };

  // Only before the first Acquire.
  void Add(cv::dnn::Net net) {
    free_.push_back(nets_.size());
    nets_.push_back(std::move(net));
  }
  size_t size() const { return nets_.size(); }
  // Waits until a network is free.
  Lease Acquire() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return !free_.empty(); });
    size_t index = free_.back();
    free_.pop_back();
    return Lease(this, index);
  }

 private:
  void Release(size_t index) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      free_.push_back(index);
    }
    cv_.notify_one();
  }

  std::vector<cv::dnn::Net> nets_;  // fixed once serving starts
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<size_t> free_;  // guarded by mu_
};

class OnnxModel final : public Model {
 public:
  static StatusOr<std::unique_ptr<Model>> Create(const ModelConfig& config);

  const ModelMetadata& metadata() const override { return metadata_; }
  Status Execute(const InferRequest& request, InferResponse* response) override;

 private:
  OnnxModel() = default;

  Status MakeBlob(const Tensor& tensor, const OnnxValue& spec, DataType declared,
                  cv::Mat* blob) const;
  // Runs `net` on `blobs` (one per graph input, in order); `outputs` get OpenCV's results.
  Status Forward(cv::dnn::Net& net, const std::vector<cv::Mat>& blobs,
                 std::vector<cv::Mat>* outputs) const;
  // Batch 1, zeros, for the trial run at load; false when the shapes are too open to guess.
  bool TrialBlobs(std::vector<cv::Mat>* blobs) const;

  std::vector<OnnxValue> inputs_;
  std::vector<OnnxValue> outputs_;
  std::vector<cv::String> output_names_;
  NetPool nets_;
  ModelMetadata metadata_;
};

StatusOr<std::string> ReadFile(const std::filesystem::path& file) {
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) {
    return InvalidArgument("cannot read ONNX model file '" + file.string() +
                           "': it is a directory");
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    const std::string reason =
        std::filesystem::exists(file, ec) ? "cannot be opened" : "does not exist";
    return InvalidArgument("cannot read ONNX model file '" + file.string() + "': it " + reason);
  }
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    return InvalidArgument("cannot read ONNX model file '" + file.string() + "': read error");
  }
  return bytes;
}

StatusOr<std::unique_ptr<Model>> OnnxModel::Create(const ModelConfig& config) {
  QUIVER_ASSIGN_OR_RETURN(int64_t threads, config.IntParameter("intra_op_threads", 1));
  if (threads < 1 || threads > 1024) {
    return InvalidArgument("parameters.intra_op_threads: expected 1 to 1024 threads, got " +
                           std::to_string(threads));
  }
  const std::string file = config.model_file.string();
  if (file.empty()) {
    return InvalidArgument("model '" + config.name + "': no ONNX model file (*.onnx) in '" +
                           config.path.string() + "'");
  }
  QUIVER_ASSIGN_OR_RETURN(std::string bytes, ReadFile(config.model_file));
  StatusOr<OnnxGraph> graph = onnx_runtime::ParseOnnxGraph(bytes);
  if (!graph.ok()) {
    return InvalidArgument("ONNX model file '" + file + "': " + graph.status().message());
  }

  std::unique_ptr<OnnxModel> model(new OnnxModel());
  ModelMetadata& metadata = model->metadata_;
  metadata.platform = "onnx";
  // Execute checks the inputs itself: it converts datatypes the generic check would refuse.
  metadata.check_inputs = false;
  for (bool input : {true, false}) {
    for (const OnnxValue& value : input ? graph->inputs : graph->outputs) {
      std::optional<DataType> type = onnx_runtime::DataTypeOfOnnxType(value.elem_type);
      if (!type || !Servable(*type)) {
        return InvalidArgument("ONNX model file '" + file +
                               "': " + (input ? "input '" : "output '") + value.name +
                               "' is of type " + onnx_runtime::OnnxTypeName(value.elem_type) +
                               "; this runtime serves FLOAT, DOUBLE, integer and BOOL tensors");
      }
      (input ? metadata.inputs : metadata.outputs).push_back({value.name, *type, value.shape});
      if (!input) model->output_names_.push_back(value.name);
    }
  }
  model->inputs_ = std::move(graph->inputs);
  model->outputs_ = std::move(graph->outputs);

  SetOpenCvThreads(static_cast<int>(threads));
  std::vector<cv::Mat> trial;
  const bool run_trial = model->TrialBlobs(&trial);
  for (int i = 0; i < config.instance_count; ++i) {
    cv::dnn::Net net;
    try {
      net = cv::dnn::readNetFromONNX(bytes.data(), bytes.size());
      net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
      net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    } catch (const cv::Exception& e) {
      return InvalidArgument("ONNX model file '" + file + "': " + DescribeImportError(e));
    } catch (const std::exception& e) {
      return InvalidArgument("ONNX model file '" + file + "': " + Engine() +
                             " cannot import the model: " + e.what());
    }
    if (net.empty()) {
      return InvalidArgument("ONNX model file '" + file + "': " + Engine() +
                             " imported no layers from it");
    }
    if (run_trial) {
      std::vector<cv::Mat> outputs;
      if (Status s = model->Forward(net, trial, &outputs); !s.ok()) {
        return InvalidArgument(
            "ONNX model file '" + file + "': " + Engine() +
            " imports the model but fails to run it on a batch of 1: " + s.message());
      }
    }
    model->nets_.Add(std::move(net));
  }
  return std::unique_ptr<Model>(std::move(model));
}

bool OnnxModel::TrialBlobs(std::vector<cv::Mat>* blobs) const {
  for (const OnnxValue& input : inputs_) {
    if (!input.has_shape || input.shape.empty()) return false;
    std::vector<int> sizes;
    for (size_t d = 0; d < input.shape.size(); ++d) {
      int64_t n = input.shape[d];
      if (n == -1 && d == 0) n = 1;
      if (n <= 0 || n > 4096) return false;
      sizes.push_back(static_cast<int>(n));
    }
    blobs->emplace_back(static_cast<int>(sizes.size()), sizes.data(), CV_32F, cv::Scalar(0));
  }
  return true;
}

Status OnnxModel::Forward(cv::dnn::Net& net, const std::vector<cv::Mat>& blobs,
                          std::vector<cv::Mat>* outputs) const {
  try {
    for (size_t i = 0; i < blobs.size(); ++i) net.setInput(blobs[i], inputs_[i].name);
    net.forward(*outputs, output_names_);
  } catch (const cv::Exception& e) {
    return Internal(DescribeRunError(e));
  } catch (const std::exception& e) {
    return Internal(e.what());
  }
  if (outputs->size() != output_names_.size()) {
    return Internal("OpenCV returned " + std::to_string(outputs->size()) + " outputs for " +
                    std::to_string(output_names_.size()) + " requested");
  }
  return Status::Ok();
}

Status OnnxModel::MakeBlob(const Tensor& tensor, const OnnxValue& spec, DataType declared,
                           cv::Mat* blob) const {
  const std::string what = "input '" + tensor.name + "'";
  if (!Servable(tensor.datatype)) {
    return InvalidArgument(what + ": datatype " + std::string(DataTypeName(tensor.datatype)) +
                           " is not supported; expected " + std::string(DataTypeName(declared)) +
                           " (FP32, FP64, integer and BOOL inputs are all converted to FP32, "
                           "which OpenCV dnn computes in)");
  }
  if (spec.has_shape && !ShapeMatches(spec.shape, tensor.shape)) {
    return InvalidArgument(what + ": expected shape " + ShapeToString(spec.shape) + ", got " +
                           ShapeToString(tensor.shape));
  }
  if (tensor.shape.size() > kMaxDims) {
    return InvalidArgument(what + ": shape " + ShapeToString(tensor.shape) + " has more than " +
                           std::to_string(kMaxDims) + " dimensions");
  }
  std::vector<int> sizes;
  for (int64_t d : tensor.shape) {
    if (d < 0 || d > INT_MAX) {
      return InvalidArgument(what + ": invalid shape " + ShapeToString(tensor.shape));
    }
    sizes.push_back(static_cast<int>(d));
  }
  if (sizes.empty()) sizes.push_back(1);  // a scalar: OpenCV has no rank-0 blobs
  const int64_t count = ElementCount(tensor.shape);
  if (count == 0) {
    return InvalidArgument(what + ": shape " + ShapeToString(tensor.shape) +
                           " has no elements, which OpenCV dnn cannot run");
  }
  const size_t element_size = DataTypeSize(tensor.datatype);
  if (count < 0 || count > INT_MAX ||
      tensor.data.size() != static_cast<size_t>(count) * element_size) {
    return InvalidArgument(what + ": " + std::to_string(tensor.data.size()) +
                           " bytes of data do not match shape " + ShapeToString(tensor.shape) +
                           " of " + std::string(DataTypeName(tensor.datatype)));
  }
  const std::byte* bytes = tensor.data.data();
  if (tensor.datatype == DataType::kFp32 &&
      reinterpret_cast<uintptr_t>(bytes) % alignof(float) == 0) {
    // No copy: setInput copies the blob into the network. The Mat only reads.
    *blob = cv::Mat(static_cast<int>(sizes.size()), sizes.data(), CV_32F,
                    const_cast<std::byte*>(bytes));
    return Status::Ok();
  }
  blob->create(static_cast<int>(sizes.size()), sizes.data(), CV_32F);
  ConvertToFloat(tensor.datatype, bytes, static_cast<size_t>(count), blob->ptr<float>());
  return Status::Ok();
}

// OpenCV does not always keep ONNX's rank ([n] comes back as [n, 1], for example). The graph's
// shape wins when the element count settles it; otherwise OpenCV's is returned.
Shape OutputShape(const OnnxValue& spec, const cv::Mat& mat) {
  Shape got(mat.size.p, mat.size.p + mat.dims);
  if (!spec.has_shape || ShapeMatches(spec.shape, got)) return got;
  const int64_t total = static_cast<int64_t>(mat.total());
  int64_t known = 1;
  int unknown = -1;
  for (size_t i = 0; i < spec.shape.size(); ++i) {
    if (spec.shape[i] >= 0) {
      known *= spec.shape[i];
    } else if (unknown == -1) {
      unknown = static_cast<int>(i);
    } else {
      return got;  // two unknown dimensions: no single answer
    }
  }
  Shape shape = spec.shape;
  if (unknown == -1) return known == total ? shape : got;
  if (known <= 0 || total % known != 0) return got;
  shape[unknown] = total / known;
  return shape;
}

Status OnnxModel::Execute(const InferRequest& request, InferResponse* response) {
  for (const Tensor& t : request.inputs) {
    bool known = false;
    for (const OnnxValue& spec : inputs_) known = known || spec.name == t.name;
    if (!known) {
      std::string names;
      for (const OnnxValue& spec : inputs_) names += (names.empty() ? "" : ", ") + spec.name;
      return InvalidArgument("unexpected input '" + t.name + "' for model '" + request.model_name +
                             "'; it takes: " + names);
    }
  }
  std::vector<cv::Mat> blobs(inputs_.size());
  // Sizes of the symbolic dimensions seen so far: inputs that share one ("batch") must agree.
  std::vector<std::tuple<std::string_view, int64_t, const std::string*>> symbols;
  for (size_t i = 0; i < inputs_.size(); ++i) {
    const Tensor* tensor = request.FindInput(inputs_[i].name);
    if (tensor == nullptr) {
      return InvalidArgument("missing input '" + inputs_[i].name + "' for model '" +
                             request.model_name + "'");
    }
    QUIVER_RETURN_IF_ERROR(MakeBlob(*tensor, inputs_[i], metadata_.inputs[i].datatype, &blobs[i]));
    const std::vector<std::string>& params = inputs_[i].dim_params;
    for (size_t d = 0; d < params.size() && d < tensor->shape.size(); ++d) {
      if (params[d].empty()) continue;
      bool seen = false;
      for (const auto& [symbol, size, first] : symbols) {
        if (symbol != params[d]) continue;
        seen = true;
        if (size != tensor->shape[d]) {
          return InvalidArgument("input '" + tensor->name + "': dimension " + std::to_string(d) +
                                 " ('" + params[d] + "') is " + std::to_string(tensor->shape[d]) +
                                 " but it is " + std::to_string(size) + " in input '" + *first +
                                 "'");
        }
      }
      if (!seen) symbols.emplace_back(params[d], tensor->shape[d], &tensor->name);
    }
  }

  std::vector<cv::Mat> results;
  NetPool::Lease lease = nets_.Acquire();
  if (Status s = Forward(lease.net(), blobs, &results); !s.ok()) {
    return Internal(Engine() + " failed to run the model: " + s.message());
  }
  // The results are views of the network's buffers: copied out before the lease ends.
  for (size_t i = 0; i < outputs_.size(); ++i) {
    cv::Mat values = results[i];
    if (values.type() != CV_32F) values.convertTo(values, CV_32F);
    if (!values.isContinuous()) values = values.clone();
    Tensor output;
    output.name = outputs_[i].name;
    output.datatype = metadata_.outputs[i].datatype;
    output.shape = OutputShape(outputs_[i], values);
    output.data = FloatsAs(output.datatype, values.ptr<float>(), values.total());
    response->outputs.push_back(std::move(output));
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::unique_ptr<Model>> OnnxRuntime::Load(const ModelConfig& config) {
  return OnnxModel::Create(config);
}

}  // namespace quiver

QUIVER_RUNTIME_PLUGIN(quiver::OnnxRuntime)
