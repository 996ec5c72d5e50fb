#!/usr/bin/python3
"""Cost of the access log, tracing and payload logging on the request path: `quiver serve` with
everything off against the access log on, tracing at 100% sampling to a live OTLP receiver, and
payload logging (mode all) to a live sink; the built-in add_sub model over REST JSON
(bench/lib's request), with wrk.

Method as bench/metrics_bench.py (docs/benchmarks.md): the server pinned to CPU 0 with one I/O
thread (its background export and delivery threads share that CPU), wrk -t1 pinned to CPU 1,
keep-alive. The receiver is one nginx process pinned to CPU 1 answering every POST with 200 {}
(it is the OTLP endpoint and the CloudEvents sink). Every round starts each configuration's
server afresh and runs the configurations one after the other, the order rotating every round;
per round the ratio of requests/s to the all-off server's. The report gives medians, the
min-max spread of the ratios, the server's CPU per request (/proc/PID/stat, all threads), and
what the server says it exported, delivered and dropped (/metrics).

Usage: /usr/bin/python3 bench/telemetry_bench.py [--quiver build/bin/quiver] [--duration 5]
       [--rounds 5] [--connections 1,64] [--warmup 2]
Needs wrk, nginx and taskset (scripts/setup.sh --bench). Prints a Markdown table.
"""
import argparse
import os
import pathlib
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[1]
LUA = ROOT / "bench" / "lib" / "post.lua"
BODY = ROOT / "bench" / "lib" / "add_sub_request.json"
TICKS = os.sysconf("SC_CLK_TCK")
SERVER_CPU, CLIENT_CPU = 0, 1

NGINX_CONF = """
daemon off; master_process off; worker_processes 1;
error_log {dir}/error.log; pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off; keepalive_requests 1000000000; client_max_body_size 256m;
  client_body_buffer_size 1m; client_body_temp_path {dir}/body;
  server {{ listen 127.0.0.1:{port}; location / {{ return 200 '{{}}'; }} }}
}}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """nginx on CPU 1: the OTLP endpoint and the payload-log sink."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="quiver-telemetry-bench-")
        self.port = free_port()
        conf = pathlib.Path(self.dir) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=self.dir, port=self.port))
        self.proc = subprocess.Popen(["taskset", "-c", str(CLIENT_CPU), "nginx", "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(urllib.request.Request(self.url, data=b"x"), timeout=1)
                return
            except OSError:
                time.sleep(0.05)
        sys.exit("telemetry_bench: nginx did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class Server:
    def __init__(self, quiver, args):
        self.log = tempfile.NamedTemporaryFile(prefix="quiver-bench-", suffix=".log")
        # The log goes to a file, as a container's would to its runtime: the access log's
        # writes are then real writes, and no reader in this script can hold the server back.
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(SERVER_CPU), quiver, "serve", "--host", "127.0.0.1",
             "--http-port", "0", "--enable-grpc", "false", "--builtin-models", "add_sub",
             "--workers", "1", *args],
            stdout=subprocess.DEVNULL, stderr=self.log)
        self.port = None
        deadline = time.time() + 30
        while self.port is None and time.time() < deadline:
            m = re.search(r"HTTP server listening on [^ ]+:(\d+)",
                          pathlib.Path(self.log.name).read_text(errors="replace"))
            if m:
                self.port = int(m.group(1))
            elif self.proc.poll() is not None:
                break
            else:
                time.sleep(0.02)
        if self.port is None:
            sys.exit("telemetry_bench: quiver serve did not start:\n" +
                     pathlib.Path(self.log.name).read_text(errors="replace"))
        self.url = f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self):
        stat = pathlib.Path(f"/proc/{self.proc.pid}/stat").read_text()
        fields = stat[stat.rfind(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / TICKS

    def counters(self):
        try:
            text = urllib.request.urlopen(self.url + "/metrics", timeout=5).read().decode()
        except OSError:
            return {}
        return {m.group(1): float(m.group(2)) for m in
                re.finditer(r"^(quiver_(?:payload_log|trace)_\w+) (\S+)$", text, re.M)}

    def access_lines(self):
        return pathlib.Path(self.log.name).read_text(errors="replace").count(" access ")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(60)
        self.log.close()


def wrk(server, connections, seconds):
    env = {**os.environ, "BENCH_BODY_FILE": str(BODY)}
    cpu_before = server.cpu_seconds()
    out = subprocess.run(
        ["taskset", "-c", str(CLIENT_CPU), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
         "-s", str(LUA), server.url + "/v2/models/add_sub/infer"],
        capture_output=True, text=True, env=env, check=True).stdout
    cpu = server.cpu_seconds() - cpu_before
    m = re.search(r"BENCH_RESULT (.*)", out)
    r = {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    if errors:
        sys.exit(f"telemetry_bench: wrk reported {errors} errors:\n{out}")
    rps = r["requests"] / (r["duration_us"] / 1e6)
    return {"rps": rps, "cpu_us": cpu / r["requests"] * 1e6, "p99": r["p99_us"],
            "requests": r["requests"]}


def configs(receiver):
    return {
        "all off": ["--access-log", "false"],
        "access log": ["--access-log", "true"],
        "tracing 100%": ["--access-log", "false", "--trace-endpoint", receiver.url,
                         "--trace-sampling-ratio", "1"],
        "payload log": ["--access-log", "false", "--log-url", receiver.url + "/events",
                        "--log-mode", "all"],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quiver", default=str(ROOT / "build" / "bin" / "quiver"))
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--connections", default="1,64")
    args = ap.parse_args()
    conns = [int(c) for c in args.connections.split(",")]
    receiver = Receiver()
    names = list(configs(receiver))
    # results[conn][name] = list of per-round dicts
    results = {c: {n: [] for n in names} for c in conns}
    load_before = os.getloadavg()[0]
    try:
        for rnd in range(args.rounds):
            order = names[rnd % len(names):] + names[:rnd % len(names)]
            for name in order:
                server = Server(args.quiver, configs(receiver)[name])
                try:
                    for c in conns:
                        wrk(server, c, args.warmup)
                        before = server.counters()
                        r = wrk(server, c, args.duration)
                        after = server.counters()
                        r["counters"] = {k: after[k] - before.get(k, 0) for k in after}
                        results[c][name].append(r)
                        print(f"round {rnd + 1} {name:13} c={c:<3} {r['rps']:8.0f} req/s "
                              f"{r['cpu_us']:6.1f} us/req  p99 {r['p99']} us "
                              f"{r['counters']}", file=sys.stderr)
                    if name == "access log":
                        assert server.access_lines() > 0, "no access lines were written"
                finally:
                    server.stop()
    finally:
        receiver.stop()
    load_after = os.getloadavg()[0]

    print(f"Load average {load_before:.1f} before, {load_after:.1f} after; "
          f"{args.rounds} rounds, {args.duration} s each after {args.warmup} s of warm-up.\n")
    print("| connections | configuration | req/s (median) | ratio to all off (median) | "
          "ratio min–max | server CPU µs/req | p99 µs | per request: spans exported, events "
          "delivered / dropped |")
    print("| --- | --- | ---: | ---: | --- | ---: | ---: | --- |")
    for c in conns:
        base = results[c]["all off"]
        for name in names:
            runs = results[c][name]
            ratios = [r["rps"] / b["rps"] for r, b in zip(runs, base)]
            totals = {}
            requests = sum(r["requests"] for r in runs)
            for r in runs:
                for k, v in r["counters"].items():
                    totals[k] = totals.get(k, 0) + v
            notes = []
            if "quiver_trace_spans_exported_total" in totals:
                notes.append(f"{totals['quiver_trace_spans_exported_total'] / requests:.2f} "
                             f"spans (dropped requests {totals.get('quiver_trace_requests_dropped_total', 0):.0f})")
            if "quiver_payload_log_delivered_total" in totals:
                notes.append(f"{totals['quiver_payload_log_delivered_total'] / requests:.2f} / "
                             f"{totals.get('quiver_payload_log_dropped_total', 0) / requests:.2f} "
                             "events")
            print(f"| {c} | {name} | {statistics.median(r['rps'] for r in runs):.0f} | "
                  f"**{statistics.median(ratios):.3f}** | {min(ratios):.3f}–{max(ratios):.3f} | "
                  f"{statistics.median(r['cpu_us'] for r in runs):.1f} | "
                  f"{statistics.median(r['p99'] for r in runs):.0f} | {'; '.join(notes)} |")


if __name__ == "__main__":
    main()
