#include "runtime/builtin_models.h"

#include <simdjson.h>

#include <chrono>
#include <cstring>
#include <thread>

namespace quiver {
namespace {

// Returns every input unchanged as "output-<i>", sharing its bytes; copies request parameters
// onto the response and each input's parameters onto its output.
class EchoModel : public Model {
 public:
  EchoModel() { metadata_.check_inputs = false; }
  const ModelMetadata& metadata() const override { return metadata_; }
  bool CanRunInline(const InferRequest&) const override { return true; }
  bool TakesV1Json() const override { return true; }

  // {"instances": X} or {"inputs": X} -> {"predictions": X}, X unchanged.
  Status PredictV1(std::string_view body, const RequestHeaders*, std::string* response) override {
    thread_local simdjson::dom::parser parser;
    simdjson::dom::element root, payload;
    if (parser.parse(body.data(), body.size(), true).get(root) != simdjson::SUCCESS ||
        root.type() != simdjson::dom::element_type::OBJECT) {
      return InvalidArgument("request body: expected a JSON object");
    }
    simdjson::dom::object obj(root);
    if (obj["instances"].get(payload) != simdjson::SUCCESS &&
        obj["inputs"].get(payload) != simdjson::SUCCESS) {
      return InvalidArgument("Expected \"instances\" or \"inputs\" in the request body");
    }
    *response = "{\"predictions\":" + simdjson::minify(payload) + "}";
    return Status::Ok();
  }

  Status Execute(const InferRequest& request, InferResponse* response) override {
    response->parameters = request.parameters;
    response->outputs.reserve(request.inputs.size());
    for (size_t i = 0; i < request.inputs.size(); ++i) {
      Tensor out = request.inputs[i];
      out.name = "output-" + std::to_string(i);
      response->outputs.push_back(std::move(out));
    }
    return Status::Ok();
  }

 private:
  ModelMetadata metadata_;
};

// Triton's classic: OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1, INT32 [-1, 16].
class AddSubModel : public Model {
 public:
  AddSubModel() {
    Shape s = {-1, 16};
    metadata_.inputs = {{"INPUT0", DataType::kInt32, s}, {"INPUT1", DataType::kInt32, s}};
    metadata_.outputs = {{"OUTPUT0", DataType::kInt32, s}, {"OUTPUT1", DataType::kInt32, s}};
  }
  const ModelMetadata& metadata() const override { return metadata_; }
  bool CanRunInline(const InferRequest&) const override { return true; }

  Status Execute(const InferRequest& request, InferResponse* response) override {
    const Tensor* a = request.FindInput("INPUT0");
    const Tensor* b = request.FindInput("INPUT1");
    if (a == nullptr || b == nullptr) return InvalidArgument("add_sub needs INPUT0 and INPUT1");
    if (a->shape != b->shape) {
      return InvalidArgument("INPUT0 shape " + ShapeToString(a->shape) +
                             " differs from INPUT1 shape " + ShapeToString(b->shape));
    }
    size_t n = static_cast<size_t>(a->element_count());
    TensorData sum = TensorData::Allocate(n * 4);
    TensorData diff = TensorData::Allocate(n * 4);
    // Wrap-around arithmetic, computed unsigned so overflow is defined.
    const std::byte* pa = a->data.data();
    const std::byte* pb = b->data.data();
    std::byte* ps = sum.mutable_data();
    std::byte* pd = diff.mutable_data();
    for (size_t i = 0; i < n; ++i) {
      uint32_t x, y;
      std::memcpy(&x, pa + 4 * i, 4);
      std::memcpy(&y, pb + 4 * i, 4);
      uint32_t s = x + y, d = x - y;
      std::memcpy(ps + 4 * i, &s, 4);
      std::memcpy(pd + 4 * i, &d, 4);
    }
    response->outputs.push_back({"OUTPUT0", DataType::kInt32, a->shape, {}, std::move(sum)});
    response->outputs.push_back({"OUTPUT1", DataType::kInt32, a->shape, {}, std::move(diff)});
    return Status::Ok();
  }

 private:
  ModelMetadata metadata_;
};

// Returns INPUT0 (FP32 [-1, N]) as OUTPUT0 after sleeping a fixed time per execution.
class SleepModel : public Model {
 public:
  SleepModel(std::chrono::microseconds delay, int64_t features) : delay_(delay) {
    Shape s = {-1, features};
    metadata_.inputs = {{"INPUT0", DataType::kFp32, s}};
    metadata_.outputs = {{"OUTPUT0", DataType::kFp32, s}};
  }
  const ModelMetadata& metadata() const override { return metadata_; }

  Status Execute(const InferRequest& request, InferResponse* response) override {
    std::this_thread::sleep_for(delay_);
    Tensor out = request.inputs.at(0);
    out.name = "OUTPUT0";
    out.parameters = Parameters();
    response->outputs.push_back(std::move(out));
    return Status::Ok();
  }

 private:
  std::chrono::microseconds delay_;
  ModelMetadata metadata_;
};

}  // namespace

bool BuiltinRuntime::Handles(std::string_view format) {
  return format == "echo" || format == "add_sub" || format == "sleep";
}

StatusOr<std::unique_ptr<Model>> BuiltinRuntime::Load(const ModelConfig& config) {
  if (config.format == "echo") return std::unique_ptr<Model>(new EchoModel());
  if (config.format == "add_sub") return std::unique_ptr<Model>(new AddSubModel());
  if (config.format == "sleep") {
    QUIVER_ASSIGN_OR_RETURN(int64_t us, config.IntParameter("sleep_us", 1000));
    QUIVER_ASSIGN_OR_RETURN(int64_t features, config.IntParameter("features", -1));
    if (us < 0) return InvalidArgument("parameters.sleep_us: must be >= 0, got " +
                                       std::to_string(us));
    if (features < -1 || features == 0) {
      return InvalidArgument("parameters.features: must be -1 (any) or > 0, got " +
                             std::to_string(features));
    }
    return std::unique_ptr<Model>(new SleepModel(std::chrono::microseconds(us), features));
  }
  return InvalidArgument("no built-in model for format '" + config.format + "'");
}

}  // namespace quiver
