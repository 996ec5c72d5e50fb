// Executing a batch: the requests' inputs are concatenated along the first dimension into one
// request, the model runs once, and each output is split back by the requests' item counts
// (without copying: each part borrows the batch output's bytes). Pure functions.
#pragma once

#include <memory>
#include <vector>

#include "batching/infer_job.h"

namespace quiver {

// Concatenates the inputs of `jobs` (which share a BatchKey) into one request.
InferRequest MergeRequests(const std::vector<std::unique_ptr<InferJob>>& jobs);

// Splits `batch` (the answer to the merged request) into one response per job, in order.
// kInternal when an output's first dimension is not the batch's item count.
Status SplitResponse(const std::vector<std::unique_ptr<InferJob>>& jobs,
                     const InferResponse& batch, std::vector<InferResponse>* parts);

// Runs `jobs` as one batch on `model` and completes each of them; an execution error reaches
// every job.
void ExecuteBatch(std::vector<std::unique_ptr<InferJob>>& jobs, Model& model,
                  const ModelConfig& config);

}  // namespace quiver
