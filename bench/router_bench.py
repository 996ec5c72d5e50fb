#!/usr/bin/python3
"""The InferenceGraph router (issue #9): latency it adds per hop against calling the service
directly, and an Ensemble's latency against its slowest member.

One `quiver serve` (built-in `echo`, and `slow`: the built-in sleep model at --slow-us) and three
`quiver router` processes on it: `one` (Sequence of one echo step), `two` (Sequence of two echo
steps) and `ensemble` (Ensemble of echo and slow). The servers are pinned to CPU 0 and the client
to CPU 1 when the machine has two CPUs. The client is this script: one keep-alive connection per
target, closed loop, one request in flight, the same small v2 body for every request. Each
round measures every target in turn (rotated order), --requests requests each after --warmup;
reported are the medians over --rounds rounds of p50 and p99 and their spread (min..max), and
the differences computed per round:
  hop      = one - echo          (router in front of one service call)
  step     = two - one           (one more step in a sequence: the service call + router work)
  ensemble = ensemble - slow     (an Ensemble against its slowest member called directly)

Usage: /usr/bin/python3 bench/router_bench.py [--quiver build/bin/quiver] [--rounds 5]
       [--requests 2000] [--warmup 200] [--slow-us 5000]
"""
import argparse
import http.client
import json
import os
import pathlib
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
LISTEN_RE = re.compile(r"HTTP server listening on [^ ]+:(\d+)")
BODY = json.dumps({"inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [1, 4],
                               "data": [5.1, 3.5, 1.4, 0.2]}]}).encode()


def pinned(cpu):
    if os.cpu_count() and os.cpu_count() >= 2 and os.path.exists("/usr/bin/taskset"):
        return ["/usr/bin/taskset", "-c", str(cpu)]
    return []


class Proc:
    def __init__(self, argv):
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        self.port = None
        ready = threading.Event()

        def read():
            for line in self.proc.stderr:
                m = LISTEN_RE.search(line)
                if m and self.port is None:
                    self.port = int(m.group(1))
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(60) or self.port is None:
            raise SystemExit(f"router_bench: {' '.join(argv)} did not start")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)


def graph_file(folder, name, nodes):
    path = pathlib.Path(folder) / f"{name}.yaml"
    path.write_text("apiVersion: serving.kserve.io/v1alpha1\nkind: InferenceGraph\n"
                    f"metadata: {{name: {name}}}\nspec:\n  nodes:\n{nodes}")
    return path


def measure(port, path, requests, warmup):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"Content-Type": "application/json"}
    out = []
    for i in range(warmup + requests):
        t0 = time.perf_counter_ns()
        conn.request("POST", path, body=BODY, headers=headers)
        r = conn.getresponse()
        r.read()
        t1 = time.perf_counter_ns()
        if r.status != 200:
            raise SystemExit(f"router_bench: {path} on {port} answered {r.status}")
        if i >= warmup:
            out.append((t1 - t0) / 1000.0)
    conn.close()
    out.sort()
    return out[len(out) // 2], out[min(len(out) - 1, int(len(out) * 0.99))]


def fmt_spread(values):
    return f"{statistics.median(values):.0f} ({min(values):.0f}..{max(values):.0f})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quiver", default=os.environ.get("QUIVER", str(ROOT / "build/bin/quiver")))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--slow-us", type=int, default=5000)
    args = ap.parse_args()
    if pinned(1):
        os.sched_setaffinity(0, {1})
    procs = []
    with tempfile.TemporaryDirectory() as tmp:
        repo = pathlib.Path(tmp) / "repo"
        (repo / "slow").mkdir(parents=True)
        (repo / "slow" / "config.yaml").write_text(
            f"format: sleep\nparameters: {{sleep_us: {args.slow_us}}}\n")
        try:
            server = Proc(pinned(0) + [args.quiver, "serve", "--host", "127.0.0.1",
                                       "--http-port", "0", "--enable-grpc", "false",
                                       "--workers", "1", "--builtin-models", "echo",
                                       "--model-repository", str(repo)])
            procs.append(server)
            base = f"http://127.0.0.1:{server.port}"
            echo, slow = f"{base}/v2/models/echo/infer", f"{base}/v2/models/slow/infer"
            graphs = {
                "one": f"    root:\n      routerType: Sequence\n      steps:\n"
                       f"      - {{serviceUrl: \"{echo}\"}}\n",
                "two": f"    root:\n      routerType: Sequence\n      steps:\n"
                       f"      - {{serviceUrl: \"{echo}\"}}\n"
                       f"      - {{serviceUrl: \"{echo}\", data: $request}}\n",
                "ensemble": f"    root:\n      routerType: Ensemble\n      steps:\n"
                            f"      - {{name: echo, serviceUrl: \"{echo}\"}}\n"
                            f"      - {{name: slow, serviceUrl: \"{slow}\"}}\n",
            }
            ports = {}
            for name, nodes in graphs.items():
                r = Proc(pinned(0) + [args.quiver, "router", "--graph",
                                      str(graph_file(tmp, name, nodes)), "--host", "127.0.0.1",
                                      "--http-port", "0", "--threads", "1"])
                procs.append(r)
                ports[name] = r.port
            targets = [("echo", server.port, "/v2/models/echo/infer"),
                       ("slow", server.port, "/v2/models/slow/infer"),
                       ("one", ports["one"], "/"), ("two", ports["two"], "/"),
                       ("ensemble", ports["ensemble"], "/")]
            results = {name: {"p50": [], "p99": []} for name, _, _ in targets}
            diffs = {k: {"p50": [], "p99": []} for k in ("hop", "step", "ensemble")}
            for rnd in range(args.rounds):
                order = targets[rnd % len(targets):] + targets[:rnd % len(targets)]
                this = {}
                for name, port, path in order:
                    this[name] = measure(port, path, args.requests, args.warmup)
                    results[name]["p50"].append(this[name][0])
                    results[name]["p99"].append(this[name][1])
                for i, q in enumerate(("p50", "p99")):
                    diffs["hop"][q].append(this["one"][i] - this["echo"][i])
                    diffs["step"][q].append(this["two"][i] - this["one"][i])
                    diffs["ensemble"][q].append(this["ensemble"][i] - this["slow"][i])
                print(f"round {rnd + 1}/{args.rounds}: " + ", ".join(
                    f"{n} p50 {v[0]:.0f} us" for n, v in this.items()), file=sys.stderr)
        finally:
            for p in reversed(procs):
                p.stop()
    print(f"# router_bench {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; {args.rounds} rounds x "
          f"{args.requests} requests, concurrency 1, slow = {args.slow_us} us")
    print("| target | p50 us, median (min..max) | p99 us, median (min..max) |")
    print("| --- | --- | --- |")
    for name in results:
        print(f"| {name} | {fmt_spread(results[name]['p50'])} | "
              f"{fmt_spread(results[name]['p99'])} |")
    for name, label in (("hop", "added by the router, one step (one - echo)"),
                        ("step", "one more sequence step (two - one)"),
                        ("ensemble", "ensemble over its slowest member (ensemble - slow)")):
        print(f"| {label} | {fmt_spread(diffs[name]['p50'])} | "
              f"{fmt_spread(diffs[name]['p99'])} |")


if __name__ == "__main__":
    main()
