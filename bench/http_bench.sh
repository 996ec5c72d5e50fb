#!/usr/bin/env bash
# HTTP ceiling of `quiver serve` for a tiny Open Inference Protocol request (the built-in add_sub
# model), side by side with nginx answering the same path with the same response bytes.
#
# Method (see docs/benchmarks.md): both servers pinned to one CPU (taskset -c 0), quiver with one
# I/O thread, nginx with one process; wrk -t1 pinned to another CPU (taskset -c 1), keep-alive,
# at 1 and 64 connections; runs alternate between the servers and each figure is the median of
# REPEATS runs, with the min-max spread. Also measures quiver's idle resident memory.
#
# Usage: bench/http_bench.sh [options]
#   -d, --duration SECONDS    length of each wrk run            (env DURATION, default 10)
#   -r, --repeats N           runs per server and connection count (env REPEATS, default 3)
#   -c, --connections "1 64"  connection counts                  (env CONNECTIONS, default "1 64")
#   -w, --warmup SECONDS      unrecorded warm-up run per server and count (env WARMUP, default 2)
#       --nginx-body MODE     the nginx baseline(s): file (the captured bytes from a file),
#                             inline (the same bytes from its config, `return 200 '...'`), or
#                             both (default: two nginx instances, both in the alternation)
#       --quiver PATH         the quiver binary                  (env QUIVER, default build/bin/quiver)
#       --nice N              run both servers and wrk at this nice level (env BENCH_NICE,
#                             default 0; e.g. -20 as root, on a machine other work keeps busy;
#                             with autogroup scheduling, also the nice level of this session's
#                             group, restored at exit)
#       --no-rss              skip the idle-memory measurements
#       --append              also append the report to docs/benchmarks.md
#   -h, --help
# Env SERVER_CPU / CLIENT_CPU (default 0 / 1) choose the CPUs; KEEP_TMP=1 keeps the temp dir;
# QUIVER_RUNTIME_DIR is passed as --runtime-dir for the example-repository memory figure.
# Needs wrk, nginx (nginx-light), taskset and curl: `scripts/setup.sh --bench` installs the first
# three (curl comes with `--test`).
# Exit status: 0 when every run was clean; 1 when a wrk run had errors; 2 when the setup or the
# correctness check failed.
set -euo pipefail
shopt -u patsub_replacement 2>/dev/null || true  # '&' in ${var//pat/rep} stays literal

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BENCH="$ROOT/bench"
ORIG_ARGS=("$@")
DURATION="${DURATION:-10}"
REPEATS="${REPEATS:-3}"
CONNECTIONS="${CONNECTIONS:-1 64}"
WARMUP="${WARMUP:-2}"
NGINX_BODY="${NGINX_BODY:-both}"
QUIVER="${QUIVER:-$ROOT/build/bin/quiver}"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
BENCH_NICE="${BENCH_NICE:-0}"
DO_RSS=1
APPEND=0
MODEL_PATH="/v2/models/add_sub/infer"
REQUEST_FILE="$BENCH/lib/add_sub_request.json"
LUA="$BENCH/lib/post.lua"
TEMPLATE="$BENCH/nginx.conf.template"
DOC="$ROOT/docs/benchmarks.md"

die() { echo "http_bench: $*" >&2; exit 2; }
note() { echo "http_bench: $*" >&2; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    -d|--duration) DURATION="${2:?}"; shift 2 ;;
    -r|--repeats) REPEATS="${2:?}"; shift 2 ;;
    -c|--connections) CONNECTIONS="${2:?}"; shift 2 ;;
    -w|--warmup) WARMUP="${2:?}"; shift 2 ;;
    --nginx-body) NGINX_BODY="${2:?}"; shift 2 ;;
    --quiver) QUIVER="${2:?}"; shift 2 ;;
    --nice) BENCH_NICE="${2:?}"; shift 2 ;;
    --no-rss) DO_RSS=0; shift ;;
    --append) APPEND=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
done
[[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || die "--duration must be a whole number of seconds"
[[ "$REPEATS" =~ ^[1-9][0-9]*$ ]] || die "--repeats must be a positive integer"
[[ "$WARMUP" =~ ^[0-9]+$ ]] || die "--warmup must be a whole number of seconds"
[[ "$CONNECTIONS" =~ ^[0-9\ ]+$ ]] || die "--connections must be numbers separated by spaces"
[[ "$NGINX_BODY" =~ ^(file|inline|both)$ ]] || die "--nginx-body must be file, inline or both"
[[ "$BENCH_NICE" =~ ^-?[0-9]+$ ]] || die "--nice must be an integer"
PRIO=()
if [ "$BENCH_NICE" != 0 ]; then
  nice -n "$BENCH_NICE" true 2>/dev/null && [ "$(nice -n "$BENCH_NICE" nice)" = "$BENCH_NICE" ] ||
    die "cannot run at nice $BENCH_NICE (negative levels need root)"
  PRIO=(nice -n "$BENCH_NICE")
fi

# ---- prerequisites ---------------------------------------------------------------------------
missing=()
for tool in wrk taskset curl awk; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
NGINX="${NGINX:-$(command -v nginx 2>/dev/null || true)}"
[ -z "$NGINX" ] && [ -x /usr/sbin/nginx ] && NGINX=/usr/sbin/nginx
[ -n "$NGINX" ] && [ -x "$NGINX" ] || missing+=("nginx")
if [ ${#missing[@]} -gt 0 ]; then
  die "missing ${missing[*]}: run 'scripts/setup.sh --bench' as root (Debian packages wrk, nginx-light, util-linux for taskset); curl: 'scripts/setup.sh --test' or 'apt-get install curl'"
fi
[ -x "$QUIVER" ] || die "no quiver binary at $QUIVER: build it first (cmake --preset default && cmake --build build)"
for f in "$REQUEST_FILE" "$LUA" "$TEMPLATE"; do [ -f "$f" ] || die "missing $f"; done
for cpu in "$SERVER_CPU" "$CLIENT_CPU"; do
  taskset -c "$cpu" true 2>/dev/null ||
    die "cannot pin to CPU $cpu (this machine has $(nproc) CPU(s) available; set SERVER_CPU/CLIENT_CPU)"
done
[ "$SERVER_CPU" != "$CLIENT_CPU" ] || note "warning: server and client share CPU $SERVER_CPU"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/quiver-bench.XXXXXX")"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "$AUTOGROUP_OLD" ]; then echo "$AUTOGROUP_OLD" >"/proc/$$/autogroup" 2>/dev/null || true; fi
  if [ "${KEEP_TMP:-0}" = 1 ]; then note "kept $WORK"; else rm -rf "$WORK"; fi
}
AUTOGROUP_OLD=""
# With autogroup scheduling (each session its own group), a process's nice level only counts
# against processes of its own session; the session's group gets the same level for the run.
if [ "$BENCH_NICE" != 0 ] && [ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null)" = 1 ] &&
   [ -w "/proc/$$/autogroup" ]; then
  AUTOGROUP_OLD="$(sed -n 's/.* nice \(-\{0,1\}[0-9]*\)$/\1/p' "/proc/$$/autogroup")"
  echo "$BENCH_NICE" >"/proc/$$/autogroup" 2>/dev/null || AUTOGROUP_OLD=""
fi
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- helpers ---------------------------------------------------------------------------------
# A TCP port on 127.0.0.1 that nothing listens on (random, checked by connecting).
free_port() {
  local p i
  for i in $(seq 1 200); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  die "found no free port"
}

# Waits until GET $1 answers 200 (up to $2 seconds) while process $3 is alive.
wait_http_200() {
  local url="$1" secs="$2" pid="$3" i
  for i in $(seq 1 $((secs * 20))); do
    kill -0 "$pid" 2>/dev/null || return 2
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$url" 2>/dev/null)" = 200 ] && return 0
    sleep 0.05
  done
  return 1
}

stop_pid() {
  local pid="$1" i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local keep=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# utime+stime of a process (all its threads), in clock ticks.
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
rss_kb() { awk '$1 == "'"$2"':" {print $2}' "/proc/$1/status"; }

# Busy share of CPUs $SERVER_CPU and $CLIENT_CPU over one second, from /proc/stat.
cpu_busy_sample() {
  local a b
  a="$(grep -E "^cpu($SERVER_CPU|$CLIENT_CPU) " /proc/stat)"
  sleep 1
  b="$(grep -E "^cpu($SERVER_CPU|$CLIENT_CPU) " /proc/stat)"
  printf '%s\n%s\n' "$a" "$b" | awk '
    { idle = $5 + $6; tot = 0; for (i = 2; i <= NF; i++) tot += $i
      if ($1 in t0) { printf "%s %.0f%% ", $1, 100 * (1 - (idle - i0[$1]) / (tot - t0[$1])) }
      else { t0[$1] = tot; i0[$1] = idle } }
    END { print "" }'
}

# First "data":[...] of the tensor named $2 in the compact JSON file $1, comma-separated.
tensor_data() {
  grep -o "{\"name\":\"$2\"[^}]*}" "$1" | head -1 | grep -o '"data":\[[^]]*\]' |
    sed 's/"data":\[//; s/\]//'
}

# ---- machine ---------------------------------------------------------------------------------
DATE="$(date -u '+%Y-%m-%d %H:%M UTC')"
CPU_MODEL="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
NPROC="$(nproc)"
KERNEL="$(uname -r)"
COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ "$COMMIT" != unknown ] && [ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null)" ]; then
  COMMIT="$COMMIT (work tree has uncommitted changes)"
fi
NGINX_VERSION="$( ("$NGINX" -v 2>&1 || true) | sed 's/^nginx version: //')"
WRK_VERSION="$( (wrk -v 2>&1 || true) | awk 'NR == 1 {print $2}')"
LOADAVG="$(cut -d' ' -f1-3 /proc/loadavg)"
BUSY_BEFORE="$(cpu_busy_sample)"
ENV_SET=""
for v in DURATION REPEATS CONNECTIONS WARMUP NGINX_BODY BENCH_NICE QUIVER QUIVER_RUNTIME_DIR \
         SERVER_CPU CLIENT_CPU NGINX; do
  if [ -n "${!v+x}" ] && printenv "$v" >/dev/null 2>&1; then ENV_SET+="$v=$(printenv "$v") "; fi
done
COMMAND="${ENV_SET}bench/http_bench.sh${ORIG_ARGS[*]:+ ${ORIG_ARGS[*]}}"
note "$DATE, $NPROC x $CPU_MODEL, commit $COMMIT"
note "load average $LOADAVG; CPUs busy before starting (1 s sample): $BUSY_BEFORE"
if printf '%s' "$BUSY_BEFORE" | grep -qE '(^| )cpu[0-9]+ ([2-9][0-9]|100)%'; then
  note "warning: another process is using the benchmark CPUs; results will be noisy:"
  ps -eo pcpu=,pid=,psr=,comm= --sort=-pcpu | awk '$1 > 20 && $4 != "ps"' | head -5 | sed 's/^/    /' >&2
fi

SERVE_HELP="$("$QUIVER" serve --help 2>&1 || true)"
has_flag() { printf '%s' "$SERVE_HELP" | grep -q -- "$1"; }
# quiver serves gRPC too by default (port 8081): give every instance a free port of its own.
grpc_args() { if has_flag --grpc-port; then echo "--grpc-port $(free_port)"; fi; }

QUIVER_ID="$(stat -c '%s bytes, built %y' "$QUIVER" | sed 's/\.[0-9]* / /')"
QUIVER_SUM="$(md5sum "$QUIVER" | cut -c1-32)"

# ---- quiver: start, check the answer ---------------------------------------------------------
Q_PORT="$(free_port)"
# shellcheck disable=SC2046
"${PRIO[@]}" taskset -c "$SERVER_CPU" "$QUIVER" serve --host 127.0.0.1 --http-port "$Q_PORT" \
  $(grpc_args) --workers 1 --builtin-models add_sub --log-level warn >"$WORK/quiver.log" 2>&1 &
Q_PID=$!
PIDS+=("$Q_PID")
if ! wait_http_200 "http://127.0.0.1:$Q_PORT/v2/health/ready" 20 "$Q_PID"; then
  cat "$WORK/quiver.log" >&2
  die "quiver did not become ready on port $Q_PORT"
fi
Q_URL="http://127.0.0.1:$Q_PORT$MODEL_PATH"
curl_post() {  # url body_out headers_out -> prints the HTTP status
  curl -s -o "$2" -D "$3" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    --data-binary "@$REQUEST_FILE" "$1"
}
code="$(curl_post "$Q_URL" "$WORK/response.json" "$WORK/quiver.headers")"
[ "$code" = 200 ] || { cat "$WORK/response.json" >&2; echo >&2; die "quiver answered HTTP $code"; }
in0="$(tensor_data "$REQUEST_FILE" INPUT0)"
in1="$(tensor_data "$REQUEST_FILE" INPUT1)"
want="$(awk -v a="$in0" -v b="$in1" 'BEGIN { n = split(a, x, ","); split(b, y, ",")
  for (i = 1; i <= n; i++) printf "%s%d", (i > 1 ? "," : ""), x[i] + y[i] }')"
got="$(tensor_data "$WORK/response.json" OUTPUT0)"
if [ -z "$want" ] || [ "$got" != "$want" ]; then
  cat "$WORK/response.json" >&2; echo >&2
  die "wrong add_sub answer: OUTPUT0 is [$got], expected [$want]"
fi
curl_post "$Q_URL" "$WORK/response2.json" /dev/null >/dev/null
cmp -s "$WORK/response.json" "$WORK/response2.json" ||
  die "quiver's response changes between requests (does the request carry a fixed \"id\"?)"
grep -qi '^content-type: application/json' "$WORK/quiver.headers" ||
  die "quiver's response is not application/json"
RESP_BYTES="$(wc -c <"$WORK/response.json")"
REQ_BYTES="$(wc -c <"$REQUEST_FILE")"
note "quiver on :$Q_PORT answers correctly (OUTPUT0 = [$got]); request $REQ_BYTES B, response body $RESP_BYTES B"

# ---- nginx: the same bytes -------------------------------------------------------------------
# One nginx per body mode, each with its own prefix directory, port and process, all pinned to
# the server CPU (an idle one costs nothing while another is measured).
#   file:   the captured bytes from a file. nginx's static module refuses POST with 405;
#           error_page turns that into a GET of the same file (an internal redirect), answered
#           200 with the file's bytes (open_file_cache keeps the file open).
#   inline: the same bytes from the configuration, `return 200 '...'`: no file, no redirect.
declare -A S_PID S_URL S_HDR
S_PID[quiver]="$Q_PID"
S_URL[quiver]="$Q_URL"
S_HDR[quiver]="$(wc -c <"$WORK/quiver.headers")"
BASELINES=()
start_nginx() {  # mode
  local mode="$1" dir="$WORK/nginx-$1" port body conf pid url ok=0 code="" i
  mkdir -p "$dir/tmp" "$dir/www$(dirname "$MODEL_PATH")"
  cp "$WORK/response.json" "$dir/www$MODEL_PATH"
  port="$(free_port)"
  if [ "$mode" = file ]; then
    body="      root $dir/www;
      default_type application/json;
      etag off;
      error_page 405 =200 \$uri;"
  else
    body="$(cat "$WORK/response.json")"
    case "$body" in
      *"'"*|*'\'*|*'$'*) note "skipping nginx (inline): the response holds ' \\ or \$"; return 0 ;;
    esac
    body="      default_type application/json;
      return 200 '$body';"
  fi
  conf="$(cat "$TEMPLATE")"
  conf="${conf//@DIR@/$dir}"
  conf="${conf//@PORT@/$port}"
  conf="${conf//@PATH@/$MODEL_PATH}"
  conf="${conf//@BODY@/$body}"
  printf '%s\n' "$conf" >"$dir/nginx.conf"
  "${PRIO[@]}" taskset -c "$SERVER_CPU" "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" \
    >"$dir/stdout.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  url="http://127.0.0.1:$port$MODEL_PATH"
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    code="$(curl_post "$url" "$dir/response.json" "$dir/headers" 2>/dev/null || true)"
    if [ "$code" = 200 ]; then ok=1; break; fi
    sleep 0.05
  done
  if [ "$ok" != 1 ]; then
    cat "$dir/stdout.log" "$dir/error.log" >&2 2>/dev/null || true
    die "nginx ($mode) did not answer POST $MODEL_PATH with 200 on port $port (last: ${code:-none})"
  fi
  cmp -s "$WORK/response.json" "$dir/response.json" || die "nginx ($mode): the body differs from quiver's"
  grep -qi '^content-type: application/json' "$dir/headers" ||
    die "nginx ($mode): the response is not application/json"
  S_PID["nginx-$mode"]="$pid"
  S_URL["nginx-$mode"]="$url"
  S_HDR["nginx-$mode"]="$(wc -c <"$dir/headers")"
  BASELINES+=("nginx-$mode")
  note "nginx $NGINX_VERSION ($mode) on :$port answers the same $RESP_BYTES body bytes with $(wc -c <"$dir/headers") B of headers (quiver: ${S_HDR[quiver]} B)"
}
case "$NGINX_BODY" in
  both) start_nginx file; start_nginx inline ;;
  *) start_nginx "$NGINX_BODY" ;;
esac
[ ${#BASELINES[@]} -gt 0 ] || die "no nginx baseline could be set up"
SERVERS=(quiver "${BASELINES[@]}")

# ---- load ------------------------------------------------------------------------------------
RESULTS="$WORK/results.tsv"  # server conns run rps p50_us p99_us cpu_us_per_req wrk_cpu_pct errors bytes_per_resp
: >"$RESULTS"
CLK_TCK="$(getconf CLK_TCK)"
run_wrk() {  # server pid url conns label(run number or "warmup") seconds
  local server="$1" pid="$2" url="$3" c="$4" label="$5" secs="$6"
  local out="$WORK/wrk.$server.c$c.$label.txt" t0 t1
  t0="$(cpu_ticks "$pid")"
  (
    set +e
    TIMEFORMAT='%R %U %S'
    time BENCH_BODY_FILE="$REQUEST_FILE" "${PRIO[@]}" taskset -c "$CLIENT_CPU" \
      wrk -t1 -c"$c" -d"${secs}s" --latency -s "$LUA" "$url" >"$out" 2>&1
    echo "rc $?" >>"$out.rc"
  ) 2>"$out.time"
  t1="$(cpu_ticks "$pid")"
  [ "$label" = warmup ] && return 0
  local line
  line="$(grep '^BENCH_RESULT' "$out" || true)"
  if [ -z "$line" ]; then
    note "wrk failed ($server, c=$c, run $label):"
    sed 's/^/    /' "$out" >&2
    printf '%s\t%s\t%s\t0\t0\t0\t0\t0\t1\t0\n' "$server" "$c" "$label" >>"$RESULTS"
    return 0
  fi
  printf '%s\n' "$line" | awk -v s="$server" -v c="$c" -v r="$label" -v dt=$((t1 - t0)) \
    -v hz="$CLK_TCK" -v tm="$(cat "$out.time")" '
    { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
    END {
      n = v["requests"]; secs = v["duration_us"] / 1e6
      err = v["connect"] + v["read"] + v["write"] + v["status"] + v["timeout"]
      split(tm, t, " "); wrkcpu = (t[1] > 0) ? 100 * (t[2] + t[3]) / t[1] : 0
      cpu = (n > 0) ? dt * 1e6 / hz / n : 0; bpr = (n > 0) ? v["bytes"] / n : 0
      printf "%s\t%s\t%s\t%.1f\t%d\t%d\t%.2f\t%.0f\t%d\t%.0f\n", s, c, r, n / secs,
        v["p50_us"], v["p99_us"], cpu, wrkcpu, err, bpr
    }' >>"$RESULTS"
  local row
  row="$(tail -1 "$RESULTS")"
  note "$(printf '%s' "$row" | awk -F'\t' '{printf "%-12s c=%-3s run %s: %8.0f req/s  p50 %5d us  p99 %6d us  server %5.2f us/req  wrk CPU %s%%  errors %d", $1, $2, $3, $4, $5, $6, $7, $8, $9}')"
  if [ "$(printf '%s' "$row" | cut -f9)" != 0 ]; then
    note "  errors in this run: $line"
  fi
}

servers_in_order() {  # run number -> the servers, rotated by one each round (who goes first)
  local n=${#SERVERS[@]} k i
  k=$(( ($1 - 1) % n ))
  for i in $(seq 0 $((n - 1))); do printf '%s ' "${SERVERS[$(( (i + k) % n ))]}"; done
}

n_conns="$(echo "$CONNECTIONS" | wc -w)"
n_servers=${#SERVERS[@]}
note "running: ${REPEATS} x {${SERVERS[*]}} x {$CONNECTIONS} connections x ${DURATION} s (+ ${WARMUP} s warm-up each), about $(( (REPEATS * DURATION + WARMUP) * n_servers * n_conns / 60 + 1 )) min"
if [ "$WARMUP" -gt 0 ]; then
  for c in $CONNECTIONS; do
    for s in "${SERVERS[@]}"; do run_wrk "$s" "${S_PID[$s]}" "${S_URL[$s]}" "$c" warmup "$WARMUP"; done
  done
fi
for run in $(seq 1 "$REPEATS"); do
  for c in $CONNECTIONS; do
    for s in $(servers_in_order "$run"); do
      run_wrk "$s" "${S_PID[$s]}" "${S_URL[$s]}" "$c" "$run" "$DURATION"
    done
  done
done
[ "$(md5sum "$QUIVER" | cut -c1-32)" = "$QUIVER_SUM" ] ||
  note "warning: $QUIVER was rebuilt during the run; the idle-memory figures use the new binary"
Q_RSS_LOADED="$(rss_kb "$Q_PID" VmRSS)"
Q_HWM="$(rss_kb "$Q_PID" VmHWM)"
N_RSS_LOADED="$(rss_kb "${S_PID[${BASELINES[0]}]}" VmRSS)"
kill -0 "$Q_PID" 2>/dev/null || die "quiver died during the benchmark"
for s in "${BASELINES[@]}"; do stop_pid "${S_PID[$s]}"; done
stop_pid "$Q_PID"

# ---- idle memory -----------------------------------------------------------------------------
# Waits until the server is ready, or no model is LOADING any more (up to $2 s); prints
# "ready", or "NOT ready" and the state of each model that is not READY.
wait_models_settled() {
  local base="$1" secs="$2" pid="$3" i names n st states
  for i in $(seq 1 $((secs * 10))); do
    kill -0 "$pid" 2>/dev/null || { echo "exited"; return 0; }
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/v2/health/ready")" = 200 ]; then
      echo "ready"
      return 0
    fi
    names="$(curl -s "$base/v2/models" | grep -o '\[.*\]' | tr -d '[]"' | tr ',' ' ')"
    states=""
    for n in $names; do
      st="$(curl -s "$base/v2/models/$n/ready" | grep -o '"state":"[A-Z]*"' | cut -d'"' -f4)"
      states+="$n ${st:-READY} "
    done
    # Settled but not ready: no model still loading, and at least one that failed.
    if [ -n "$names" ] && ! printf '%s' "$states" | grep -q LOADING &&
       printf '%s' "$states" | grep -qE ' (FAILED|UNAVAILABLE|UNLOADED|UNLOADING) '; then
      echo "NOT ready ($(printf '%s' "$states" | awk '{ for (i = 1; i < NF; i += 2) if ($(i + 1) != "READY") printf "%s%s %s", (k++ ? ", " : ""), $i, $(i + 1) }'))"
      return 0
    fi
    sleep 0.1
  done
  echo "NOT ready (still loading after $secs s)"
}

RSS_ROWS=()
measure_idle_rss() {  # label, then quiver serve arguments
  local label="$1"; shift
  local port pid log="$WORK/rss.$RANDOM.log" state rss anon threads models
  port="$(free_port)"
  # shellcheck disable=SC2046
  "$QUIVER" serve --host 127.0.0.1 --http-port "$port" $(grpc_args) "$@" >"$log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  state="$(wait_models_settled "http://127.0.0.1:$port" 60 "$pid")"
  sleep 1
  if kill -0 "$pid" 2>/dev/null; then
    rss="$(rss_kb "$pid" VmRSS)"
    anon="$(rss_kb "$pid" RssAnon)"
    threads="$(rss_kb "$pid" Threads)"
    models="$(curl -s "http://127.0.0.1:$port/v2/models" | sed 's/.*\[//; s/\].*//; s/"//g; s/,/, /g')"
  else
    rss=""
    state="exited"
    models=""
  fi
  if [ "$state" != ready ]; then
    note "quiver serve $* is $state; the end of its log:"
    tail -5 "$log" | sed 's/^/    /' >&2
  fi
  stop_pid "$pid"
  local mb="n/a" anon_mb="n/a"
  [ -n "$rss" ] && mb="$(awk -v k="$rss" 'BEGIN { printf "%.1f MB", k / 1024 }')"
  [ -n "${anon:-}" ] && anon_mb="$(awk -v k="$anon" 'BEGIN { printf "%.1f MB", k / 1024 }')"
  RSS_ROWS+=("$(printf '| `quiver serve%s` | %s | %s | %s | %s | %s |' "${*:+ $*}" "$label" "$mb" \
    "$anon_mb" "${threads:-n/a}" "$state${models:+; models: $models}")")
}
if [ "$DO_RSS" = 1 ]; then
  measure_idle_rss "built-in models only"
  if has_flag --enable-grpc; then
    measure_idle_rss "built-in models only, no gRPC" --enable-grpc false
  fi
  if [ -d "$ROOT/examples/models" ]; then
    measure_idle_rss "example repository" --model-repository "$ROOT/examples/models" \
      ${QUIVER_RUNTIME_DIR:+--runtime-dir "$QUIVER_RUNTIME_DIR"}
  else
    RSS_ROWS+=("| --model-repository examples/models | example repository | n/a | n/a | n/a | examples/models does not exist |")
  fi
fi

# ---- report ----------------------------------------------------------------------------------
fmt_int() { printf '%s' "$1" | awk '{ s = sprintf("%.0f", $1); o = ""
  while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) }
  print s o }'; }

# One line per server and connection count: medians and spreads over the runs.
SUMMARY="$WORK/summary.tsv"
for c in $CONNECTIONS; do
  for s in "${SERVERS[@]}"; do
    awk -F'\t' -v s="$s" -v c="$c" '$1 == s && $2 == c' "$RESULTS" | awk -F'\t' -v s="$s" -v c="$c" '
      function median(a, n,   i, j, t) {
        for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
      { n++; rps[n] = $4; p50[n] = $5; p99[n] = $6; cpu[n] = $7; wrk[n] = $8; b[n] = $10
        if ($9 > 0) bad++; errs += $9
        if (n == 1 || $4 < lo) lo = $4; if (n == 1 || $4 > hi) hi = $4 }
      END { if (n == 0) exit
        printf "%s\t%s\t%d\t%.1f\t%.1f\t%.1f\t%.0f\t%.0f\t%.2f\t%.0f\t%d\t%d\t%.0f\n", s, c, n,
          median(rps, n), lo, hi, median(p50, n), median(p99, n), median(cpu, n), median(wrk, n),
          bad, errs, median(b, n) }'
  done
done >"$SUMMARY"

TOTAL_BAD="$(awk -F'\t' '$9 > 0' "$RESULTS" | wc -l)"
TOTAL_RUNS="$(wc -l <"$RESULTS")"
field() {  # server conns column -> that cell of the summary
  awk -F'\t' -v s="$1" -v c="$2" -v k="$3" '$1 == s && $2 == c {print $k}' "$SUMMARY"
}
ratio() {  # conns baseline -> quiver median req/s / baseline median req/s
  awk -v q="$(field quiver "$1" 4)" -v b="$(field "$2" "$1" 4)" 'BEGIN { if (b > 0) printf "%.2f", q / b }'
}
label() { case "$1" in nginx-*) echo "nginx (${1#nginx-})" ;; *) echo "$1" ;; esac; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

report() {
  local s c r b verdict bl cr
  echo "### Run of $DATE"
  echo
  echo "- Command: \`$COMMAND\` (${DURATION} s per run, ${REPEATS} runs per cell, ${WARMUP} s warm-up, nice ${BENCH_NICE})"
  echo "- Machine: $NPROC CPUs, $CPU_MODEL, Linux $KERNEL; load average at start $LOADAVG; CPUs busy just before: $BUSY_BEFORE"
  echo "- Commit: $COMMIT; quiver binary ${QUIVER#"$ROOT"/} ($QUIVER_ID); $NGINX_VERSION; wrk $WRK_VERSION"
  echo "- Request: $REQ_BYTES B add_sub JSON (bench/lib/add_sub_request.json); response body $RESP_BYTES B, byte-identical from every server; response headers: $(for s in "${SERVERS[@]}"; do printf '%s %s B; ' "$(label "$s")" "${S_HDR[$s]}"; done | sed 's/; $//')"
  echo
  echo "| conns | server | req/s (median) | min–max | p50 | p99 | server CPU µs/req | wrk CPU | runs with errors |"
  echo "|---:|---|---:|---|---:|---:|---:|---:|---|"
  while IFS=$'\t' read -r s c n med lo hi p50 p99 cpu wrk bad errs _; do
    local errcell="0 of $n"
    [ "$bad" -gt 0 ] && errcell="**$bad of $n ($errs errors)**"
    printf '| %s | %s | %s | %s–%s | %s µs | %s µs | %s | %s%% | %s |\n' "$c" "$(label "$s")" \
      "$(fmt_int "$med")" "$(fmt_int "$lo")" "$(fmt_int "$hi")" "$(fmt_int "$p50")" \
      "$(fmt_int "$p99")" "$cpu" "$wrk" "$errcell"
  done <"$SUMMARY"
  echo
  for c in $CONNECTIONS; do
    for b in "${BASELINES[@]}"; do
      r="$(ratio "$c" "$b")"
      verdict=""
      if [ "$c" = 64 ] && [ -n "$r" ]; then
        if awk -v r="$r" 'BEGIN { exit !(r >= 0.7) }'; then verdict=" — target ≥ 0.70×: **met**"
        else verdict=" — target ≥ 0.70×: **not met**"; fi
      fi
      bl="$(label "$b")"
      cr="$(awk -v q="$(field quiver "$c" 9)" -v b="$(field "$b" "$c" 9)" 'BEGIN { if (q > 0) printf "%.2f", b / q }')"
      echo "- c=$c, quiver ÷ $bl: **${r:-n/a}×** req/s (medians)$verdict; server CPU per request: quiver $(field quiver "$c" 9) µs, $bl $(field "$b" "$c" 9) µs (efficiency ${cr:-n/a}×)"
    done
  done
  if [ "$TOTAL_BAD" = 0 ]; then
    echo "- Errors: none — all $TOTAL_RUNS wrk runs had zero non-2xx responses and zero socket errors."
  else
    echo "- Errors: **$TOTAL_BAD of $TOTAL_RUNS wrk runs had non-2xx responses or socket errors** (marked above); those figures are not valid."
  fi
  echo "- Resident memory after the load: quiver VmRSS $(mb "$Q_RSS_LOADED") MB (peak VmHWM $(mb "$Q_HWM") MB); $(label "${BASELINES[0]}") $(mb "$N_RSS_LOADED") MB"
  if [ "$DO_RSS" = 1 ]; then
    echo
    echo "Idle resident memory, 1 s after /v2/health/ready answers 200 (or every model has settled); target < 20 MB."
    echo "VmRSS includes the resident pages of shared libraries; RssAnon is the process's own memory."
    echo
    echo "| command | models | VmRSS idle | RssAnon | threads | state |"
    echo "|---|---|---:|---:|---:|---|"
    printf '%s\n' "${RSS_ROWS[@]}"
  fi
}

REPORT="$(report)"
echo
printf '%s\n' "$REPORT"
if [ "$APPEND" = 1 ]; then
  mkdir -p "$(dirname "$DOC")"
  { echo; printf '%s\n' "$REPORT"; } >>"$DOC"
  note "appended to ${DOC#"$ROOT"/}"
fi
[ "$TOTAL_BAD" = 0 ]
