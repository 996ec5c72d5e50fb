#include "loadgen/load_engine.h"

#include <cstdio>

namespace quiver::loadgen {

std::string LoadLevel::ToString() const {
  if (mode == Mode::kConcurrency) return "concurrency " + std::to_string(concurrency);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "rate %g/s", rate);
  return buf;
}

void WindowSamples::Merge(WindowSamples&& other) {
  if (latencies_ns.empty()) {
    latencies_ns = std::move(other.latencies_ns);
  } else {
    latencies_ns.insert(latencies_ns.end(), other.latencies_ns.begin(), other.latencies_ns.end());
  }
  errors += other.errors;
  delayed += other.delayed;
  for (const auto& [kind, n] : other.error_kinds) error_kinds[kind] += n;
  if (first_error.empty()) first_error = std::move(other.first_error);
}

void SampleRecorder::RecordSuccess(int64_t latency_ns) {
  std::lock_guard lock(mu_);
  samples_.latencies_ns.push_back(latency_ns);
}

void SampleRecorder::RecordError(std::string_view kind, std::string_view detail) {
  std::lock_guard lock(mu_);
  ++samples_.errors;
  auto it = samples_.error_kinds.find(kind);
  if (it == samples_.error_kinds.end()) {
    samples_.error_kinds.emplace(std::string(kind), 1);
  } else {
    ++it->second;
  }
  if (samples_.first_error.empty()) {
    samples_.first_error = std::string(kind);
    if (!detail.empty()) {
      // Reports are JSON and terminals: keep printable ASCII only (a server may send anything).
      std::string d(detail.substr(0, 300));
      for (char& c : d) {
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = ' ';
      }
      samples_.first_error += ": " + d;
    }
  }
}

void SampleRecorder::RecordDelayed() {
  std::lock_guard lock(mu_);
  ++samples_.delayed;
}

WindowSamples SampleRecorder::Take() {
  WindowSamples out;
  std::lock_guard lock(mu_);
  // Keep the capacity on this side: the next window is about as large as this one.
  out.latencies_ns.reserve(samples_.latencies_ns.size());
  std::swap(out, samples_);
  return out;
}

void SampleRecorder::Peek(uint64_t* completed, uint64_t* errors) const {
  std::lock_guard lock(mu_);
  *completed = samples_.latencies_ns.size();
  *errors = samples_.errors;
}

}  // namespace quiver::loadgen
