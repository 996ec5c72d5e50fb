#include "observe/access_log.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <ctime>

#include "observe/text.h"
#include "protocol/json_writer.h"

namespace quiver::observe {
namespace {

// Below PIPE_BUF (4096 on Linux): a write this size to a pipe is atomic.
constexpr size_t kFlushBytes = 4000;

void AppendUint(std::string* out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, r.ptr);
}

void AppendMs(std::string* out, double ms) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof(buf), ms, std::chars_format::fixed, 3);
  out->append(buf, r.ptr);
}

// The fields, without the time stamp and level. Built by hand (no fmt) because this runs once
// per request on the I/O thread.
void AppendFields(std::string* out, const RequestTelemetry& r, bool json) {
  if (!json) {
    out->append("access request_id=").append(r.request_id);
    out->append(" method=").append(r.method);
    out->append(" path=").append(r.target);
    out->append(" status=");
    AppendUint(out, static_cast<uint64_t>(r.status));
    out->append(" bytes_in=");
    AppendUint(out, r.bytes_in);
    out->append(" bytes_out=");
    AppendUint(out, r.bytes_out);
    if (!r.model_name.empty()) out->append(" model=").append(r.model_name);
    out->append(" queue_ms=");
    AppendMs(out, r.queue_ms());
    out->append(" compute_ms=");
    AppendMs(out, r.compute_ms());
    out->append(" total_ms=");
    AppendMs(out, r.total_ms());
    if (r.has_trace) {
      out->append(" trace_id=");
      r.trace.trace_id.AppendHex(out);
    }
    if (!r.error.empty()) out->append(" error=\"").append(r.error).append("\"");
    return;
  }
  JsonWriter w(out);
  auto str = [&](std::string_view key, std::string_view value) {
    w.Char(',');
    w.Key(key);
    WriteSafeString(w, value);
  };
  auto ms = [&](std::string_view key, double v) {
    w.Char(',');
    w.Key(key);
    AppendMs(out, v);
  };
  w.Raw("\"msg\":\"access\"");
  str("request_id", r.request_id);
  str("method", r.method);
  str("path", r.target);
  w.Raw(",\"status\":");
  w.Int(r.status);
  w.Raw(",\"bytes_in\":");
  w.Uint(r.bytes_in);
  w.Raw(",\"bytes_out\":");
  w.Uint(r.bytes_out);
  if (!r.model_name.empty()) str("model", r.model_name);
  if (!r.model_version.empty()) str("model_version", r.model_version);
  ms("queue_ms", r.queue_ms());
  ms("compute_ms", r.compute_ms());
  ms("total_ms", r.total_ms());
  if (r.has_trace) {
    w.Raw(",\"trace_id\":\"");
    r.trace.trace_id.AppendHex(out);
    w.Char('"');
  }
  if (!r.error.empty()) str("error", r.error);
}

// The server log's time stamp (spdlog pattern %Y-%m-%dT%H:%M:%S.%e; local time in text, UTC in
// JSON), with the part up to the second cached per thread.
void AppendTimestamp(std::string* out, bool utc) {
  struct Cache {
    time_t second = -1;
    bool utc = false;
    char text[24];
    size_t len = 0;
  };
  thread_local Cache cache;
  auto now = std::chrono::system_clock::now();
  auto since = now.time_since_epoch();
  time_t second = static_cast<time_t>(std::chrono::duration_cast<std::chrono::seconds>(since).count());
  if (second != cache.second || utc != cache.utc) {
    std::tm tm;
    if (utc) {
      gmtime_r(&second, &tm);
    } else {
      localtime_r(&second, &tm);
    }
    cache.len = std::strftime(cache.text, sizeof(cache.text), "%Y-%m-%dT%H:%M:%S", &tm);
    cache.second = second;
    cache.utc = utc;
  }
  out->append(cache.text, cache.len);
  int millis = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(since).count() % 1000);
  char ms[5] = {'.', char('0' + millis / 100), char('0' + millis / 10 % 10),
                char('0' + millis % 10), 0};
  out->append(ms, 4);
}

}  // namespace

std::string FormatAccessLine(const RequestTelemetry& r, bool json) {
  std::string out;
  out.reserve(256);
  AppendFields(&out, r, json);
  return out;
}

AccessLog::AccessLog(bool json, int fd)
    : json_(json),
      fd_(fd),
      enabled_(spdlog::default_logger()->should_log(spdlog::level::info)) {
  buffer_.reserve(kFlushBytes + 512);
  flusher_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::milliseconds(100), [this] { return stop_; })) {
      WriteOutLocked();
    }
  });
}

AccessLog::~AccessLog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  flusher_.join();
  Flush();
}

void AccessLog::Flush() {
  std::lock_guard<std::mutex> lock(mu_);
  WriteOutLocked();
}

void AccessLog::WriteOutLocked() {
  size_t done = 0;
  while (done < buffer_.size()) {
    ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // nowhere to write: drop, as a log must not stop serving
    done += static_cast<size_t>(n);
  }
  buffer_.clear();
}

void AccessLog::Write(const RequestTelemetry& r) {
  if (!enabled_) return;
  thread_local std::string line;
  line.clear();
  if (json_) {
    line.append("{\"time\":\"");
    AppendTimestamp(&line, true);
    line.append("Z\",\"level\":\"info\",");
    AppendFields(&line, r, true);
    line.append("}\n");
  } else {
    AppendTimestamp(&line, false);
    line.append(" I ");
    AppendFields(&line, r, false);
    line.push_back('\n');
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (buffer_.size() + line.size() > kFlushBytes) WriteOutLocked();
  buffer_.append(line);
}

}  // namespace quiver::observe
