#!/usr/bin/env bash
# `quiver bench` against wrk on the same endpoint: does the load generator measure what wrk
# measures? Both POST the same add_sub v2 JSON body (bench/lib/add_sub_request.json without its
# "id", byte-identical requests) to one `quiver serve` REST endpoint.
#
# Method: the server is pinned to CPU 0 (taskset -c 0, --workers 1, built-in add_sub only); the
# load generator to CPU 1, one thread (wrk -t1; quiver bench --threads 1, its default), the
# same connection counts (wrk -cN; quiver bench --concurrency-range N: one keep-alive connection
# per concurrent stream). quiver bench runs 3 windows of DURATION/3 s (--max-trials 3, so its
# result merges all three: the same DURATION as wrk's run). Runs alternate between the tools (who
# goes first flips every round), REPEATS rounds; each figure is the median of its runs, and the
# ratio is quiver bench ÷ wrk of the medians. Also reported: the server's CPU per request (from
# /proc, around each run) and the load generator's CPU use, so a client-bound run shows.
#
# Usage: bench/bench_vs_wrk.sh [options]
#   -d, --duration SECONDS    length of each run, a multiple of 3  (env DURATION, default 9)
#   -r, --repeats N           rounds                               (env REPEATS, default 3)
#   -c, --connections "1 64"  connection counts                    (env CONNECTIONS, default "1 64")
#       --quiver PATH         the quiver binary        (env QUIVER, default build/bin/quiver)
#       --nice N              run the server and both tools at this nice level (env BENCH_NICE,
#                             default 0; e.g. -20 as root on a machine other work keeps busy;
#                             with autogroup scheduling, also this session's group, restored at
#                             exit)
#   -h, --help
# Env SERVER_CPU / CLIENT_CPU (default 0 / 1) choose the CPUs; KEEP_TMP=1 keeps the temp dir.
# Needs wrk, taskset, curl. Exit status: 0 when every run was clean, 1 when a run had errors,
# 2 when the setup failed.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ORIG_ARGS=("$@")
DURATION="${DURATION:-9}"
REPEATS="${REPEATS:-3}"
CONNECTIONS="${CONNECTIONS:-1 64}"
QUIVER="${QUIVER:-$ROOT/build/bin/quiver}"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
BENCH_NICE="${BENCH_NICE:-0}"
LUA="$ROOT/bench/lib/post.lua"
SOURCE_REQUEST="$ROOT/bench/lib/add_sub_request.json"
MODEL_PATH="/v2/models/add_sub/infer"

die() { echo "bench_vs_wrk: $*" >&2; exit 2; }
note() { echo "bench_vs_wrk: $*" >&2; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    -d|--duration) DURATION="${2:?}"; shift 2 ;;
    -r|--repeats) REPEATS="${2:?}"; shift 2 ;;
    -c|--connections) CONNECTIONS="${2:?}"; shift 2 ;;
    --quiver) QUIVER="${2:?}"; shift 2 ;;
    --nice) BENCH_NICE="${2:?}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
done
[[ "$DURATION" =~ ^[1-9][0-9]*$ ]] && [ $((DURATION % 3)) = 0 ] ||
  die "--duration must be a positive multiple of 3 (quiver bench runs 3 windows)"
[[ "$REPEATS" =~ ^[1-9][0-9]*$ ]] || die "--repeats must be a positive integer"
[[ "$CONNECTIONS" =~ ^[0-9\ ]+$ ]] || die "--connections must be numbers separated by spaces"
[[ "$BENCH_NICE" =~ ^-?[0-9]+$ ]] || die "--nice must be an integer"
PRIO=()
if [ "$BENCH_NICE" != 0 ]; then
  [ "$(nice -n "$BENCH_NICE" nice 2>/dev/null)" = "$BENCH_NICE" ] ||
    die "cannot run at nice $BENCH_NICE (negative levels need root)"
  PRIO=(nice -n "$BENCH_NICE")
fi
for tool in wrk taskset curl awk; do
  command -v "$tool" >/dev/null 2>&1 || die "missing $tool (scripts/setup.sh --bench installs wrk and taskset)"
done
[ -x "$QUIVER" ] || die "no quiver binary at $QUIVER: build it first"
"$QUIVER" bench --help >/dev/null 2>&1 || die "$QUIVER has no 'bench' sub-command"
for f in "$LUA" "$SOURCE_REQUEST"; do [ -f "$f" ] || die "missing $f"; done
for cpu in "$SERVER_CPU" "$CLIENT_CPU"; do
  taskset -c "$cpu" true 2>/dev/null || die "cannot pin to CPU $cpu (set SERVER_CPU/CLIENT_CPU)"
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/quiver-bench-vs-wrk.XXXXXX")"
SERVER_PID=""
AUTOGROUP_OLD=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ -n "$AUTOGROUP_OLD" ]; then echo "$AUTOGROUP_OLD" >"/proc/$$/autogroup" 2>/dev/null || true; fi
  if [ "${KEEP_TMP:-0}" = 1 ]; then note "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# With autogroup scheduling a nice level only counts within its own session: give the session's
# group the same level for the run.
if [ "$BENCH_NICE" != 0 ] && [ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null)" = 1 ] &&
   [ -w "/proc/$$/autogroup" ]; then
  AUTOGROUP_OLD="$(sed -n 's/.* nice \(-\{0,1\}[0-9]*\)$/\1/p' "/proc/$$/autogroup")"
  echo "$BENCH_NICE" >"/proc/$$/autogroup" 2>/dev/null || AUTOGROUP_OLD=""
fi

free_port() {
  local p i
  for i in $(seq 1 200); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  die "found no free port"
}
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
CLK_TCK="$(getconf CLK_TCK)"

# The request both tools send: the example body without its "id" (quiver bench sends no id), so
# the request bytes, and hence the response bytes, are the same for both.
REQUEST="$WORK/request.json"
sed 's/"id":"[^"]*",//' "$SOURCE_REQUEST" | tr -d '\n' >"$REQUEST"
REQ_BYTES="$(wc -c <"$REQUEST")"

PORT="$(free_port)"
"${PRIO[@]}" taskset -c "$SERVER_CPU" "$QUIVER" serve --host 127.0.0.1 --http-port "$PORT" \
  --grpc-port "$(free_port)" --workers 1 --builtin-models add_sub --log-level warn \
  >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for i in $(seq 1 200); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/v2/health/ready")" = 200 ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; die "quiver serve exited"; }
  sleep 0.05
done
URL="http://127.0.0.1:$PORT$MODEL_PATH"
code="$(curl -s -o "$WORK/response.json" -w '%{http_code}' -X POST \
  -H 'Content-Type: application/json' --data-binary "@$REQUEST" "$URL")"
[ "$code" = 200 ] || die "quiver serve answered $code to the request: $(cat "$WORK/response.json")"

# quiver bench must send exactly the bytes wrk sends: it prints the body size it built.
taskset -c "$CLIENT_CPU" "$QUIVER" bench -m add_sub -u "127.0.0.1:$PORT" --input-data "$REQUEST" \
  --concurrency-range 1 --measurement-interval 100 --max-trials 3 >/dev/null 2>"$WORK/probe.err" ||
  { cat "$WORK/probe.err" >&2; die "quiver bench failed its first run"; }
grep -q "1 request(s) of $REQ_BYTES bytes" "$WORK/probe.err" ||
  die "quiver bench's body differs in size from wrk's ($REQ_BYTES bytes): $(head -1 "$WORK/probe.err")"

# tool conns run rps p50_us p99_us server_us_per_req client_cpu_pct errors client_us_per_req
RESULTS="$WORK/results.tsv"
: >"$RESULTS"
WINDOW_MS=$((DURATION * 1000 / 3))

run_tool() {  # tool conns run
  local tool="$1" c="$2" run="$3" out="$WORK/$1.c$2.r$3" t0 t1 line
  t0="$(cpu_ticks "$SERVER_PID")"
  (
    set +e
    TIMEFORMAT='%R %U %S'
    if [ "$tool" = wrk ]; then
      time BENCH_BODY_FILE="$REQUEST" "${PRIO[@]}" taskset -c "$CLIENT_CPU" \
        wrk -t1 -c"$c" -d"${DURATION}s" --latency -s "$LUA" "$URL" >"$out.txt" 2>&1
    else
      time "${PRIO[@]}" taskset -c "$CLIENT_CPU" "$QUIVER" bench -m add_sub -u "127.0.0.1:$PORT" \
        --input-data "$REQUEST" --concurrency-range "$c" --measurement-interval "$WINDOW_MS" \
        --max-trials 3 --metrics-url none --csv "$out.csv" >"$out.txt" 2>"$out.err"
    fi
  ) 2>"$out.time"
  t1="$(cpu_ticks "$SERVER_PID")"
  if [ "$tool" = wrk ]; then
    line="$(grep '^BENCH_RESULT' "$out.txt" || true)"
    [ -n "$line" ] || { sed 's/^/    /' "$out.txt" >&2; die "wrk failed (c=$c)"; }
    printf '%s\n' "$line" | awk -v c="$c" -v r="$run" -v dt=$((t1 - t0)) -v hz="$CLK_TCK" \
      -v tm="$(cat "$out.time")" '
      { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
      END { n = v["requests"]; secs = v["duration_us"] / 1e6
        err = v["connect"] + v["read"] + v["write"] + v["status"] + v["timeout"]
        split(tm, t, " "); cpu = (t[1] > 0) ? 100 * (t[2] + t[3]) / t[1] : 0
        printf "wrk\t%s\t%s\t%.1f\t%d\t%d\t%.2f\t%.0f\t%d\t%.2f\n", c, r, n / secs, v["p50_us"],
          v["p99_us"], (n > 0) ? dt * 1e6 / hz / n : 0, cpu, err,
          (n > 0) ? (t[2] + t[3]) * 1e6 / n : 0 }' >>"$RESULTS"
  else
    [ -s "$out.csv" ] || { sed 's/^/    /' "$out.err" >&2; die "quiver bench failed (c=$c)"; }
    # Concurrency,Inferences/Second,Requests/Second,Avg,p50,p90,p95,p99,Errors,...
    # Server CPU is divided by every request of the run (the three windows are the whole run).
    awk -F, -v c="$c" -v r="$run" -v dt=$((t1 - t0)) -v hz="$CLK_TCK" -v secs="$DURATION" \
      -v tm="$(cat "$out.time")" '
      NR == 2 { split(tm, t, " "); cpu = (t[1] > 0) ? 100 * (t[2] + t[3]) / t[1] : 0
        n = $3 * secs
        printf "quiver-bench\t%s\t%s\t%.1f\t%.0f\t%.0f\t%.2f\t%.0f\t%d\t%.2f\n", c, r, $3, $5, $8,
          (n > 0) ? dt * 1e6 / hz / n : 0, cpu, $9, (n > 0) ? (t[2] + t[3]) * 1e6 / n : 0 }' \
      "$out.csv" >>"$RESULTS"
  fi
  note "$(tail -1 "$RESULTS" | awk -F'\t' '{ printf "%-12s c=%-3s run %s: %8.0f req/s  p50 %5d us  p99 %6d us  server %5.2f us/req  client %5.2f us/req (CPU %s%%)  errors %d", $1, $2, $3, $4, $5, $6, $7, $10, $8, $9 }')"
}

DATE="$(date -u '+%Y-%m-%d %H:%M UTC')"
LOADAVG="$(cut -d' ' -f1-3 /proc/loadavg)"
COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ "$COMMIT" != unknown ] && [ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null)" ]; then
  COMMIT="$COMMIT (work tree has uncommitted changes)"
fi
note "$DATE, $(nproc) x $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), load average $LOADAVG"
note "running ${REPEATS} x {wrk, quiver bench} x {$CONNECTIONS} connections x ${DURATION} s"
for run in $(seq 1 "$REPEATS"); do
  for c in $CONNECTIONS; do
    if [ $((run % 2)) = 1 ]; then order="wrk quiver-bench"; else order="quiver-bench wrk"; fi
    for tool in $order; do run_tool "$tool" "$c" "$run"; done
  done
done

median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
col() { awk -F'\t' -v t="$1" -v c="$2" -v k="$3" '$1 == t && $2 == c { print $k }' "$RESULTS"; }

echo
echo "### quiver bench vs wrk, $DATE"
echo
echo "- Command: \`bench/bench_vs_wrk.sh${ORIG_ARGS[*]:+ ${ORIG_ARGS[*]}}\` (${DURATION} s per run, ${REPEATS} rounds, alternating, nice $BENCH_NICE); commit $COMMIT"
echo "- Server: \`quiver serve --workers 1 --builtin-models add_sub\` on CPU $SERVER_CPU; load generators on CPU $CLIENT_CPU, one thread; the same $REQ_BYTES-byte add_sub JSON request"
echo "- Load average at start: $LOADAVG"
echo
echo "| conns | tool | req/s (median) | min–max | p50 µs | p99 µs | server CPU µs/req | client CPU µs/req | client CPU | errors |"
echo "|---:|---|---:|---|---:|---:|---:|---:|---:|---:|"
for c in $CONNECTIONS; do
  for tool in wrk quiver-bench; do
    printf '| %s | %s | %.0f | %.0f–%.0f | %.0f | %.0f | %.2f | %.2f | %.0f%% | %d |\n' "$c" "$tool" \
      "$(col "$tool" "$c" 4 | median)" "$(col "$tool" "$c" 4 | sort -g | head -1)" \
      "$(col "$tool" "$c" 4 | sort -g | tail -1)" "$(col "$tool" "$c" 5 | median)" \
      "$(col "$tool" "$c" 6 | median)" "$(col "$tool" "$c" 7 | median)" \
      "$(col "$tool" "$c" 10 | median)" "$(col "$tool" "$c" 8 | median)" \
      "$(col "$tool" "$c" 9 | awk '{ s += $1 } END { print s + 0 }')"
  done
done
echo
status=0
for c in $CONNECTIONS; do
  ratio="$(awk -v q="$(col quiver-bench "$c" 4 | median)" -v w="$(col wrk "$c" 4 | median)" \
    'BEGIN { if (w > 0) printf "%.3f", q / w }')"
  verdict="$(awk -v r="$ratio" 'BEGIN { print (r >= 0.9 && r <= 1.1) ? "within 10%" : "NOT within 10%" }')"
  # The same ratio per round (the two runs of a round are back to back), to see the noise.
  rounds="$(for run in $(seq 1 "$REPEATS"); do
    awk -F'\t' -v c="$c" -v r="$run" '$2 == c && $3 == r { v[$1] = $4 }
      END { if (v["wrk"] > 0) printf "%.2f ", v["quiver-bench"] / v["wrk"] }' "$RESULTS"
  done)"
  echo "- c=$c: quiver bench ÷ wrk = **${ratio}×** (medians): $verdict; per round: ${rounds% }"
done
errors="$(awk -F'\t' '{ s += $9 } END { print s + 0 }' "$RESULTS")"
if [ "$errors" != 0 ]; then
  echo "- Errors: **$errors** failed requests in all runs; those figures are not valid."
  status=1
fi
exit "$status"
