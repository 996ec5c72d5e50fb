#include "batching/infer_job.h"

#include "runtime/validate.h"

namespace quiver {

void InferJob::Run(Model& model, const ModelConfig& config) {
  InferResponse response;
  response.model_name = config.name;
  response.model_version = config.version;
  response.id = request.id;
  if (timed) StampComputeStart();
  Status status = model.Execute(request, &response);
  // Selecting outputs costs next to nothing: one clock read ends both.
  if (timed) infer_end = compute_end = std::chrono::steady_clock::now();
  if (status.ok()) status = SelectOutputs(request, &response);
  Complete(std::move(status), std::move(response));
}

}  // namespace quiver
