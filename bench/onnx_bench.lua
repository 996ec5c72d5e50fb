-- wrk script for bench/onnx_bench.sh: POSTs the body in $BENCH_BODY_FILE. With
-- $BENCH_HEADER_LENGTH set the body is a binary-extension request (a JSON header of that many
-- bytes, then the tensors' bytes); otherwise it is JSON. When wrk finishes it prints one
-- machine-readable line with the totals, the error counts and latency percentiles (µs).
local path = os.getenv("BENCH_BODY_FILE")
if path == nil or path == "" then
  error("onnx_bench.lua: set BENCH_BODY_FILE to the request body file")
end
local f = assert(io.open(path, "rb"))
local body = f:read("*a")
f:close()

wrk.method = "POST"
wrk.body = body
local header_length = os.getenv("BENCH_HEADER_LENGTH")
if header_length ~= nil and header_length ~= "" then
  wrk.headers["Content-Type"] = "application/octet-stream"
  wrk.headers["Inference-Header-Content-Length"] = header_length
else
  wrk.headers["Content-Type"] = "application/json"
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_us=%d connect=%d read=%d write=%d status=%d " ..
    "timeout=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
