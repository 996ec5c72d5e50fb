#include "repository/servable_model.h"

#include "runtime/validate.h"

namespace quiver {

ServableModel::ServableModel(ModelConfig config, std::unique_ptr<Model> model)
    : config_(std::move(config)), model_(std::move(model)), metadata_(model_->metadata()) {
  if (!config_.inputs.empty()) metadata_.inputs = config_.inputs;
  if (!config_.outputs.empty()) metadata_.outputs = config_.outputs;
  inline_allowed_ = config_.inline_execution.value_or(true);
  for (int i = 0; i < config_.instance_count; ++i) {
    instances_.emplace_back([this] { InstanceLoop(); });
  }
}

ServableModel::~ServableModel() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : instances_) t.join();
}

void InferJob::Run(Model& model, const ModelConfig& config) {
  InferResponse response;
  response.model_name = config.name;
  response.model_version = config.version;
  response.id = request.id;
  Status status = model.Execute(request, &response);
  if (status.ok()) status = SelectOutputs(request, &response);
  Complete(std::move(status), std::move(response));
}

void ServableModel::Submit(std::unique_ptr<ModelJob> job) {
  if (inline_allowed_ && job->CanRunInline(*model_)) {
    job->Run(*model_, config_);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void ServableModel::InstanceLoop() {
  for (;;) {
    std::unique_ptr<ModelJob> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job->Run(*model_, config_);
  }
}

}  // namespace quiver
