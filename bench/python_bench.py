#!/usr/bin/python3
"""Throughput of a Python model with 1 and 2 instances (worker processes) in `quiver serve`.

One interpreter holds one lock, so a CPU-bound predict() in pure Python runs on one core no matter
how many threads call it; Quiver runs one worker process per instance, and this measures what
that buys. The model (written here into a temporary repository) spends about --work-ms of pure
Python per request; it is served twice, as `cpu-1` (instance_count 1) and `cpu-2`
(instance_count 2). A `noop-1` model that returns its input shows the cost of the worker hop
itself (V2 request, one FP32 [1, 4] tensor, through shared memory).

Load: wrk -t1 with keep-alive at --connections connections, POSTing one V1 (cpu-*) or V2 (noop-*)
request body; each figure is the median of --repeats runs of --duration seconds after a warm-up,
the runs of the different cases interleaved.

"worker CPU" is the CPU time the workers used per second of the run (from /proc): at most 1.0
for one instance, up to 2.0 for two, whatever else the machine runs.

Usage: bench/python_bench.py [--quiver build/bin/quiver] [--duration 10] [--repeats 3]
                             [--connections 4] [--work-ms 5] [--nice N] [--append]
--append adds the report to bench/python_bench.md. Needs wrk (scripts/setup.sh --bench).
"""
import argparse
import json
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[1]
LUA = ROOT / "bench" / "lib" / "post.lua"
REPORT = ROOT / "bench" / "python_bench.md"

CPU_MODEL = '''
from kserve import Model


def spin(iterations):
    total = 0
    for i in range(iterations):
        total += i * i % 7
    return total


class CpuBound(Model):
    """About `iterations` loop turns of pure Python per request: holds the GIL throughout."""

    def __init__(self, name, iterations="100000"):
        super().__init__(name)
        self.iterations = int(iterations)

    def load(self):
        self.ready = True

    def predict(self, payload, headers=None):
        return {"predictions": [spin(self.iterations) + len(payload["instances"])]}
'''

NOOP_MODEL = '''
from kserve import InferOutput, InferResponse, Model


class Noop(Model):
    def load(self):
        self.ready = True

    def predict(self, payload, headers=None):
        x = payload.inputs[0].as_numpy()
        return InferResponse(payload.id, self.name,
                             [InferOutput("output-0", list(x.shape), "FP32", x)])
'''

V1_BODY = {"instances": [[6.8, 2.8, 4.8, 1.4]]}
V2_BODY = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                       "data": [6.8, 2.8, 4.8, 1.4]}]}


def spin(iterations):
    total = 0
    for i in range(iterations):
        total += i * i % 7
    return total


def calibrate(work_ms):
    """Loop turns that take work_ms in this interpreter (the workers run the same one)."""
    n = 20000
    while True:
        start = time.perf_counter()
        spin(n)
        took = time.perf_counter() - start
        if took > 0.05:
            return max(1000, int(n * work_ms / 1000.0 / took))
        n *= 2


def write_repo(repo, iterations):
    for name, source, instances, params in (
            ("cpu-1", CPU_MODEL, 1, {"iterations": iterations}),
            ("cpu-2", CPU_MODEL, 2, {"iterations": iterations}),
            ("noop-1", NOOP_MODEL, 1, {}),
            ("noop-2", NOOP_MODEL, 2, {})):
        folder = repo / name
        folder.mkdir(parents=True)
        (folder / "model.py").write_text(source)
        config = f"format: custom\nmodel_file: model.py\ninstance_count: {instances}\n"
        if params:
            config += "parameters:\n" + "".join(f'  {k}: "{v}"\n' for k, v in params.items())
        (folder / "config.yaml").write_text(config)


def start_server(command, repo):
    proc = subprocess.Popen(
        command + ["serve", "--model-repository", str(repo), "--host", "127.0.0.1",
         "--http-port", "0", "--grpc-port", "0", "--builtin-models", "none"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # The port is in the first log lines; read them until it shows.
    port = None
    deadline = time.time() + 30
    lines = []
    while port is None and time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"HTTP server listening on [^ ]+:(\d+)", line)
        if m:
            port = int(m.group(1))
    if port is None:
        proc.kill()
        sys.exit("quiver serve did not start:\n" + "".join(lines))
    # Drain the rest of the log so the server never blocks on a full pipe.
    import threading

    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    while time.time() < deadline + 60:
        try:
            with urllib.request.urlopen(url + "/v2/health/ready", timeout=1) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    sys.exit("quiver serve did not become ready")


def post(url, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read())


def set_autogroup_nice(level):
    """With autogroup scheduling a nice level only counts inside its session's group: give the
    group the same level. Returns the old level to restore, or None."""
    try:
        with open("/proc/sys/kernel/sched_autogroup_enabled") as f:
            if f.read().strip() != "1":
                return None
        with open("/proc/self/autogroup") as f:
            old = int(f.read().split()[-1])
        with open("/proc/self/autogroup", "w") as f:
            f.write(str(level))
        return old
    except (OSError, ValueError):
        return None


def worker_cpu_seconds(server_pid):
    """CPU time (user + system) used so far by the server's children, the python workers."""
    total = 0
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == server_pid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def run_wrk(url, body_file, connections, seconds, server_pid=None):
    cpu_before = worker_cpu_seconds(server_pid) if server_pid else 0.0
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(LUA), url],
        env={**os.environ, "BENCH_BODY_FILE": str(body_file)}, capture_output=True, text=True,
        check=True).stdout
    m = re.search(r"BENCH_RESULT (.*)", out)
    if not m:
        sys.exit("wrk printed no result:\n" + out)
    fields = dict(kv.split("=") for kv in m.group(1).split())
    fields = {k: int(v) for k, v in fields.items()}
    errors = sum(fields[k] for k in ("connect", "read", "write", "status", "timeout"))
    wall = fields["duration_us"] / 1e6
    cores = (worker_cpu_seconds(server_pid) - cpu_before) / wall if server_pid else 0.0
    return {"rps": fields["requests"] / wall, "worker_cores": cores,
            "p50_ms": fields["p50_us"] / 1000.0, "p99_ms": fields["p99_us"] / 1000.0,
            "errors": errors}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quiver", default=str(ROOT / "build" / "bin" / "quiver"))
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--work-ms", type=float, default=5.0)
    parser.add_argument("--nice", type=int, default=0,
                        help="run the server, its workers and wrk at this nice level (and this "
                             "session's scheduler autogroup too, restored at exit), e.g. -20 as "
                             "root on a machine other work keeps busy")
    parser.add_argument("--append", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("python_bench: needs wrk (scripts/setup.sh --bench)")

    autogroup_old = None
    if args.nice:
        # This process too: the calibration below must run at the workers' priority, and the
        # server, its workers and wrk inherit the level.
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
        autogroup_old = set_autogroup_nice(args.nice)
    load_before = os.getloadavg()[0]
    iterations = calibrate(args.work_ms)
    work = pathlib.Path(tempfile.mkdtemp(prefix="quiver-python-bench."))
    proc = None
    try:
        write_repo(work / "repo", iterations)
        (work / "v1.json").write_text(json.dumps(V1_BODY))
        (work / "v2.json").write_text(json.dumps(V2_BODY))
        proc, url = start_server([args.quiver], work / "repo")
        cases = [("cpu-1", "v1.json", args.connections), ("cpu-2", "v1.json", args.connections),
                 ("noop-1", "v2.json", 1), ("noop-1", "v2.json", args.connections),
                 ("noop-2", "v2.json", args.connections)]
        paths = {}
        for model, body, connections in cases:
            path = (f"/v1/models/{model}:predict" if body == "v1.json"
                    else f"/v2/models/{model}/infer")
            paths[model] = path
            answer = post(url + path, json.loads((work / body).read_text()))
            assert "predictions" in answer or "outputs" in answer, answer
            run_wrk(url + path, work / body, connections, args.warmup)
        # Rounds alternate the cases, so a change in the machine's other load during the run
        # touches all of them alike rather than one.
        results = {case: [] for case in cases}
        for _ in range(args.repeats):
            for case in cases:
                model, body, connections = case
                results[case].append(run_wrk(url + paths[model], work / body, connections,
                                             args.duration, proc.pid))
        runs = []
        for case in cases:
            model, _, connections = case
            rps = [r["rps"] for r in results[case]]
            row = {"model": model, "connections": connections,
                   "rps": statistics.median(rps), "min": min(rps), "max": max(rps),
                   "p50_ms": statistics.median(r["p50_ms"] for r in results[case]),
                   "p99_ms": statistics.median(r["p99_ms"] for r in results[case]),
                   "cores": statistics.median(r["worker_cores"] for r in results[case]),
                   "errors": sum(r["errors"] for r in results[case])}
            runs.append(row)
            print(f"{model:7s} c={connections}: {row['rps']:8.1f} req/s "
                  f"({row['min']:.1f}-{row['max']:.1f})  p50 {row['p50_ms']:.2f} ms  "
                  f"p99 {row['p99_ms']:.2f} ms  worker CPU {row['cores']:.2f} cores  "
                  f"errors {row['errors']}", file=sys.stderr)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
        if autogroup_old is not None:
            set_autogroup_nice(autogroup_old)

    base = next(r["rps"] for r in runs if r["model"] == "cpu-1")
    lines = [
        f"### {time.strftime('%Y-%m-%d')}: Python model throughput, 1 and 2 instances",
        "",
        f"`bench/python_bench.py --duration {args.duration} --repeats {args.repeats} "
        f"--connections {args.connections} --work-ms {args.work_ms:g} --nice {args.nice}`; "
        f"{os.cpu_count()} CPUs (`nproc`: {len(os.sched_getaffinity(0))}), server, workers and "
        f"wrk unpinned; "
        f"cpu-*: {iterations} loop turns of pure Python per request (~{args.work_ms:g} ms). "
        f"Load average before/after: {load_before:.1f}/{os.getloadavg()[0]:.1f}.",
        "",
        "| model | instances | connections | req/s (median, min-max) | vs 1 instance | "
        "worker CPU (cores) | p50 ms | p99 ms | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in runs:
        instances = r["model"].split("-")[1]
        speedup = f"{r['rps'] / base:.2f}x" if r["model"].startswith("cpu") else ""
        lines.append(f"| {r['model']} | {instances} | {r['connections']} | {r['rps']:.1f} "
                     f"({r['min']:.1f}-{r['max']:.1f}) | {speedup} | {r['cores']:.2f} | "
                     f"{r['p50_ms']:.2f} | "
                     f"{r['p99_ms']:.2f} | {r['errors']} |")
    report = "\n".join(lines) + "\n"
    print(report)
    if args.append:
        with open(REPORT, "a", encoding="utf-8") as f:
            f.write("\n" + report)
    return 0 if all(r["errors"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
