#include "runtimes/xgboost/xgboost_runtime.h"

#include <omp.h>
#include <xgboost/c_api.h>
#include <xgboost/version_config.h>

#include <cctype>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runtimes/xgboost/model_check.h"

// The thread-safety argument below (thread-local prediction buffers and caches, a configuration
// lock, proxy DMatrix support) was checked against XGBoost 1.7; older versions differ.
static_assert(XGBOOST_VER_MAJOR > 1 || (XGBOOST_VER_MAJOR == 1 && XGBOOST_VER_MINOR >= 7),
              "the XGBoost runtime needs XGBoost 1.7 or newer");

namespace quiver {
namespace {

// Running a request on the I/O thread that decoded it saves a thread hand-off (~10-20 µs with
// the wake-up) but stalls every other connection on that thread for as long as it runs. Tree
// traversal costs about 3 ns per row and tree for shallow trees (iris) and 15-20 ns for depth-6
// trees over 20 features (bench: xgboost_predict_bench), plus ~5 µs fixed. A budget of 4096
// row-trees keeps an inline call under ~80 µs: the iris model (60 trees) runs inline up to its
// 64-row cap, the 100-tree regressor up to 40 rows, a 1000-tree model only at batch 1-4.
constexpr int64_t kInlineMaxRows = 64;
constexpr int64_t kInlineMaxRowTrees = 4096;

// Inputs are dense [batch, features] rows; past this a single row would be over 64 MB, and a
// larger number is more likely a corrupt file than a model anyone serves this way.
constexpr int64_t kMaxFeatures = int64_t{1} << 24;

// Prediction settings as xgbserver's `booster.predict(DMatrix(x))`: values (not margins), all
// trees, NaN marks a missing feature. strict_shape=false gives [n] for one output per row and
// [n, k] otherwise, which is what KServe returns. cache_id must be 0 in XGBoost 1.7.
constexpr char kPredictConfig[] =
    R"({"type":0,"training":false,"iteration_begin":0,"iteration_end":0,)"
    R"("strict_shape":false,"cache_id":0,"missing":NaN})";
// Only for boosters without inplace prediction (gblinear), which are cheap to predict anyway.
constexpr char kDMatrixConfig[] = R"({"missing":NaN,"nthread":1})";

// XGBoost reports "[hh:mm:ss] ../src/file.cc:123: reason" and more lines (a stack trace, a
// caret under a JSON parse error); a user wants the reason.
std::string LastXgboostError() {
  std::string_view e = XGBGetLastError();
  if (e.starts_with('[')) {
    if (size_t p = e.find("] "); p != std::string_view::npos) e.remove_prefix(p + 2);
  }
  // A source location "path:line: ", with no spaces in the path.
  if (size_t colon = e.find(": "); colon != std::string_view::npos) {
    std::string_view location = e.substr(0, colon);
    size_t line_colon = location.rfind(':');
    if (line_colon != std::string_view::npos && line_colon + 1 < location.size() &&
        location.find(' ') == std::string_view::npos &&
        location.find_first_not_of("0123456789", line_colon + 1) == std::string_view::npos) {
      e.remove_prefix(colon + 2);
    }
  }
  e = e.substr(0, e.find('\n'));
  // A failed CHECK with no message ends in " :".
  while (!e.empty() && (std::isspace(static_cast<unsigned char>(e.back())) || e.back() == ':')) {
    e.remove_suffix(1);
  }
  return e.empty() ? std::string("unknown XGBoost error") : std::string(e);
}

struct BoosterDeleter {
  void operator()(void* booster) const { XGBoosterFree(booster); }
};
using BoosterPtr = std::unique_ptr<void, BoosterDeleter>;

struct DMatrixDeleter {
  void operator()(void* matrix) const { XGDMatrixFree(matrix); }
};
using DMatrixPtr = std::unique_ptr<void, DMatrixDeleter>;

// XGBoost's inplace prediction takes a proxy DMatrix that only describes the caller's buffer.
// Creating one per call costs as much as predicting a row (measurements.md), so each thread keeps
// one and points it at each request's bytes in turn. One proxy serves every model: it holds no
// model state, and each call replaces the description the previous one left. Null when XGBoost
// could not create it; the caller then reports the error.
DMatrixHandle ThreadProxy() {
  // Freed at thread exit. glibc keeps this plugin mapped until then, so the destructor's code is
  // still there even if the plugin were unloaded first (plugins never are).
  thread_local DMatrixPtr proxy = [] {
    DMatrixHandle handle = nullptr;
    if (XGProxyDMatrixCreate(&handle) != 0) handle = nullptr;
    return DMatrixPtr(handle);
  }();
  return proxy.get();
}

// Checks the document XGBoost is about to parse, before it does (see model_check.h). XGBoost
// picks its parser by extension: .json is JSON text, .ubj is UBJSON, anything else its legacy
// binary format, unless the file starts with '{': then JSON text if a '"' follows, UBJSON if a
// letter does. Legacy binary files are only checked once loaded, re-serialized as JSON.
Status CheckModelFile(const std::filesystem::path& file) {
  std::string extension = file.extension().string();
  for (char& c : extension) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::ifstream in(file, std::ios::binary);
  if (!in) return Status::Ok();  // XGBoost says why
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  bool json = extension == ".json";
  bool ubj = extension == ".ubj";
  if (!json && !ubj && bytes.size() >= 2 && bytes[0] == '{') {
    json = bytes[1] == '"';
    ubj = std::isalpha(static_cast<unsigned char>(bytes[1])) != 0;
  }
  if (json) return xgboost_runtime::CheckModelJson(bytes).status();
  if (ubj) {
    QUIVER_ASSIGN_OR_RETURN(std::string text, xgboost_runtime::UbjToJson(bytes));
    return xgboost_runtime::CheckModelJson(text).status();
  }
  return Status::Ok();
}

// XGBoost parses a model's trees on an OpenMP team as large as the machine, before any nthread
// parameter applies (it takes effect on first use). This caps the team of the calling thread
// meanwhile: loading then keeps to the model's thread budget and starts no threads when it is 1.
// The limit is a setting of the calling thread, so it is put back.
class ScopedOmpThreadLimit {
 public:
  explicit ScopedOmpThreadLimit(int threads) : previous_(omp_get_max_threads()) {
    omp_set_num_threads(threads);
  }
  ~ScopedOmpThreadLimit() { omp_set_num_threads(previous_); }
  ScopedOmpThreadLimit(const ScopedOmpThreadLimit&) = delete;
  ScopedOmpThreadLimit& operator=(const ScopedOmpThreadLimit&) = delete;

 private:
  int previous_;
};

// A dense row-major matrix as XGBoost reads it: the data pointer and numpy's array interface.
struct DenseMatrix {
  const void* data = nullptr;
  const char* typestr = nullptr;  // "<f4" or "<f8"
  int64_t rows = 0;
  int64_t columns = 0;

  // {"data":[140234...,true],"shape":[64,20],"typestr":"<f4","version":3}
  std::string ArrayInterface() const {
    char buffer[160];
    int n = std::snprintf(buffer, sizeof(buffer),
                          R"({"data":[%)" PRIuPTR R"(,true],"shape":[%)" PRId64 ",%" PRId64
                          R"(],"typestr":"%s","version":3})",
                          reinterpret_cast<uintptr_t>(data), rows, columns, typestr);
    return std::string(buffer, static_cast<size_t>(n));
  }
};

class XgboostModel final : public Model {
 public:
  static StatusOr<std::unique_ptr<Model>> Create(const ModelConfig& config);

  const ModelMetadata& metadata() const override { return metadata_; }
  Status Execute(const InferRequest& request, InferResponse* response) override;
  bool CanRunInline(const InferRequest& request) const override;

 private:
  XgboostModel() = default;

  // Runs XGBoost on `input`; on success `shape` and `values` describe predictions held in
  // XGBoost's per-thread buffer, valid until this thread's next prediction on this booster.
  Status Predict(const DenseMatrix& input, const bst_ulong** shape, bst_ulong* dims,
                 const float** values) const;

  BoosterPtr booster_;
  int64_t num_features_ = 0;
  int64_t num_trees_ = 0;
  int64_t nthread_ = 1;
  // Inplace prediction (the fast path), or for gblinear, which lacks it, a DMatrix per call.
  bool inplace_ = true;
  // The prediction shape past the batch dimension: {} or {classes}.
  Shape row_shape_;
  int64_t values_per_row_ = 1;
  ModelMetadata metadata_;
};

Status XgboostModel::Predict(const DenseMatrix& input, const bst_ulong** shape, bst_ulong* dims,
                             const float** values) const {
  const std::string array = input.ArrayInterface();
  if (inplace_) {
    DMatrixHandle proxy = ThreadProxy();
    if (proxy == nullptr) return Internal("creating an XGBoost proxy DMatrix failed");
    if (XGBoosterPredictFromDense(booster_.get(), array.c_str(), kPredictConfig, proxy, shape, dims,
                                  values) != 0) {
      return Internal("XGBoost prediction failed: " + LastXgboostError());
    }
    return Status::Ok();
  }
  DMatrixHandle handle = nullptr;
  if (XGDMatrixCreateFromDense(array.c_str(), kDMatrixConfig, &handle) != 0) {
    return Internal("creating an XGBoost DMatrix failed: " + LastXgboostError());
  }
  DMatrixPtr matrix(handle);
  if (XGBoosterPredictFromDMatrix(booster_.get(), matrix.get(), kPredictConfig, shape, dims,
                                  values) != 0) {
    return Internal("XGBoost prediction failed: " + LastXgboostError());
  }
  return Status::Ok();
}

StatusOr<std::unique_ptr<Model>> XgboostModel::Create(const ModelConfig& config) {
  QUIVER_ASSIGN_OR_RETURN(int64_t nthread, config.IntParameter("nthread", 1));
  if (nthread < 1 || nthread > 1024) {
    return InvalidArgument("parameters.nthread: expected 1 to 1024 threads, got " +
                           std::to_string(nthread));
  }
  const std::string file = config.model_file.string();
  if (file.empty()) {
    return InvalidArgument(
        "model '" + config.name +
        "': no XGBoost model file (a .json, .ubj or .bst saved by XGBoost) in '" +
        config.path.string() + "'");
  }

  ScopedOmpThreadLimit thread_limit(static_cast<int>(nthread));
  std::unique_ptr<XgboostModel> model(new XgboostModel());
  model->nthread_ = nthread;
  BoosterHandle handle = nullptr;
  if (XGBoosterCreate(nullptr, 0, &handle) != 0) {
    return Internal("creating an XGBoost booster failed: " + LastXgboostError());
  }
  model->booster_.reset(handle);
  if (Status checked = CheckModelFile(config.model_file); !checked.ok()) {
    return InvalidArgument("XGBoost model file '" + file + "' is corrupt: " + checked.message());
  }
  if (XGBoosterLoadModel(handle, file.c_str()) != 0) {
    return InvalidArgument("cannot load XGBoost model file '" + file + "': " + LastXgboostError());
  }
  const std::string threads = std::to_string(nthread);
  if (XGBoosterSetParam(handle, "nthread", threads.c_str()) != 0) {
    return Internal("setting nthread on XGBoost model '" + file + "': " + LastXgboostError());
  }
  bst_ulong num_features = 0;
  if (XGBoosterGetNumFeature(handle, &num_features) != 0) {
    return InvalidArgument("XGBoost model file '" + file +
                           "': cannot read its number of features: " + LastXgboostError());
  }
  if (num_features == 0 || num_features > static_cast<bst_ulong>(kMaxFeatures)) {
    return InvalidArgument("XGBoost model file '" + file + "' declares " +
                           std::to_string(num_features) + " features; expected 1 to " +
                           std::to_string(kMaxFeatures));
  }
  model->num_features_ = static_cast<int64_t>(num_features);

  // Once more on the model as XGBoost understood it, for legacy binary files and for any
  // difference between XGBoost's reading of a document and ours.
  bst_ulong json_length = 0;
  const char* json = nullptr;
  if (XGBoosterSaveModelToBuffer(handle, R"({"format":"json"})", &json_length, &json) != 0) {
    return InvalidArgument("XGBoost model file '" + file +
                           "' cannot be serialized: " + LastXgboostError());
  }
  StatusOr<xgboost_runtime::ModelStructure> structure =
      xgboost_runtime::CheckModelJson(std::string_view(json, json_length));
  if (!structure.ok() || structure->num_features != model->num_features_) {
    return InvalidArgument(
        "XGBoost model file '" + file + "' is corrupt: " +
        (structure.ok() ? "inconsistent number of features" : structure.status().message()));
  }
  model->num_trees_ = structure->num_trees;

  // XGBoost 1.7 has no inplace prediction for linear boosters.
  model->inplace_ = structure->booster != "gblinear";

  // One row of missing values, predicted now rather than by the first request: it finishes
  // XGBoost's lazy configuration on this thread (later calls skip its lock) and tells the output
  // shape for the metadata.
  std::vector<float> row(num_features, std::numeric_limits<float>::quiet_NaN());
  DenseMatrix warmup{row.data(), "<f4", 1, model->num_features_};
  const bst_ulong* shape = nullptr;
  bst_ulong dims = 0;
  const float* values = nullptr;
  if (Status s = model->Predict(warmup, &shape, &dims, &values); !s.ok()) {
    return Internal("XGBoost model file '" + file + "' loaded but cannot predict: " + s.message());
  }
  if (dims < 1 || shape[0] != 1) {
    return Internal("XGBoost model file '" + file + "': unexpected prediction shape");
  }
  for (bst_ulong i = 1; i < dims; ++i) {
    model->row_shape_.push_back(static_cast<int64_t>(shape[i]));
    model->values_per_row_ *= static_cast<int64_t>(shape[i]);
  }

  ModelMetadata& metadata = model->metadata_;
  metadata.platform = "xgboost";
  metadata.inputs.push_back({"input-0", DataType::kFp32, {-1, model->num_features_}});
  Shape output_shape = {-1};
  output_shape.insert(output_shape.end(), model->row_shape_.begin(), model->row_shape_.end());
  metadata.outputs.push_back({"output-0", DataType::kFp32, std::move(output_shape)});
  // As xgbserver, any input name is accepted; Execute checks the rest with clearer messages
  // than a generic check could give.
  metadata.check_inputs = false;
  return std::unique_ptr<Model>(std::move(model));
}

// Converts integer and BOOL elements to float as numpy's astype(float32) does.
template <typename T>
void ConvertToFloat(const std::byte* bytes, size_t count, float* out) {
  for (size_t i = 0; i < count; ++i) {
    T v;
    std::memcpy(&v, bytes + i * sizeof(T), sizeof(T));
    out[i] = static_cast<float>(v);
  }
}

// For BOOL and the integer types only.
void ConvertIntegers(DataType type, const std::byte* bytes, size_t count, float* out) {
  switch (type) {
    case DataType::kBool:
    case DataType::kUint8:
      return ConvertToFloat<uint8_t>(bytes, count, out);
    case DataType::kUint16:
      return ConvertToFloat<uint16_t>(bytes, count, out);
    case DataType::kUint32:
      return ConvertToFloat<uint32_t>(bytes, count, out);
    case DataType::kUint64:
      return ConvertToFloat<uint64_t>(bytes, count, out);
    case DataType::kInt8:
      return ConvertToFloat<int8_t>(bytes, count, out);
    case DataType::kInt16:
      return ConvertToFloat<int16_t>(bytes, count, out);
    case DataType::kInt32:
      return ConvertToFloat<int32_t>(bytes, count, out);
    case DataType::kInt64:
      return ConvertToFloat<int64_t>(bytes, count, out);
    default:
      return;
  }
}

Status XgboostModel::Execute(const InferRequest& request, InferResponse* response) {
  if (request.inputs.size() != 1) {
    std::string names;
    for (const Tensor& t : request.inputs) names += (names.empty() ? "'" : ", '") + t.name + "'";
    return InvalidArgument("an XGBoost model takes exactly one input of shape [batch, " +
                           std::to_string(num_features_) + "], got " +
                           std::to_string(request.inputs.size()) +
                           (names.empty() ? "" : ": " + names));
  }
  const Tensor& input = request.inputs[0];
  const std::string expected = "[batch, " + std::to_string(num_features_) + "]";
  if (input.shape.size() != 2) {
    return InvalidArgument("input '" + input.name + "': expected shape " + expected + ", got " +
                           ShapeToString(input.shape));
  }
  if (input.shape[0] < 0 || input.shape[1] < 0) {
    return InvalidArgument("input '" + input.name + "': invalid shape " +
                           ShapeToString(input.shape));
  }
  if (input.shape[1] != num_features_) {
    return InvalidArgument("input '" + input.name + "': the model expects " +
                           std::to_string(num_features_) + " features per row (shape " + expected +
                           "), got " + std::to_string(input.shape[1]) + " (shape " +
                           ShapeToString(input.shape) + ")");
  }
  const DataType type = input.datatype;
  if (type != DataType::kFp32 && type != DataType::kFp64 && type != DataType::kBool &&
      !IsInteger(type)) {
    return InvalidArgument("input '" + input.name + "': datatype " +
                           std::string(DataTypeName(type)) +
                           " is not supported; expected FP32 or FP64 (integer and BOOL inputs are "
                           "converted to FP32)");
  }
  const int64_t rows = input.shape[0];
  const int64_t count = ElementCount(input.shape);
  const size_t element_size = DataTypeSize(type);
  if (count < 0 || input.data.size() != static_cast<size_t>(count) * element_size) {
    return InvalidArgument("input '" + input.name + "': " + std::to_string(input.data.size()) +
                           " bytes of data do not match shape " + ShapeToString(input.shape) +
                           " of " + std::string(DataTypeName(type)));
  }

  Tensor output;
  output.name = "output-0";
  output.datatype = DataType::kFp32;
  output.shape = {rows};
  output.shape.insert(output.shape.end(), row_shape_.begin(), row_shape_.end());
  if (rows == 0) {  // XGBoost rejects an empty matrix; the answer is known anyway.
    response->outputs.push_back(std::move(output));
    return Status::Ok();
  }

  DenseMatrix matrix{input.data.data(), type == DataType::kFp64 ? "<f8" : "<f4", rows,
                     num_features_};
  // Copies are needed only for integers, and for floats a binary request placed at an offset
  // that is not a multiple of their size (XGBoost refuses misaligned data).
  std::vector<float> converted;
  std::vector<double> aligned;
  if (type == DataType::kFp32 || type == DataType::kFp64) {
    if (reinterpret_cast<uintptr_t>(matrix.data) % element_size != 0) {
      if (type == DataType::kFp32) {
        converted.resize(static_cast<size_t>(count));
        std::memcpy(converted.data(), matrix.data, input.data.size());
        matrix.data = converted.data();
      } else {
        aligned.resize(static_cast<size_t>(count));
        std::memcpy(aligned.data(), matrix.data, input.data.size());
        matrix.data = aligned.data();
      }
    }
  } else {
    converted.resize(static_cast<size_t>(count));
    ConvertIntegers(type, input.data.data(), static_cast<size_t>(count), converted.data());
    matrix.data = converted.data();
    matrix.typestr = "<f4";
  }

  const bst_ulong* shape = nullptr;
  bst_ulong dims = 0;
  const float* values = nullptr;
  QUIVER_RETURN_IF_ERROR(Predict(matrix, &shape, &dims, &values));
  int64_t produced = 1;
  for (bst_ulong i = 0; i < dims; ++i) produced *= static_cast<int64_t>(shape[i]);
  if (dims < 1 || static_cast<int64_t>(shape[0]) != rows || produced != rows * values_per_row_) {
    return Internal("XGBoost returned " + std::to_string(produced) + " predictions for " +
                    std::to_string(rows) + " rows, expected " +
                    std::to_string(rows * values_per_row_));
  }
  output.data = TensorData::CopyOf(values, static_cast<size_t>(produced) * sizeof(float));
  response->outputs.push_back(std::move(output));
  return Status::Ok();
}

bool XgboostModel::CanRunInline(const InferRequest& request) const {
  // With more threads XGBoost would start an OpenMP team on each I/O thread.
  if (nthread_ > 1) return false;
  // Requests Execute rejects are rejected quickly.
  if (request.inputs.size() != 1 || request.inputs[0].shape.size() != 2) return true;
  const int64_t rows = request.inputs[0].shape[0];
  if (rows > kInlineMaxRows) return false;
  return rows * num_trees_ <= kInlineMaxRowTrees;
}

}  // namespace

StatusOr<std::unique_ptr<Model>> XgboostRuntime::Load(const ModelConfig& config) {
  return XgboostModel::Create(config);
}

}  // namespace quiver

QUIVER_RUNTIME_PLUGIN(quiver::XgboostRuntime)
