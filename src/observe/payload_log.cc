#include "observe/payload_log.h"

#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>

#include "observe/background_thread.h"
#include "observe/text.h"
#include "protocol/json_writer.h"

namespace quiver::observe {
namespace {

using Steady = std::chrono::steady_clock;

std::string_view ContentType(const PayloadEvent& e) {
  return e.content_type.empty() ? std::string_view("application/json") : e.content_type;
}

const std::string& ServiceName(const PayloadEvent& e, const PayloadLogOptions& o) {
  return o.inference_service_name.empty() ? e.model_name : o.inference_service_name;
}

bool IsJsonType(std::string_view type) {
  type = type.substr(0, type.find(';'));
  while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
  return type == "application/json" ||
         (type.size() > 5 && type.substr(type.size() - 5) == "+json");
}

std::string Base64(std::string_view in) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16 | uint32_t(uint8_t(in[i + 1])) << 8 |
                 uint8_t(in[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < in.size()) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    if (i + 1 < in.size()) v |= uint32_t(uint8_t(in[i + 1])) << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// The body minified, when it is one valid JSON document.
std::optional<std::string> MinifiedJson(std::string_view body) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(body.data(), body.size(), true).get(root) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  std::string out(body.size(), '\0');
  size_t len = 0;
  if (simdjson::minify(body.data(), body.size(), out.data(), len) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  out.resize(len);
  return out;
}

}  // namespace

StatusOr<PayloadLogMode> ParsePayloadLogMode(std::string_view mode) {
  if (mode == "all") return PayloadLogMode::kAll;
  if (mode == "request") return PayloadLogMode::kRequest;
  if (mode == "response") return PayloadLogMode::kResponse;
  return InvalidArgument("--log-mode: expected all|request|response, got '" + std::string(mode) +
                         "'");
}

HttpHeaders CloudEventHeaders(const PayloadEvent& e, const PayloadLogOptions& o) {
  HttpHeaders h;
  h.reserve(14);
  h.emplace_back("Content-Type", std::string(ContentType(e)));
  h.emplace_back("ce-specversion", "1.0");
  h.emplace_back("ce-id", e.id);
  h.emplace_back("ce-source", o.source);
  h.emplace_back("ce-type", std::string(e.response ? kResponseEventType : kRequestEventType));
  h.emplace_back("ce-time", Rfc3339(e.time));
  h.emplace_back("ce-inferenceservicename", ServiceName(e, o));
  h.emplace_back("ce-namespace", o.namespace_name);
  h.emplace_back("ce-component", o.component);
  h.emplace_back("ce-endpoint", o.endpoint);
  if (e.response) h.emplace_back("ce-httpstatus", std::to_string(e.status));
  if (!e.traceparent.empty()) {
    h.emplace_back("traceparent", e.traceparent);
    if (!e.tracestate.empty()) h.emplace_back("tracestate", e.tracestate);
  }
  return h;
}

std::string CloudEventJsonLine(const PayloadEvent& e, const PayloadLogOptions& o) {
  std::string_view body = e.body ? std::string_view(*e.body) : std::string_view();
  std::string out;
  out.reserve(body.size() + 512);
  JsonWriter w(&out);
  auto field = [&](std::string_view key, std::string_view value) {
    w.Char(',');
    w.Key(key);
    WriteSafeString(w, value);
  };
  w.Raw("{\"specversion\":\"1.0\"");
  field("id", e.id);
  field("source", o.source);
  field("type", e.response ? kResponseEventType : kRequestEventType);
  field("time", Rfc3339(e.time));
  field("datacontenttype", ContentType(e));
  field("inferenceservicename", ServiceName(e, o));
  field("namespace", o.namespace_name);
  field("component", o.component);
  field("endpoint", o.endpoint);
  if (e.response) {
    w.Raw(",\"httpstatus\":");
    w.Int(e.status);
  }
  if (!e.traceparent.empty()) {
    field("traceparent", e.traceparent);
    if (!e.tracestate.empty()) field("tracestate", e.tracestate);
  }
  std::optional<std::string> json;
  if (IsJsonType(ContentType(e)) && !body.empty()) json = MinifiedJson(body);
  if (json) {
    w.Raw(",\"data\":");
    w.Raw(*json);
  } else {
    field("data_base64", Base64(body));
  }
  w.Raw("}\n");
  return out;
}

PayloadLogger::PayloadLogger(PayloadLogOptions options)
    : options_(std::move(options)),
      queue_(std::max<size_t>(options_.max_queue, 1), options_.max_queue_bytes) {}

StatusOr<std::unique_ptr<PayloadLogger>> PayloadLogger::Create(PayloadLogOptions options) {
  std::unique_ptr<PayloadLogger> logger(new PayloadLogger(std::move(options)));
  std::string_view url = logger->options_.url;
  if (url.starts_with("file://")) {
    std::string path(url.substr(7));
    if (path.empty() || path.front() != '/') {
      return InvalidArgument("--log-url: a file URL needs an absolute path (file:///dir/file), "
                             "got '" + std::string(url) + "'");
    }
    logger->file_ = std::fopen(path.c_str(), "a");
    if (logger->file_ == nullptr) {
      return InvalidArgument("--log-url: cannot open " + path + " for appending: " +
                             std::strerror(errno));
    }
    logger->workers_.emplace_back([p = logger.get()] { p->RunFile(); });
  } else if (url.starts_with("http://") || url.starts_with("https://")) {
    int n = std::max(logger->options_.workers, 1);
    for (int i = 0; i < n; ++i) {
      logger->workers_.emplace_back([p = logger.get()] { p->RunHttp(); });
    }
  } else {
    return InvalidArgument("--log-url: expected an http://, https:// or file:/// URL, got '" +
                           std::string(url) + "'");
  }
  return logger;
}

PayloadLogger::~PayloadLogger() {
  Shutdown(Steady::now() + std::chrono::seconds(1));
  if (file_ != nullptr) std::fclose(file_);
}

bool PayloadLogger::Log(PayloadEvent event) {
  size_t bytes = event.body ? event.body->size() : 0;
  return queue_.TryPush(std::move(event), bytes);
}

void PayloadLogger::Shutdown(Steady::time_point deadline) {
  if (shut_down_.exchange(true)) return;
  deadline_ns_.store(std::max<int64_t>(deadline.time_since_epoch().count(), 1));
  queue_.Close();
  for (auto& t : workers_) {
    if (t.joinable()) t.join();
  }
}

std::optional<std::chrono::milliseconds> PayloadLogger::TimeLeft() const {
  int64_t d = deadline_ns_.load();
  if (d == 0) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::milliseconds>(
      Steady::duration(d - Steady::now().time_since_epoch().count()));
}

void PayloadLogger::CountFailure(const std::string& why) {
  failed_.fetch_add(1, std::memory_order_relaxed);
  // Once per outage: a dead sink would otherwise log a line per request.
  if (!outage_warned_.exchange(true)) {
    spdlog::warn("payload log delivery to {} failed: {}", options_.url, why);
  }
}

void PayloadLogger::RunHttp() {
  LowerCurrentThreadPriority();
  HttpClient client(HttpClientOptions{.connect_timeout = options_.connect_timeout,
                                      .timeout = options_.timeout,
                                      .user_agent = "quiver-payload-logger",
                                      .abort_deadline_ns = &deadline_ns_});
  std::vector<PayloadEvent> batch;
  for (;;) {
    batch.clear();
    if (queue_.PopBatch(&batch, 1, 16, Steady::now() + std::chrono::seconds(1)) == 0) {
      if (queue_.closed()) return;
      continue;
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      const PayloadEvent& e = batch[i];
      if (auto left = TimeLeft(); left && left->count() <= 0) {
        queue_.AddDropped(batch.size() - i);
        break;
      }
      HttpHeaders headers = CloudEventHeaders(e, options_);
      std::string_view body = e.body ? std::string_view(*e.body) : std::string_view();
      auto attempt = [&]() -> StatusOr<int> {
        std::chrono::milliseconds cap(0);
        if (auto left = TimeLeft()) {
          if (left->count() <= 0) return Unavailable("shutdown deadline passed");
          cap = *left;
        }
        return client.Post(options_.url, headers, body, cap);
      };
      auto wait = [this](std::chrono::milliseconds d) {
        return !queue_.WaitClosed(Steady::now() + d);
      };
      StatusOr<int> result = RetryDelivery(attempt, options_.retry, wait);
      if (IsDelivered(result)) {
        delivered_.fetch_add(1, std::memory_order_relaxed);
        outage_warned_.store(false, std::memory_order_relaxed);
      } else {
        CountFailure(result.ok() ? "HTTP " + std::to_string(*result) : result.status().message());
      }
    }
  }
}

void PayloadLogger::RunFile() {
  LowerCurrentThreadPriority();
  std::vector<PayloadEvent> batch;
  for (;;) {
    batch.clear();
    if (queue_.PopBatch(&batch, 1, 256, Steady::now() + std::chrono::seconds(1)) == 0) {
      if (queue_.closed()) return;
      continue;
    }
    size_t written = 0;
    for (const PayloadEvent& e : batch) {
      std::string line = CloudEventJsonLine(e, options_);
      if (std::fwrite(line.data(), 1, line.size(), file_) != line.size()) break;
      ++written;
    }
    // One flush per batch: readers see whole lines soon, without a syscall per event.
    if (std::fflush(file_) != 0) written = 0;
    delivered_.fetch_add(written, std::memory_order_relaxed);
    for (size_t i = written; i < batch.size(); ++i) CountFailure(std::strerror(errno));
  }
}

}  // namespace quiver::observe
