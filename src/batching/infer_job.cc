#include "batching/infer_job.h"

#include "runtime/validate.h"

namespace quiver {

void InferJob::Run(Model& model, const ModelConfig& config) {
  InferResponse response;
  response.model_name = config.name;
  response.model_version = config.version;
  response.id = request.id;
  Status status = model.Execute(request, &response);
  if (status.ok()) status = SelectOutputs(request, &response);
  Complete(std::move(status), std::move(response));
}

}  // namespace quiver
