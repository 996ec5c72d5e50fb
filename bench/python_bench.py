#!/usr/bin/python3
"""Python runtime throughput in `quiver serve`: scikit-learn against sklearn in-process, and
custom models with 1 and 2 instances (worker processes).

1. scikit-learn serving overhead. The example model (examples/models/sklearn-iris, a
   LogisticRegression saved with joblib), served with instance_count 1 by a `quiver serve
   --workers 1 --enable-grpc false` pinned to SERVER_CPU (default 0; its Python worker inherits
   the pin), and wrk -t1 pinned to CLIENT_CPU (default 1) POSTing one V2 JSON request (FP64
   [batch, 4]) with keep-alive at 1 connection (latency-bound) and at --connections (the CPU is
   the limit). The baseline: the same model file's `predict` on the same rows, called in a loop
   by /usr/bin/python3 (python3-sklearn) in one process pinned to SERVER_CPU, single thread
   (OMP/OPENBLAS/MKL/NUMEXPR_NUM_THREADS=1, as the workers get). Both get one CPU, so
   overhead ratio = quiver requests/s ÷ in-process predict calls/s (1.00: serving costs
   nothing). Also CPU time per request: quiver's server process (all threads) plus its workers,
   from /proc around each wrk run; for the loop, its own CPU time per call. CPU ratio = the
   loop's CPU µs per call ÷ quiver's per request: the throughput ratio on an idle machine.
   Other work disturbs it less than throughput: a busy machine gives a loop that never sleeps
   a smaller share of its CPU than a server whose threads wake on I/O ("CPU used" shows the
   shares). Before timing, quiver's answer for each batch is checked against the in-process
   predict.
2. Custom models, 1 and 2 instances. One interpreter holds one lock, so a CPU-bound predict()
   in pure Python runs on one core however many threads call it; Quiver runs one worker process
   per instance. The model (written into a temporary repository) spends about --work-ms of pure
   Python per request, served as `cpu-1` (instance_count 1) and `cpu-2` (instance_count 2); a
   `noop-*` model returns its input: the cost of the worker hop itself (V2 request, one FP32
   [1, 4] tensor, through shared memory). A second, unpinned server (2 instances need 2 CPUs),
   unpinned wrk -t1, V1 (cpu-*) or V2 (noop-*) bodies. "worker CPU" is the CPU time the workers
   used per second of the run: at most 1.0 for one instance, up to 2.0 for two.

Each figure is the median of --repeats runs of --duration seconds after a warm-up; every round
runs every case once, in an order rotated from round to round, so a change in the machine's
other load touches all cases alike. Ratios are of medians from the same run, with the range of
the per-round ratios. The report gives the load average before and after: compare figures
within one run only.

Usage: bench/python_bench.py [--quiver build/bin/quiver] [--duration 10] [--repeats 5]
                             [--connections 4] [--batches "1 32"] [--work-ms 5] [--nice N]
                             [--no-sklearn] [--no-custom] [--append]
--append adds the report to docs/benchmarks.md. Env SERVER_CPU / CLIENT_CPU choose the CPUs.
Needs wrk and taskset (scripts/setup.sh --bench), python3-sklearn and python3-joblib
(scripts/setup.sh).
"""
import argparse
import json
import os
import pathlib
import random
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[1]
LUA = ROOT / "bench" / "lib" / "post.lua"
REPORT = ROOT / "docs" / "benchmarks.md"
SKLEARN_MODEL = ROOT / "examples" / "models" / "sklearn-iris" / "model.joblib"
PYTHON = "/usr/bin/python3"  # Debian's, with python3-sklearn: what the workers embed
SERVER_CPU = os.environ.get("SERVER_CPU", "0")
CLIENT_CPU = os.environ.get("CLIENT_CPU", "1")
ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                               "NUMEXPR_NUM_THREADS")}

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

# The in-process baseline: one process, pinned like the server, that loads the model once and
# then, for each line {"x": rows, "seconds": s} on stdin, calls predict(x) in a loop for s
# seconds and answers one JSON line on stdout.
SKLEARN_LOOP = '''
import json, sys, time
import joblib, numpy as np, sklearn
model = joblib.load(sys.argv[1])
print(json.dumps({"sklearn": sklearn.__version__, "numpy": np.__version__,
                  "estimator": type(model).__name__}), flush=True)
for line in sys.stdin:
    job = json.loads(line)
    x = np.asarray(job["x"], dtype=np.float64)
    prediction = model.predict(x).tolist()
    for _ in range(100):
        model.predict(x)
    calls = 0
    wall, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall < job["seconds"]:
        for _ in range(16):
            model.predict(x)
        calls += 16
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(json.dumps({"calls_per_s": calls / wall, "cpu_us": cpu * 1e6 / calls,
                      "prediction": prediction}), flush=True)
'''

V1_BODY = {"instances": [[6.8, 2.8, 4.8, 1.4]]}
V2_BODY = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                       "data": [6.8, 2.8, 4.8, 1.4]}]}


def note(msg):
    print(f"python_bench: {msg}", file=sys.stderr, flush=True)


def loadavg():
    return " ".join(pathlib.Path("/proc/loadavg").read_text().split()[:3])


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


def write_custom_repo(repo, iterations):
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


def write_sklearn_repo(repo):
    folder = repo / "sklearn-iris"
    folder.mkdir(parents=True)
    shutil.copy(SKLEARN_MODEL, folder / "model.joblib")
    (folder / "config.yaml").write_text("format: sklearn\ninstance_count: 1\n")


def iris_rows(batch):
    """`batch` rows of iris-like measurements (fixed seed), the same for server and loop."""
    rng = random.Random(batch)
    ranges = ((4.3, 7.9), (2.0, 4.4), (1.0, 6.9), (0.1, 2.5))
    return [[round(rng.uniform(lo, hi), 1) for lo, hi in ranges] for _ in range(batch)]


class Server:
    """A `quiver serve` on free ports (port 0, read from its log), optionally pinned."""

    def __init__(self, quiver, repo, flags, cpu=None):
        cmd = [quiver, "serve", "--model-repository", str(repo), "--host", "127.0.0.1",
               "--http-port", "0", "--grpc-port", "0", "--builtin-models", "none", *flags]
        if cpu is not None:
            cmd = ["taskset", "-c", cpu, *cmd]  # taskset execs: the pid is quiver's
        self.command = cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True)
        self.log, self.port = [], None
        got_port = threading.Event()

        def read():  # keep draining, so the server never blocks on a full pipe
            for line in self.proc.stderr:
                self.log.append(line)
                m = re.search(r"HTTP server listening on [^ ]+:(\d+)", line)
                if m and self.port is None:
                    self.port = int(m.group(1))
                    got_port.set()
            got_port.set()

        threading.Thread(target=read, daemon=True).start()
        if not got_port.wait(60) or self.port is None:
            self.stop()
            sys.exit("python_bench: quiver serve did not start:\n" + "".join(self.log))
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 300  # Python workers import numpy/sklearn: slow on a busy box
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/v2/health/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        sys.exit("python_bench: quiver serve did not become ready:\n" + "".join(self.log))

    def cpu_seconds(self):
        """(server process, all threads; its children, the Python workers), user + system."""
        server, workers = 0, 0
        for entry in pathlib.Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            ticks = int(fields[11]) + int(fields[12])
            if int(entry.name) == self.proc.pid:
                server += ticks
            elif int(fields[1]) == self.proc.pid:
                workers += ticks
        hz = os.sysconf("SC_CLK_TCK")
        return server / hz, workers / hz

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class SklearnLoop:
    """The in-process baseline process (SKLEARN_LOOP), pinned to `cpu`."""

    def __init__(self, model_file, cpu):
        self.proc = subprocess.Popen(
            ["taskset", "-c", cpu, PYTHON, "-c", SKLEARN_LOOP, str(model_file)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, **ONE_THREAD})
        self.versions = self._answer()

    def _answer(self):
        line = self.proc.stdout.readline()
        if not line:
            sys.exit("python_bench: the in-process sklearn loop exited")
        return json.loads(line)

    def run(self, rows, seconds):
        self.proc.stdin.write(json.dumps({"x": rows, "seconds": seconds}) + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def post(url, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as r:
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


def run_wrk(url, body_file, connections, seconds, server=None, cpu=None):
    before = server.cpu_seconds() if server else (0.0, 0.0)
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(LUA), url]
    if cpu is not None:
        cmd = ["taskset", "-c", cpu, *cmd]
    out = subprocess.run(cmd, env={**os.environ, "BENCH_BODY_FILE": str(body_file)},
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"BENCH_RESULT (.*)", out)
    if not m:
        sys.exit("python_bench: wrk printed no result:\n" + out)
    fields = {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
    errors = sum(fields[k] for k in ("connect", "read", "write", "status", "timeout"))
    wall = fields["duration_us"] / 1e6
    after = server.cpu_seconds() if server else (0.0, 0.0)
    requests = max(fields["requests"], 1)
    return {"rps": fields["requests"] / wall,
            "worker_cores": (after[1] - before[1]) / wall,
            "server_us": (after[0] - before[0]) * 1e6 / requests,
            "worker_us": (after[1] - before[1]) * 1e6 / requests,
            "p50_ms": fields["p50_us"] / 1000.0, "p99_ms": fields["p99_us"] / 1000.0,
            "errors": errors}


def rng(values, fmt="{:.1f}"):
    return f"{fmt.format(min(values))}–{fmt.format(max(values))}"


def med(runs, key):
    return statistics.median(r[key] for r in runs)


def sklearn_report(args, results, versions):
    lines = [f"scikit-learn {versions['sklearn']} ({versions['estimator']} from "
             f"examples/models/sklearn-iris), numpy {versions['numpy']}; server and its worker "
             f"on CPU {SERVER_CPU}, wrk on CPU {CLIENT_CPU}, in-process loop on CPU "
             f"{SERVER_CPU}, one thread; V2 JSON, FP64 [batch, 4]:", "",
             "| batch | path | calls or req/s (median, min–max) | p50 ms | CPU µs/req: server + "
             "worker = total | CPU used (cores) | ÷ in-process (req/s; per-round range) | "
             "CPU ratio (in-process ÷ quiver) |",
             "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for batch in args.batches:
        loop = results[("sk-loop", batch)]
        rates = [r["calls_per_s"] for r in loop]
        base, base_cpu = statistics.median(rates), med(loop, "cpu_us")
        used = statistics.median(r["calls_per_s"] * r["cpu_us"] / 1e6 for r in loop)
        lines.append(f"| {batch} | sklearn `predict` in-process | {base:,.0f} "
                     f"({rng(rates, '{:,.0f}')}) | | {base_cpu:.0f} (the loop) | {used:.2f} | "
                     f"1.00 | 1.00 |")
        for c in args.sk_connections:
            runs = results[("sk-quiver", batch, c)]
            rps = [r["rps"] for r in runs]
            per_round = [r["rps"] / l["calls_per_s"] for r, l in zip(runs, loop)]
            server_us, worker_us = med(runs, "server_us"), med(runs, "worker_us")
            total = statistics.median(r["server_us"] + r["worker_us"] for r in runs)
            used = statistics.median(r["rps"] * (r["server_us"] + r["worker_us"]) / 1e6
                                     for r in runs)
            lines.append(
                f"| {batch} | quiver REST, {c} conn. | {statistics.median(rps):,.0f} "
                f"({rng(rps, '{:,.0f}')}) | {med(runs, 'p50_ms'):.2f} | {server_us:.0f} + "
                f"{worker_us:.0f} = {total:.0f} | {used:.2f} | "
                f"**{statistics.median(rps) / base:.2f}** ({rng(per_round, '{:.2f}')}) | "
                f"**{base_cpu / total:.2f}** |")
    return lines


def custom_report(args, results, iterations):
    lines = [f"Custom models, server, workers and wrk unpinned; cpu-*: {iterations} loop turns "
             f"of pure Python per request (~{args.work_ms:g} ms):", "",
             "| model | instances | connections | req/s (median, min–max) | vs 1 instance | "
             "worker CPU (cores) | p50 ms | p99 ms | errors |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    base = results[("custom", "cpu-1", args.connections)]
    for case in custom_cases(args):
        _, model, connections, _ = case
        runs = results[case[:3]]
        rps = [r["rps"] for r in runs]
        speedup = ""
        if model.startswith("cpu"):
            per_round = [r["rps"] / b["rps"] for r, b in zip(runs, base)]
            speedup = f"{statistics.median(rps) / med(base, 'rps'):.2f}× ({rng(per_round, '{:.2f}')})"
        lines.append(f"| {model} | {model.split('-')[1]} | {connections} | "
                     f"{statistics.median(rps):,.1f} ({rng(rps)}) | {speedup} | "
                     f"{med(runs, 'worker_cores'):.2f} | {med(runs, 'p50_ms'):.2f} | "
                     f"{med(runs, 'p99_ms'):.2f} | {sum(r['errors'] for r in runs)} |")
    return lines


def custom_cases(args):
    c = args.connections
    return [("custom", "cpu-1", c, "v1"), ("custom", "cpu-2", c, "v1"),
            ("custom", "noop-1", 1, "v2"), ("custom", "noop-1", c, "v2"),
            ("custom", "noop-2", c, "v2")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quiver", default=os.environ.get("QUIVER",
                                                           str(ROOT / "build" / "bin" / "quiver")))
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--batches", default="1 32", help="sklearn batch sizes")
    parser.add_argument("--work-ms", type=float, default=5.0)
    parser.add_argument("--nice", type=int, default=0,
                        help="run the servers, their workers, wrk and the in-process loop at "
                             "this nice level (and this session's scheduler autogroup too, "
                             "restored at exit), e.g. -20 as root on a machine other work keeps "
                             "busy")
    parser.add_argument("--no-sklearn", action="store_true")
    parser.add_argument("--no-custom", action="store_true")
    parser.add_argument("--append", action="store_true",
                        help="append the report to docs/benchmarks.md")
    args = parser.parse_args()
    args.batches = [int(b) for b in args.batches.split()]
    args.sk_connections = sorted({1, args.connections})
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"python_bench: needs {tool} (scripts/setup.sh --bench)")
    if not os.access(args.quiver, os.X_OK):
        sys.exit(f"python_bench: {args.quiver} not found; build first")
    if args.no_sklearn and args.no_custom:
        sys.exit("python_bench: nothing to run")
    # SIGTERM/SIGHUP unwind like Ctrl-C, so the finally below stops what this script started.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _: sys.exit(128 + signum))

    autogroup_old = None
    if args.nice:
        # This process too: the calibration below must run at the workers' priority, and the
        # servers, their workers, wrk and the loop inherit the level.
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
        autogroup_old = set_autogroup_nice(args.nice)
    load_before = loadavg()
    started = time.gmtime()
    iterations = calibrate(args.work_ms) if not args.no_custom else 0
    work = pathlib.Path(tempfile.mkdtemp(prefix="quiver-python-bench."))
    servers, loop = [], None
    try:
        cases, targets = [], {}  # case -> a function running it once
        if not args.no_sklearn:
            write_sklearn_repo(work / "sk-repo")
            sk = Server(args.quiver, work / "sk-repo",
                        ["--workers", "1", "--enable-grpc", "false"], cpu=SERVER_CPU)
            servers.append(sk)
            loop = SklearnLoop(SKLEARN_MODEL, SERVER_CPU)
            url = sk.url + "/v2/models/sklearn-iris/infer"
            for batch in args.batches:
                rows = iris_rows(batch)
                body = {"inputs": [{"name": "input-0", "shape": [batch, 4], "datatype": "FP64",
                                    "data": [v for row in rows for v in row]}]}
                body_file = work / f"sk-{batch}.json"
                body_file.write_text(json.dumps(body, separators=(",", ":")))
                expected = loop.run(rows, 0.1)["prediction"]
                got = post(url, body)["outputs"][0]["data"]
                if got != expected:
                    sys.exit(f"python_bench: quiver answered {got} for batch {batch}, "
                             f"sklearn in-process {expected}")
                cases.append(("sk-loop", batch))
                targets[("sk-loop", batch)] = (
                    lambda rows=rows: loop.run(rows, args.duration))
                for c in args.sk_connections:
                    run_wrk(url, body_file, c, args.warmup, cpu=CLIENT_CPU)
                    cases.append(("sk-quiver", batch, c))
                    targets[("sk-quiver", batch, c)] = (
                        lambda b=body_file, c=c: run_wrk(url, b, c, args.duration, sk,
                                                         CLIENT_CPU))
        if not args.no_custom:
            write_custom_repo(work / "custom-repo", iterations)
            (work / "v1.json").write_text(json.dumps(V1_BODY))
            (work / "v2.json").write_text(json.dumps(V2_BODY))
            custom = Server(args.quiver, work / "custom-repo", [])
            servers.append(custom)
            for case in custom_cases(args):
                _, model, connections, protocol = case
                path = (f"/v1/models/{model}:predict" if protocol == "v1"
                        else f"/v2/models/{model}/infer")
                body = work / f"{protocol}.json"
                answer = post(custom.url + path, json.loads(body.read_text()))
                assert "predictions" in answer or "outputs" in answer, answer
                run_wrk(custom.url + path, body, connections, args.warmup)
                cases.append(case[:3])
                targets[case[:3]] = (
                    lambda p=path, b=body, c=connections: run_wrk(custom.url + p, b, c,
                                                                  args.duration, custom))
        results = {case: [] for case in cases}
        for rnd in range(args.repeats):
            note(f"round {rnd + 1} of {args.repeats} (load average {loadavg()})")
            k = rnd % len(cases)
            for case in cases[k:] + cases[:k]:
                results[case].append(targets[case]())
    finally:
        if loop is not None:
            loop.stop()
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
        if autogroup_old is not None:
            set_autogroup_nice(autogroup_old)
    load_after = loadavg()

    st = os.stat(args.quiver)
    command = " ".join(shlex.quote(a) for a in ["bench/python_bench.py", *sys.argv[1:]])
    env = " ".join(f"{k}={os.environ[k]}" for k in ("SERVER_CPU", "CLIENT_CPU")
                   if k in os.environ)
    lines = [f"### Run of {time.strftime('%Y-%m-%d %H:%M UTC', started)}: "
             "bench/python_bench.py", "",
             f"- Command: `{(env + ' ') if env else ''}{command}` ({args.repeats} rounds of "
             f"{args.duration} s runs, cases interleaved; nice {args.nice})",
             f"- Machine: {os.cpu_count()} CPUs, Linux {os.uname().release}; load average "
             f"before {load_before}, after {load_after}",
             f"- quiver: {args.quiver} ({st.st_size} bytes, modified "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(st.st_mtime))})", ""]
    errors = 0
    if not args.no_sklearn:
        lines += sklearn_report(args, results, loop.versions) + [""]
        errors += sum(r["errors"] for case in cases if case[0] == "sk-quiver"
                      for r in results[case])
    if not args.no_custom:
        lines += custom_report(args, results, iterations) + [""]
        errors += sum(r["errors"] for case in cases if case[0] == "custom"
                      for r in results[case])
    lines.append(f"Errors: {errors} (non-2xx answers and socket errors over all wrk runs).")
    report = "\n".join(lines) + "\n"
    print(report)
    if args.append:
        with open(REPORT, "a", encoding="utf-8") as f:
            f.write("\n" + report)
        note(f"appended to {REPORT.relative_to(ROOT)}")
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
