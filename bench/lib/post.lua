-- wrk script for bench/http_bench.sh: POSTs the body in $BENCH_BODY_FILE as application/json
-- and, when wrk finishes, prints one machine-readable line with the totals, the error counts
-- and the latency percentiles (microseconds) that http_bench.sh parses.
local path = os.getenv("BENCH_BODY_FILE")
if path == nil or path == "" then
  error("post.lua: set BENCH_BODY_FILE to the request body file")
end
local f = assert(io.open(path, "rb"))
local body = f:read("*a")
f:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_us=%d bytes=%d connect=%d read=%d write=%d " ..
    "status=%d timeout=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
