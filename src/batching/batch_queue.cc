#include "batching/batch_queue.h"

#include <algorithm>

namespace quiver {

Status BatchKey(const InferRequest& request, std::string* key, int64_t* items) {
  if (request.inputs.empty()) return InvalidArgument("batching: the request has no inputs");
  std::vector<const Tensor*> inputs;
  for (const auto& t : request.inputs) inputs.push_back(&t);
  std::sort(inputs.begin(), inputs.end(),
            [](const Tensor* a, const Tensor* b) { return a->name < b->name; });
  *items = -1;
  key->clear();
  for (const Tensor* t : inputs) {
    if (t->shape.empty()) {
      return InvalidArgument("input '" + t->name +
                             "' has no batch dimension; this model batches along the first "
                             "dimension of every input");
    }
    if (*items >= 0 && t->shape[0] != *items) {
      return InvalidArgument("input '" + t->name + "' has " + std::to_string(t->shape[0]) +
                             " items in its first dimension, the others " +
                             std::to_string(*items));
    }
    *items = t->shape[0];
    *key += t->name;
    key->push_back('\0');
    *key += DataTypeName(t->datatype);
    for (size_t d = 1; d < t->shape.size(); ++d) {
      key->push_back(',');
      *key += std::to_string(t->shape[d]);
    }
    key->push_back('\0');
  }
  return Status::Ok();
}

BatchQueue::BatchQueue(BatchingConfig config)
    : config_(std::move(config)), levels_(std::max(1, config_.priority_levels)) {}

size_t BatchQueue::size() const {
  size_t n = 0;
  for (const auto& l : levels_) n += l.size();
  return n;
}

Status BatchQueue::Enqueue(std::unique_ptr<InferJob>& job, Clock::time_point now) {
  Entry e;
  QUIVER_RETURN_IF_ERROR(BatchKey(job->request, &e.key, &e.items));
  if (e.items > config_.max_batch_size) {
    return InvalidArgument("the request has " + std::to_string(e.items) +
                           " items, more than the model's max_batch_size of " +
                           std::to_string(config_.max_batch_size));
  }
  int level = config_.default_priority_level;
  if (const ParameterValue* p = job->request.parameters.Find("priority")) {
    if (!std::holds_alternative<int64_t>(*p)) {
      return InvalidArgument("parameters.priority: expected an integer");
    }
    int64_t v = std::get<int64_t>(*p);
    if (v != 0) {
      if (v < 1 || v > config_.priority_levels) {
        return InvalidArgument("parameters.priority: must be between 1 and " +
                               std::to_string(config_.priority_levels) + " (or 0 for the "
                               "default), got " + std::to_string(v));
      }
      level = static_cast<int>(v);
    }
  }
  level = std::clamp(level, 1, static_cast<int>(levels_.size()));
  auto timeout = config_.default_timeout;
  if (const ParameterValue* t = job->request.parameters.Find("timeout")) {
    if (!std::holds_alternative<int64_t>(*t) || std::get<int64_t>(*t) < 0) {
      return InvalidArgument("parameters.timeout: expected microseconds as an integer >= 0");
    }
    if (config_.allow_timeout_override) {
      std::chrono::microseconds asked(std::get<int64_t>(*t));
      if (asked.count() > 0 && (timeout.count() == 0 || asked < timeout)) timeout = asked;
    }
  }
  auto& queue = levels_[level - 1];
  if (config_.max_queue_size > 0 && queue.size() >= config_.max_queue_size) {
    return Unavailable("the queue of model '" + job->request.model_name + "' is full (" +
                       std::to_string(config_.max_queue_size) + " requests at priority " +
                       std::to_string(level) + ")");
  }
  e.enqueued = now;
  if (timeout.count() > 0) e.deadline = now + timeout;
  job->enqueued = now;
  e.job = std::move(job);
  queued_items_ += e.items;
  last_deadline_ = e.deadline;
  queue.push_back(std::move(e));
  return Status::Ok();
}

bool BatchQueue::EnqueueNeedsWake(Clock::time_point waiting_until) const {
  if (config_.max_queue_delay.count() == 0) return true;
  if (size() == 1) return true;  // the instance waits without a deadline on an empty queue
  if (queued_items_ >= config_.max_batch_size) return true;
  for (int64_t p : config_.preferred_batch_sizes) {
    if (p <= queued_items_) return true;
  }
  return last_deadline_ < waiting_until;
}

std::vector<std::unique_ptr<InferJob>> BatchQueue::TakeExpired(Clock::time_point now) {
  std::vector<std::unique_ptr<InferJob>> out;
  std::vector<Entry> delayed;
  for (auto& level : levels_) {
    for (auto it = level.begin(); it != level.end();) {
      if (it->deadline > now) {
        ++it;
        continue;
      }
      if (config_.timeout_action == BatchingConfig::TimeoutAction::kReject) {
        queued_items_ -= it->items;
        out.push_back(std::move(it->job));
      } else {
        it->deadline = Clock::time_point::max();
        delayed.push_back(std::move(*it));
      }
      it = level.erase(it);
    }
  }
  // DELAY: the request stays, behind everything else.
  for (auto& e : delayed) levels_.back().push_back(std::move(e));
  return out;
}

std::vector<std::unique_ptr<InferJob>> BatchQueue::NextBatch(Clock::time_point now,
                                                             Clock::time_point* wake_at,
                                                             bool flush) {
  *wake_at = Clock::time_point::max();
  const Entry* head = nullptr;
  for (const auto& level : levels_) {
    if (!level.empty()) {
      head = &level.front();
      break;
    }
  }
  if (head == nullptr) return {};
  // Gather compatible requests in priority order, oldest first, up to max_batch_size items.
  struct Pick {
    size_t level;
    size_t index;
    int64_t items;
  };
  std::vector<Pick> picks;
  int64_t pending = 0;
  bool full = false;
  for (size_t l = 0; l < levels_.size() && !full; ++l) {
    for (size_t i = 0; i < levels_[l].size(); ++i) {
      const Entry& e = levels_[l][i];
      if (e.key != head->key) continue;
      if (pending + e.items > config_.max_batch_size) {
        full = true;
        break;
      }
      picks.push_back({l, i, e.items});
      pending += e.items;
      if (pending == config_.max_batch_size) {
        full = true;
        break;
      }
    }
  }
  size_t take = 0;  // how many picks to dispatch
  if (full || flush || config_.max_queue_delay.count() == 0) {
    take = picks.size();
  } else {
    int64_t target = 0;
    for (int64_t p : config_.preferred_batch_sizes) {
      if (p <= pending && p > target) target = p;
    }
    if (target > 0) {
      int64_t sum = 0;
      while (take < picks.size() && sum + picks[take].items <= target) sum += picks[take++].items;
      if (take == 0) take = 1;
    } else if (now >= head->enqueued + config_.max_queue_delay) {
      take = picks.size();
    } else {
      *wake_at = head->enqueued + config_.max_queue_delay;
      for (const auto& level : levels_) {
        for (const auto& e : level) *wake_at = std::min(*wake_at, e.deadline);
      }
      return {};
    }
  }
  std::vector<std::unique_ptr<InferJob>> batch;
  batch.reserve(take);
  for (size_t k = 0; k < take; ++k) {
    batch.push_back(std::move(levels_[picks[k].level][picks[k].index].job));
    queued_items_ -= picks[k].items;
  }
  // Remove the taken entries (their jobs are now null).
  for (auto& level : levels_) {
    level.erase(std::remove_if(level.begin(), level.end(), [](const Entry& e) { return !e.job; }),
                level.end());
  }
  return batch;
}

}  // namespace quiver
