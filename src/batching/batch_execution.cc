#include "batching/batch_execution.h"

#include <cstring>

#include "runtime/validate.h"

namespace quiver {
namespace {

// Byte offsets of the first `rows` rows of a tensor's data.
size_t RowBytes(const Tensor& t, int64_t first_row, int64_t rows, size_t* offset) {
  if (t.datatype != DataType::kBytes) {
    int64_t per_row = t.shape.empty() ? 0 : ElementCount(Shape(t.shape.begin() + 1, t.shape.end()));
    size_t row_size = static_cast<size_t>(per_row) * DataTypeSize(t.datatype);
    *offset = static_cast<size_t>(first_row) * row_size;
    return static_cast<size_t>(rows) * row_size;
  }
  int64_t per_row = ElementCount(Shape(t.shape.begin() + 1, t.shape.end()));
  int64_t skip = first_row * per_row, keep = rows * per_row;
  const std::byte* base = t.data.data();
  size_t pos = 0;
  for (int64_t i = 0; i < skip + keep; ++i) {
    if (i == skip) *offset = pos;
    uint32_t len;
    std::memcpy(&len, base + pos, 4);
    pos += 4 + len;
  }
  if (keep == 0) *offset = pos;
  return pos - *offset;
}

}  // namespace

InferRequest MergeRequests(const std::vector<std::unique_ptr<InferJob>>& jobs) {
  const InferRequest& first = jobs.front()->request;
  InferRequest merged;
  merged.model_name = first.model_name;
  merged.model_version = first.model_version;
  merged.id = first.id;
  merged.parameters = first.parameters;
  merged.headers = first.headers;
  for (const Tensor& in : first.inputs) {
    Tensor t;
    t.name = in.name;
    t.datatype = in.datatype;
    t.shape = in.shape;
    t.parameters = in.parameters;
    size_t bytes = 0;
    int64_t rows = 0;
    for (const auto& job : jobs) {
      const Tensor* part = job->request.FindInput(in.name);
      bytes += part->data.size();
      rows += part->shape[0];
    }
    t.shape[0] = rows;
    TensorData data = TensorData::Allocate(bytes);
    size_t at = 0;
    for (const auto& job : jobs) {
      const Tensor* part = job->request.FindInput(in.name);
      if (part->data.size()) std::memcpy(data.mutable_data() + at, part->data.data(), part->data.size());
      at += part->data.size();
    }
    t.data = std::move(data);
    merged.inputs.push_back(std::move(t));
  }
  return merged;
}

Status SplitResponse(const std::vector<std::unique_ptr<InferJob>>& jobs,
                     const InferResponse& batch, std::vector<InferResponse>* parts) {
  int64_t total = 0;
  for (const auto& job : jobs) total += job->request.inputs.front().shape[0];
  for (const Tensor& out : batch.outputs) {
    if (out.shape.empty() || out.shape[0] != total) {
      return Internal("model returned output '" + out.name + "' of shape " +
                      ShapeToString(out.shape) + " for a batch of " + std::to_string(total) +
                      " items; a batching model must keep the first dimension");
    }
  }
  parts->assign(jobs.size(), InferResponse{});
  std::vector<std::shared_ptr<const TensorData>> holders;
  for (const Tensor& out : batch.outputs) holders.push_back(std::make_shared<const TensorData>(out.data));
  int64_t row = 0;
  for (size_t j = 0; j < jobs.size(); ++j) {
    InferResponse& part = (*parts)[j];
    part.model_name = batch.model_name;
    part.model_version = batch.model_version;
    part.id = jobs[j]->request.id;
    part.parameters = batch.parameters;
    int64_t rows = jobs[j]->request.inputs.front().shape[0];
    for (size_t o = 0; o < batch.outputs.size(); ++o) {
      const Tensor& out = batch.outputs[o];
      Tensor t;
      t.name = out.name;
      t.datatype = out.datatype;
      t.shape = out.shape;
      t.shape[0] = rows;
      t.parameters = out.parameters;
      size_t offset = 0;
      size_t len = RowBytes(out, row, rows, &offset);
      t.data = TensorData::Borrow(holders[o]->data() + offset, len, holders[o]);
      part.outputs.push_back(std::move(t));
    }
    row += rows;
  }
  return Status::Ok();
}

void ExecuteBatch(std::vector<std::unique_ptr<InferJob>>& jobs, Model& model,
                  const ModelConfig& config) {
  if (jobs.size() == 1) {
    jobs.front()->Run(model, config);
    return;
  }
  using Clock = std::chrono::steady_clock;
  const bool timed = jobs.front()->timed;
  Clock::time_point compute_start, infer_start, infer_end;
  if (timed) compute_start = Clock::now();
  InferRequest merged = MergeRequests(jobs);
  InferResponse batch;
  batch.model_name = config.name;
  batch.model_version = config.version;
  if (timed) infer_start = Clock::now();
  Status status = model.Execute(merged, &batch);
  if (timed) infer_end = Clock::now();
  std::vector<InferResponse> parts;
  if (status.ok()) status = SplitResponse(jobs, batch, &parts);
  if (timed) {
    Clock::time_point compute_end = Clock::now();
    for (auto& job : jobs) {
      job->compute_start = compute_start;
      job->infer_start = infer_start;
      job->infer_end = infer_end;
      job->compute_end = compute_end;
    }
  }
  for (size_t j = 0; j < jobs.size(); ++j) {
    if (!status.ok()) {
      jobs[j]->Complete(status, InferResponse{});
      continue;
    }
    Status s = SelectOutputs(jobs[j]->request, &parts[j]);
    jobs[j]->Complete(std::move(s), std::move(parts[j]));
  }
}

}  // namespace quiver
