#!/usr/bin/python3
"""Cost of Prometheus metrics on the request path: `quiver serve --allow-metrics true` against
`--allow-metrics false`, the built-in add_sub model over REST JSON (bench/lib's request), with
wrk. Method as bench/http_bench.sh (docs/benchmarks.md): both servers pinned to one CPU with one
I/O thread, wrk -t1 pinned to another, keep-alive; every round starts both servers afresh and
runs them one after the other, the order flipping every round; per round the ratio on/off of
requests/s; the report gives medians and the min-max spread of the ratios, and the server CPU
per request read from /proc/PID/stat. The metrics-on server must have counted every request.

Usage: /usr/bin/python3 bench/metrics_bench.py [--quiver build/bin/quiver] [--duration 5]
       [--rounds 5] [--connections 1,64] [--warmup 2] [--server-cpu 0] [--client-cpu 1]
Needs wrk and taskset (scripts/setup.sh --bench). Prints a Markdown table.
"""
import argparse
import os
import pathlib
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[1]
LUA = ROOT / "bench" / "lib" / "post.lua"
BODY = ROOT / "bench" / "lib" / "add_sub_request.json"
TICKS = os.sysconf("SC_CLK_TCK")


class Server:
    def __init__(self, quiver, cpu, allow_metrics):
        self.allow = allow_metrics
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(cpu), quiver, "serve", "--host", "127.0.0.1", "--http-port", "0",
             "--enable-grpc", "false", "--builtin-models", "add_sub", "--workers", "1",
             "--allow-metrics", "true" if allow_metrics else "false"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.port = None
        ready = threading.Event()

        def read():
            for line in self.proc.stderr:
                m = re.search(r"HTTP server listening on [^ ]+:(\d+)", line)
                if m and self.port is None:
                    self.port = int(m.group(1))
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(30) or self.port is None:
            sys.exit("metrics_bench: quiver serve did not start")
        self.url = f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self):
        stat = pathlib.Path(f"/proc/{self.proc.pid}/stat").read_text()
        fields = stat[stat.rfind(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / TICKS

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


def wrk(server, connections, seconds, cpu):
    env = {**os.environ, "BENCH_BODY_FILE": str(BODY)}
    cpu_before = server.cpu_seconds()
    out = subprocess.run(
        ["taskset", "-c", str(cpu), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s",
         str(LUA), server.url + "/v2/models/add_sub/infer"],
        capture_output=True, text=True, env=env, check=True).stdout
    cpu = server.cpu_seconds() - cpu_before
    m = re.search(r"BENCH_RESULT (.*)", out)
    r = {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    if errors:
        sys.exit(f"metrics_bench: wrk reported {errors} errors:\n{out}")
    rps = r["requests"] / (r["duration_us"] / 1e6)
    return rps, cpu / r["requests"] * 1e6, r["p50_us"], r["p99_us"], r["requests"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quiver", default=str(ROOT / "build" / "bin" / "quiver"))
    p.add_argument("--duration", type=int, default=5)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--connections", default="1,64")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--client-cpu", type=int, default=1)
    a = p.parse_args()
    print(f"quiver {a.quiver}; {a.rounds} rounds of {a.duration} s per server and "
          f"connection count, fresh servers every round; server CPU {a.server_cpu}, "
          f"wrk CPU {a.client_cpu}\n")
    print("| connections | metrics on req/s | metrics off req/s | on/off median | "
          "on/off min-max | CPU µs/req on | CPU µs/req off | p99 µs on | p99 µs off |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for c in [int(x) for x in a.connections.split(",")]:
        runs = {True: [], False: []}
        ratios = []
        for rnd in range(a.rounds):
            # Fresh processes every round, started and measured in alternating order, so that
            # neither setting keeps a lucky (or unlucky) process or position.
            flags = (True, False) if rnd % 2 == 0 else (False, True)
            servers = {allow: Server(a.quiver, a.server_cpu, allow) for allow in flags}
            try:
                check(servers)
                got = {}
                for allow in flags:  # warm-up, not recorded
                    wrk(servers[allow], c, a.warmup, a.client_cpu)
                for allow in flags:
                    got[allow] = wrk(servers[allow], c, a.duration, a.client_cpu)
                    runs[allow].append(got[allow])
                check_counted(servers[True], got[True][4])
            finally:
                for srv in servers.values():
                    srv.stop()
            ratios.append(got[True][0] / got[False][0])
            print(f"  c={c} round {rnd + 1}: on {got[True][0]:.0f} req/s "
                  f"({got[True][1]:.1f} µs CPU/req), off {got[False][0]:.0f} req/s "
                  f"({got[False][1]:.1f} µs CPU/req), ratio {ratios[-1]:.3f}", file=sys.stderr)
        med = lambda allow, i: statistics.median(x[i] for x in runs[allow])
        print(f"| {c} | {med(True, 0):.0f} | {med(False, 0):.0f} | "
              f"{statistics.median(ratios):.3f} | {min(ratios):.3f}–{max(ratios):.3f} | "
              f"{med(True, 1):.1f} | {med(False, 1):.1f} | {med(True, 3):.0f} | "
              f"{med(False, 3):.0f} |")


def check(servers):
    """The two servers are what they say: /metrics is there with metrics on, 404 without."""
    assert urllib.request.urlopen(servers[True].url + "/metrics").status == 200
    try:
        urllib.request.urlopen(servers[False].url + "/metrics")
        sys.exit("metrics_bench: the --allow-metrics false server answers /metrics")
    except urllib.error.HTTPError as e:
        assert e.code == 404


def check_counted(server, measured):
    """The metrics-on server counted at least the measured run's requests (plus the warm-up)."""
    text = urllib.request.urlopen(server.url + "/metrics").read().decode()
    m = re.search(r'^nv_inference_request_success\{model="add_sub",version="[^"]*"\} (\d+)',
                  text, re.M)
    if m is None or int(m.group(1)) < measured:
        sys.exit(f"metrics_bench: the metrics-on server counted {m and m.group(1)} requests, "
                 f"wrk measured {measured}")


if __name__ == "__main__":
    main()
