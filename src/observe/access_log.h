// AccessLog: one line per finished request at info level, beside the server's own log (stderr,
// the same time stamp and level format): the request id, method, path, status, bytes in and
// out, the model, the phase timings (queue wait, compute, total, in milliseconds) and the trace
// id. In text format the fields are key=value pairs; with --log-format json each line is one
// JSON object with the fields at the top level.
// It runs once per request on the I/O threads, so it is written by hand rather than through
// spdlog and fmt (which cost several times more per line here), and lines are buffered: one
// write(2) per ~4 KiB (about 20 requests), and at least every 100 ms from a flusher thread.
// Each write ends on a line boundary and stays under PIPE_BUF, so lines never tear when stderr
// is a pipe shared with the server's own log. Thread-safe.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "observe/request_telemetry.h"

namespace quiver::observe {

// The line's message part (what follows the time stamp and level).
// text: access request_id=... method=POST path=/v2/models/m/infer status=200 bytes_in=10
//       bytes_out=20 model=m queue_ms=0.000 compute_ms=0.012 total_ms=0.081 trace_id=...
// json: "msg":"access","request_id":"...",...,"total_ms":0.081 (the logger adds the braces)
std::string FormatAccessLine(const RequestTelemetry& request, bool json);

class AccessLog {
 public:
  // Writes to `fd` (stderr) when the server log's level lets info through; json: --log-format
  // json.
  explicit AccessLog(bool json, int fd = 2);
  // Flushes and stops the flusher thread.
  ~AccessLog();
  void Write(const RequestTelemetry& request);
  // Writes out what is buffered.
  void Flush();

 private:
  void WriteOutLocked();

  const bool json_;
  const int fd_;
  const bool enabled_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string buffer_;  // guarded by mu_
  bool stop_ = false;   // guarded by mu_
  std::thread flusher_;
};

}  // namespace quiver::observe
