#!/usr/bin/python3
"""`quiver up` (issue #7): time from `quiver apply` to Ready for an XGBoost model already in the
cache, and the gateway's added latency against calling the replica directly.

Apply to Ready: the daemon serves an http:// storageUri (the example xgboost-iris model as a
.tar.gz from Python's http.server), so the first service downloads it; every measured service
is a new InferenceService with the same storageUri (its model already cached), applied with
`quiver apply -f -` and polled through the API every 10 ms until its Ready condition is True.
The time covers the CLI, the API, the reconciler, the cache check (one HEAD), the replica's
start (`quiver serve` with the XGBoost plugin) and its readiness probe. Repeated --apply-runs
times; each service is deleted before the next.

Gateway latency: one service with one replica; `quiver bench` (closed loop, REST JSON, random
iris rows) against the gateway's path form and against the replica's own port, alternating,
--rounds rounds at each concurrency. The daemon and its replica are pinned to CPU 0 (the
replica inherits the daemon's affinity), the load generator to CPU 1. Reported: medians of p50,
p99 and req/s per target, the difference and ratio per round, and the daemon's and replica's
CPU per request.

Usage: /usr/bin/python3 bench/up_bench.py [--quiver build/bin/quiver] [--apply-runs 10]
       [--rounds 5] [--window-ms 2000] [--concurrency 1,16] [--nice 0]
"""
import argparse
import http.server
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "lib"))
import bench_harness as h  # noqa: E402

PROG = "up_bench"
ROOT = h.ROOT
MODEL = ROOT / "examples" / "models" / "xgboost-iris" / "model.json"
SERVER_CPU, CLIENT_CPU = "0", "1"


def proc_cpu_seconds(pid):
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / h.TICKS
    except OSError:
        return 0.0


class Target:
    """What run_quiver_bench needs: a URL and the server side's CPU seconds."""

    def __init__(self, http, pids):
        self.http = http
        self.grpc = None
        self.pids = pids

    def cpu_seconds(self):
        return sum(proc_cpu_seconds(p) for p in self.pids)


class Daemon:
    def __init__(self, quiver, state, prefix):
        self.quiver = quiver
        self.state = state
        self.out = open(state / "daemon.out", "w+")
        cmd = prefix + ["taskset", "-c", SERVER_CPU, quiver, "up", "--state-dir", str(state),
                        "--api-port", "0", "--gateway-port", "0", "--log-level", "warn"]
        self.proc = subprocess.Popen(cmd, stdout=self.out, stderr=subprocess.STDOUT)
        h._started.append(self.proc)
        deadline = time.time() + 30
        text = ""
        while time.time() < deadline:
            text = (state / "daemon.out").read_text()
            if "gateway listening on" in text:
                break
            time.sleep(0.05)
        else:
            h.die(PROG, "quiver up did not start:\n" + text)
        self.api = text.split("API listening on ")[1].split()[0]
        self.gateway = "http://" + text.split("gateway listening on http://")[1].split()[0]
        self.env = {**os.environ, "QUIVER_STATE_DIR": str(state)}

    def cli(self, *args, input=None):
        p = subprocess.run([self.quiver, *args], input=input, capture_output=True, text=True,
                           env=self.env)
        if p.returncode != 0:
            h.die(PROG, f"quiver {' '.join(args)}: {p.stdout}{p.stderr}")
        return p.stdout

    def get(self, path):
        with urllib.request.urlopen(self.api + path, timeout=10) as r:
            return json.loads(r.read())

    def isvc_path(self, name):
        return f"/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices/{name}"

    def ready(self, name):
        doc = self.get(self.isvc_path(name))
        return any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in doc.get("status", {}).get("conditions", []))

    def replica(self, name):
        revs = self.get(self.isvc_path(name) + "/revisions")["items"]
        reps = [r for rev in revs for r in rev["replicas"] if r["state"] == "Ready"]
        return reps[0]


def isvc(name, uri):
    return (f"apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n"
            f"  name: {name}\nspec:\n  predictor:\n    model:\n      modelFormat:\n"
            f"        name: xgboost\n      protocolVersion: v2\n      storageUri: {uri}\n")


def apply_until_ready(daemon, name, uri, timeout=120):
    t0 = time.monotonic()
    daemon.cli("apply", "-f", "-", input=isvc(name, uri))
    while time.monotonic() - t0 < timeout:
        if daemon.ready(name):
            return time.monotonic() - t0
        time.sleep(0.01)
    h.die(PROG, f"{name} not ready after {timeout} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quiver", default=h.DEFAULT_QUIVER)
    ap.add_argument("--apply-runs", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--window-ms", type=int, default=2000)
    ap.add_argument("--concurrency", default="1,16")
    ap.add_argument("--nice", type=int, default=0)
    args = ap.parse_args()
    h.install_cleanup()
    prefix = h.priority_prefix(args.nice)
    work = pathlib.Path(tempfile.mkdtemp(prefix="quiver-up-bench-"))
    load_before = h.loadavg()

    # The model over http://, as a .tar.gz.
    files = work / "http"
    files.mkdir()
    with tarfile.open(files / "xgboost-iris.tar.gz", "w:gz") as tar:
        tar.add(MODEL, arcname="model.json")
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(  # noqa: E731
        *a, directory=str(files), **kw)
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    uri = f"http://127.0.0.1:{httpd.server_address[1]}/xgboost-iris.tar.gz"

    state = work / "state"
    state.mkdir()
    daemon = Daemon(args.quiver, state, prefix)
    first = apply_until_ready(daemon, "xgb-first", uri)
    times = []
    for i in range(args.apply_runs):
        name = f"xgb-{i}"
        times.append(apply_until_ready(daemon, name, uri))
        daemon.cli("delete", "isvc", name)
    h.note(PROG, f"apply -> Ready: first (download) {first * 1000:.0f} ms; cached "
                 + ", ".join(f"{t * 1000:.0f}" for t in times) + " ms")

    # Gateway against the replica, on the first service.
    rep = daemon.replica("xgb-first")
    replica_pid, replica_port = rep["pid"], rep["ports"][0]
    targets = {
        "gateway": Target(f"{daemon.gateway}/serving/default/xgb-first",
                          [daemon.proc.pid, replica_pid]),
        "direct": Target(f"http://127.0.0.1:{replica_port}", [daemon.proc.pid, replica_pid]),
    }
    results = {}
    for c in [int(x) for x in args.concurrency.split(",")]:
        for rnd in range(args.rounds):
            order = ["gateway", "direct"] if rnd % 2 == 0 else ["direct", "gateway"]
            for t in order:
                r = h.run_quiver_bench(args.quiver, targets[t], "xgb-first", c, args.window_ms,
                                       3, CLIENT_CPU, prefix, work)
                if r["errors"]:
                    h.die(PROG, f"{t} c={c}: {r['errors']} errors ({r['first_error']})")
                results.setdefault((c, t), []).append(r)
                h.note(PROG, f"round {rnd + 1} c={c} {t:8} {r['rps']:8.0f} req/s p50 "
                             f"{r['p50']:6.0f} p99 {r['p99']:6.0f} µs")
    daemon.proc.terminate()
    daemon.proc.wait(60)
    httpd.shutdown()
    load_after = h.loadavg()

    print(f"### Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    print(f"- Command: `/usr/bin/python3 bench/up_bench.py --quiver {args.quiver} --apply-runs "
          f"{args.apply_runs} --rounds {args.rounds} --window-ms {args.window_ms} --concurrency "
          f"{args.concurrency} --nice {args.nice}`")
    print(f"- Machine: {h.machine()}; load average before {load_before}, after {load_after}")
    print()
    ms = sorted(t * 1000 for t in times)
    print(f"`quiver apply` to Ready, XGBoost model already cached ({len(ms)} services): median "
          f"**{h.median(ms):.0f} ms**, min {ms[0]:.0f}, max {ms[-1]:.0f} ms; the first service, "
          f"which downloaded the model: {first * 1000:.0f} ms.\n")
    rows = []
    for c in sorted({k[0] for k in results}):
        g, d = results[(c, "gateway")], results[(c, "direct")]
        add50 = [a["p50"] - b["p50"] for a, b in zip(g, d)]
        add99 = [a["p99"] - b["p99"] for a, b in zip(g, d)]
        ratio = [a["rps"] / b["rps"] for a, b in zip(g, d)]
        for name, rs in (("gateway", g), ("direct", d)):
            rows.append([str(c), name, f"{h.median([r['rps'] for r in rs]):,.0f}",
                         f"{h.median([r['p50'] for r in rs]):,.0f}",
                         f"{h.median([r['p99'] for r in rs]):,.0f}",
                         f"{h.median([r['server_us'] for r in rs]):.1f}",
                         (f"+{h.median(add50):,.0f} / +{h.median(add99):,.0f}"
                          f" (per round {min(add50):,.0f}..{max(add50):,.0f})")
                         if name == "gateway" else "",
                         f"{h.median(ratio):.2f} ({min(ratio):.2f}–{max(ratio):.2f})"
                         if name == "gateway" else ""])
    print(h.table(["conc.", "target", "req/s", "p50 µs", "p99 µs", "server CPU µs/req "
                   "(daemon + replica)", "gateway adds p50 / p99 µs", "req/s gateway ÷ direct"],
                  rows))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
