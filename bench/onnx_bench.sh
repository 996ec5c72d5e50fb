#!/usr/bin/env bash
# Serving overhead of the ONNX runtime: the throughput of `quiver serve` answering Open Inference
# Protocol requests for an ONNX model, as a ratio of what OpenCV dnn does running the same model
# file on the same batch in-process.
#
# Method (see docs/benchmarks.md):
# - OpenCV in-process: onnx_bench (bench/onnx_bench.cc), one thread, one cv::dnn::Net,
#   cv::setNumThreads(1), setInput + forward for every call on the same batch, on SERVER_CPU.
# - quiver: `quiver serve --workers 1` with the model at instance_count 1, intra_op_threads 1
#   (its defaults), on SERVER_CPU; wrk -t1 on CLIENT_CPU, keep-alive, the same request every
#   time; the request as JSON and with the binary tensor extension; 1 connection (each request
#   waits for the last: latency-bound) and 8 (the server's CPU is the limit).
# - Both sides get one CPU; runs alternate; each figure is the median of REPEATS runs.
#   ratio = quiver requests/s ÷ OpenCV calls/s: 1.00 would be no serving overhead at all.
#
# Usage: bench/onnx_bench.sh [options]
#   -d, --duration SECONDS   length of each run                    (env DURATION, default 5)
#   -r, --repeats N          runs per cell                         (env REPEATS, default 3)
#   -b, --batches "1 32"     batch sizes                           (env BATCHES, default "1 32")
#   -m, --models "mlp cnn"   models: mlp (examples/models/onnx-mlp), cnn (testdata/cnn.onnx)
#   -c, --connections "1 8"  wrk connection counts                 (env CONNECTIONS, default "1 8")
#       --quiver PATH        the quiver binary          (env QUIVER, default build/bin/quiver)
#       --onnx-bench PATH    the in-process baseline    (env ONNX_BENCH, default: onnx_bench
#                            beside the quiver binary)
#   -h, --help
# Env SERVER_CPU / CLIENT_CPU (default 0 / 1) choose the CPUs. Needs wrk, taskset, curl and
# Debian's python3-numpy (scripts/setup.sh --test --bench).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DURATION="${DURATION:-5}"
REPEATS="${REPEATS:-3}"
BATCHES="${BATCHES:-1 32}"
MODELS="${MODELS:-mlp cnn}"
CONNECTIONS="${CONNECTIONS:-1 8}"
QUIVER="${QUIVER:-$ROOT/build/bin/quiver}"
ONNX_BENCH="${ONNX_BENCH:-}"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
PYTHON=/usr/bin/python3
ORIG_ARGS=("$@")

die() { echo "onnx_bench: $*" >&2; exit 2; }
note() { echo "onnx_bench: $*" >&2; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    -d|--duration) DURATION="${2:?}"; shift 2 ;;
    -r|--repeats) REPEATS="${2:?}"; shift 2 ;;
    -b|--batches) BATCHES="${2:?}"; shift 2 ;;
    -m|--models) MODELS="${2:?}"; shift 2 ;;
    -c|--connections) CONNECTIONS="${2:?}"; shift 2 ;;
    --quiver) QUIVER="${2:?}"; shift 2 ;;
    --onnx-bench) ONNX_BENCH="${2:?}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
done
[[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || die "--duration must be a whole number of seconds"
[[ "$REPEATS" =~ ^[1-9][0-9]*$ ]] || die "--repeats must be a positive integer"
[[ "$BATCHES" =~ ^[0-9\ ]+$ ]] || die "--batches must be numbers separated by spaces"
[[ "$CONNECTIONS" =~ ^[0-9\ ]+$ ]] || die "--connections must be numbers separated by spaces"
for m in $MODELS; do [[ "$m" == mlp || "$m" == cnn ]] || die "unknown model '$m' (mlp, cnn)"; done
[ -n "$ONNX_BENCH" ] || ONNX_BENCH="$(dirname "$QUIVER")/onnx_bench"

for tool in wrk taskset curl; do
  command -v "$tool" >/dev/null 2>&1 || die "missing $tool: run 'scripts/setup.sh --bench'"
done
"$PYTHON" -c 'import numpy' 2>/dev/null || die "missing python3-numpy: run 'scripts/setup.sh --test'"
[ -x "$QUIVER" ] || die "no quiver binary at $QUIVER (build it, or pass --quiver)"
[ -x "$ONNX_BENCH" ] || die "no onnx_bench at $ONNX_BENCH (ninja onnx_bench, or pass --onnx-bench)"
for cpu in "$SERVER_CPU" "$CLIENT_CPU"; do
  taskset -c "$cpu" true 2>/dev/null || die "cannot pin to CPU $cpu (set SERVER_CPU/CLIENT_CPU)"
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/quiver-onnx-bench.XXXXXX")"
Q_PID=""
cleanup() {
  if [ -n "$Q_PID" ]; then kill -TERM "$Q_PID" 2>/dev/null || true; wait "$Q_PID" 2>/dev/null || true; fi
  if [ "${KEEP_TMP:-0}" = 1 ]; then note "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the models -----------------------------------------------------------------------------
REPO="$WORK/repo"
model_file() {
  case "$1" in
    mlp) echo "$ROOT/examples/models/onnx-mlp/model.onnx" ;;
    cnn) echo "$ROOT/src/runtimes/onnx/testdata/cnn.onnx" ;;
  esac
}
# name and per-row dimensions of the model's one input
input_of() {
  case "$1" in
    mlp) echo "features 16" ;;
    cnn) echo "image 1x16x16" ;;
  esac
}
for m in $MODELS; do
  mkdir -p "$REPO/onnx-$m"
  cp "$(model_file "$m")" "$REPO/onnx-$m/model.onnx"
done

# Request bodies: $WORK/<model>.b<batch>.json and .bin (binary extension; its JSON header
# length in .bin.len), the same normally distributed values in both.
for m in $MODELS; do
  read -r name dims <<<"$(input_of "$m")"
  for b in $BATCHES; do
    "$PYTHON" - "$WORK/$m.b$b" "$name" "$b" "$dims" <<'EOF'
import json, sys
import numpy as np
out, name, batch, dims = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
shape = [batch] + [int(d) for d in dims.split("x")]
x = np.random.default_rng(batch).normal(size=shape).astype(np.float32)
body = {"id": "bench", "inputs": [{"name": name, "shape": shape, "datatype": "FP32",
                                    "data": [float(v) for v in x.ravel()]}]}
open(out + ".json", "w").write(json.dumps(body, separators=(",", ":")))
raw = x.astype("<f4").tobytes()
head = json.dumps({"id": "bench", "inputs": [{"name": name, "shape": shape, "datatype": "FP32",
                   "parameters": {"binary_data_size": len(raw)}}]}, separators=(",", ":"))
open(out + ".bin", "wb").write(head.encode() + raw)
open(out + ".bin.len", "w").write(str(len(head.encode())))
EOF
  done
done

# ---- quiver ---------------------------------------------------------------------------------
free_port() {
  local p i
  for i in $(seq 1 200); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  die "found no free port"
}
PORT="$(free_port)"
taskset -c "$SERVER_CPU" "$QUIVER" serve --host 127.0.0.1 --http-port "$PORT" \
  --grpc-port "$(free_port)" --workers 1 --builtin-models none --model-repository "$REPO" \
  --log-level warn >"$WORK/quiver.log" 2>&1 &
Q_PID=$!
URL="http://127.0.0.1:$PORT"
for i in $(seq 1 600); do
  kill -0 "$Q_PID" 2>/dev/null || { cat "$WORK/quiver.log" >&2; die "quiver exited"; }
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/v2/health/ready")" = 200 ] && break
  [ "$i" = 600 ] && { cat "$WORK/quiver.log" >&2; die "quiver did not become ready"; }
  sleep 0.05
done
# Every request is answered 200 before anything is timed.
for m in $MODELS; do
  for b in $BATCHES; do
    code="$(curl -s -o "$WORK/answer.json" -w '%{http_code}' -X POST \
      -H 'Content-Type: application/json' --data-binary "@$WORK/$m.b$b.json" \
      "$URL/v2/models/onnx-$m/infer")"
    [ "$code" = 200 ] || { cat "$WORK/answer.json" >&2; die "onnx-$m batch $b: HTTP $code"; }
    code="$(curl -s -o /dev/null -w '%{http_code}' -X POST \
      -H 'Content-Type: application/octet-stream' \
      -H "Inference-Header-Content-Length: $(cat "$WORK/$m.b$b.bin.len")" \
      --data-binary "@$WORK/$m.b$b.bin" "$URL/v2/models/onnx-$m/infer")"
    [ "$code" = 200 ] || die "onnx-$m batch $b (binary): HTTP $code"
  done
done

# ---- runs -----------------------------------------------------------------------------------
# model batch conns kind run per_second p50_us p99_us errors cpu_us_per_request
RESULTS="$WORK/results.tsv"
: >"$RESULTS"
CLK_TCK="$(getconf CLK_TCK)"
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

run_opencv() {  # model batch run
  local m="$1" b="$2" r="$3" name dims line
  read -r name dims <<<"$(input_of "$m")"
  line="$(taskset -c "$SERVER_CPU" "$ONNX_BENCH" "$(model_file "$m")" "$name=${b}x$dims" \
    --seconds "$DURATION" 2>"$WORK/onnx_bench.err" | grep '^BENCH_RESULT' || true)"
  [ -n "$line" ] || { cat "$WORK/onnx_bench.err" >&2; die "onnx_bench failed for $m batch $b"; }
  printf '%s\n' "$line" | awk -v m="$m" -v b="$b" -v r="$r" '
    { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
    END { printf "%s\t%s\t-\topencv\t%s\t%.1f\t%.0f\t%.0f\t0\t%.2f\n", m, b, r, v["per_second"],
          v["us_per_call"], v["us_per_call"], v["cpu_us_per_call"] }' >>"$RESULTS"
}
run_quiver() {  # model batch conns kind(json|binary) run
  local m="$1" b="$2" c="$3" kind="$4" r="$5" body hlen="" line t0 t1
  if [ "$kind" = json ]; then body="$WORK/$m.b$b.json"; else
    body="$WORK/$m.b$b.bin"; hlen="$(cat "$WORK/$m.b$b.bin.len")"; fi
  t0="$(cpu_ticks "$Q_PID")"
  line="$(BENCH_BODY_FILE="$body" BENCH_HEADER_LENGTH="$hlen" taskset -c "$CLIENT_CPU" \
    wrk -t1 -c"$c" -d"${DURATION}s" --latency -s "$ROOT/bench/onnx_bench.lua" \
    "$URL/v2/models/onnx-$m/infer" 2>&1 | grep '^BENCH_RESULT' || true)"
  t1="$(cpu_ticks "$Q_PID")"
  [ -n "$line" ] || die "wrk failed for onnx-$m batch $b ($kind, c=$c)"
  printf '%s\n' "$line" | awk -v m="$m" -v b="$b" -v c="$c" -v k="$kind" -v r="$r" \
    -v dt=$((t1 - t0)) -v hz="$CLK_TCK" '
    { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
    END { err = v["connect"] + v["read"] + v["write"] + v["status"] + v["timeout"]
          n = v["requests"]
          printf "%s\t%s\t%s\t%s\t%s\t%.1f\t%d\t%d\t%d\t%.2f\n", m, b, c, k, r,
            n / (v["duration_us"] / 1e6), v["p50_us"], v["p99_us"], err,
            (n > 0) ? dt * 1e6 / hz / n : 0 }' >>"$RESULTS"
}
run_quivers() {  # model batch run
  local c kind
  for c in $CONNECTIONS; do
    for kind in json binary; do run_quiver "$1" "$2" "$c" "$kind" "$3"; done
  done
}

LOADAVG="$(cut -d' ' -f1-3 /proc/loadavg)"
note "$(nproc) CPUs, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo); load average $LOADAVG"
for r in $(seq 1 "$REPEATS"); do
  for m in $MODELS; do
    for b in $BATCHES; do
      # Who goes first alternates between rounds.
      if [ $((r % 2)) = 1 ]; then
        run_opencv "$m" "$b" "$r"; run_quivers "$m" "$b" "$r"
      else
        run_quivers "$m" "$b" "$r"; run_opencv "$m" "$b" "$r"
      fi
      note "round $r, $m batch $b: $(awk -F'\t' -v m="$m" -v b="$b" -v r="$r" \
        '$1 == m && $2 == b && $5 == r { printf "%s%s %.0f/s  ", $4, ($3 == "-" ? "" : " c=" $3), $6 }' "$RESULTS")"
    done
  done
done
kill -0 "$Q_PID" 2>/dev/null || die "quiver died during the benchmark"

# ---- report ---------------------------------------------------------------------------------
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) exit; print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
cell() {  # model batch conns kind column -> median over the runs
  awk -F'\t' -v m="$1" -v b="$2" -v c="$3" -v k="$4" -v col="$5" \
    '$1 == m && $2 == b && $3 == c && $4 == k { print $col }' "$RESULTS" | median
}
ERRORS="$(awk -F'\t' '{ s += $9 } END { print s + 0 }' "$RESULTS")"
echo "### ONNX serving overhead, run of $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "- Command: \`bench/onnx_bench.sh${ORIG_ARGS[*]:+ ${ORIG_ARGS[*]}}\` (${DURATION} s runs, median of ${REPEATS})"
echo "- Machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo); load average at start $LOADAVG; OpenCV and quiver on CPU $SERVER_CPU, wrk on CPU $CLIENT_CPU"
echo "- Throughput ratio = quiver requests/s ÷ OpenCV in-process calls/s, same model file and batch."
echo "  CPU ratio = OpenCV CPU µs per call ÷ quiver server CPU µs per request: the throughput ratio"
echo "  one fully busy CPU would give, which other load on the machine disturbs less."
echo
echo "| model | batch | OpenCV calls/s (CPU µs/call) | conns | request | quiver req/s | p50 | quiver CPU µs/req | throughput ratio | CPU ratio |"
echo "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|"
for m in $MODELS; do
  for b in $BATCHES; do
    o="$(cell "$m" "$b" - opencv 6)"; ocpu="$(cell "$m" "$b" - opencv 10)"
    for c in $CONNECTIONS; do
      for kind in json binary; do
        q="$(cell "$m" "$b" "$c" "$kind" 6)"; p50="$(cell "$m" "$b" "$c" "$kind" 7)"
        qcpu="$(cell "$m" "$b" "$c" "$kind" 10)"
        awk -v m="$m" -v b="$b" -v o="$o" -v ocpu="$ocpu" -v c="$c" -v k="$kind" -v q="$q" \
          -v p50="$p50" -v qcpu="$qcpu" 'BEGIN {
          printf "| %s | %d | %.0f (%.1f) | %d | %s | %.0f | %d µs | %.1f | **%.2f** | %.2f |\n",
            m, b, o, ocpu, c, (k == "json" ? "JSON" : "binary"), q, p50, qcpu, q / o,
            (qcpu > 0 ? ocpu / qcpu : 0) }'
      done
    done
  done
done
echo
if [ "$ERRORS" = 0 ]; then
  echo "- Errors: none (every wrk run had only 200 answers)."
else
  echo "- Errors: **$ERRORS failed requests**; those figures are not valid."
fi
[ "$ERRORS" = 0 ]
