#!/usr/bin/python3
"""Serving overhead of the TorchScript runtime, and what a TorchScript model costs quiver serve.

1. Throughput. The example MLP (examples/models/torchscript-mlp, 4 -> 16 -> 3) on the same batch
   (1 and 32 rows by default), three ways, each on one CPU (SERVER_CPU, default 0):
   - torch (Python): python3-torch in-process, torch.jit.load(model.pt), torch.set_num_threads(1),
     model(x) under torch.inference_mode() in a loop: the framework's own throughput, as a
     Python user of torch gets it;
   - libtorch (C++): torchscript_predict_bench, module.forward on a ready tensor, one thread: the
     framework without Python, the stricter baseline; and the plugin's Model::Execute (copy in,
     forward, copy out) for what the runtime itself adds;
   - quiver: `quiver serve --workers 1 --builtin-models add_sub --enable-grpc false`, the model
     at instance_count 1, intra_op_threads 1 (the example's config), pinned to SERVER_CPU; wrk -t1
     on CLIENT_CPU (default 1), keep-alive, the same request every time, as v2 JSON and with the
     binary tensor extension (binary output too), at 1 connection (latency-bound: each request
     waits for the previous answer) and 8 (the server's CPU is the limit); and as JSON to the
     same model with `inline_execution: true` (run on the I/O thread, no hand-off).
   Each figure is the median of REPEATS runs (rounds alternate between the three). Overhead
   ratio = quiver requests/s / in-process calls/s (1.00: serving costs nothing). Also the
   server's CPU time per request (user + system, all threads, /proc/PID/stat around each wrk
   run; for the in-process loops, 1 / calls per second), which other work on the machine
   disturbs less than throughput.
   Before timing, quiver's answer to each request is checked against python3-torch's (1e-5).
   For reference, the same server's HTTP ceiling in the same run: the built-in add_sub model
   (bench/lib/add_sub_request.json; no model work, runs on the I/O thread).
2. Start-up and memory. `quiver serve` (built-in models only) and the same with a repository
   holding the MLP: time from spawning the process to GET /v2/health/ready answering 200 (every
   model loaded: strict readiness), the server's CPU time (user + system) until then, which
   other work on the machine disturbs less than the wall time, VmRSS and RssAnon one second
   later, and whether libtorch is mapped (/proc/PID/maps): it must not be without a TorchScript
   model (the script fails if it is). Median of STARTUP_RUNS, with the min-max spread.

This is a shared 2-CPU virtual machine: compare figures within one run, never across runs. The
report prints the load average at the start and end; --append adds it to docs/benchmarks.md.

Usage: bench/torchscript_bench.py [options]
  -d, --duration SECONDS   length of each timed run          (env DURATION, default 5)
  -r, --repeats N          runs per cell                     (env REPEATS, default 5)
  -b, --batches "1 32"     batch sizes                       (env BATCHES, default "1 32")
  -c, --connections "1 8"  wrk connection counts             (env CONNECTIONS, default "1 8")
      --startup-runs N     start-up measurements per config  (env STARTUP_RUNS, default 5)
      --quiver PATH        the quiver binary       (env QUIVER, default build/bin/quiver)
      --predict-bench PATH torchscript_predict_bench (env PREDICT_BENCH, default: beside quiver)
      --nice N             run everything at this nice level (env BENCH_NICE, default 0;
                           e.g. -20 as root on a machine other work keeps busy; with autogroup
                           scheduling also the level of this session's group, restored at exit)
      --no-throughput / --no-startup   skip a part
      --append             also append the report to docs/benchmarks.md
Env SERVER_CPU / CLIENT_CPU choose the CPUs. Needs wrk, taskset (scripts/setup.sh --bench) and
Debian's python3-torch, python3-numpy, python3-requests.
"""
import argparse
import json
import os
import pathlib
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import numpy as np
import requests
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "benchmarks.md"
PYTHON = "/usr/bin/python3"  # Debian's, with python3-torch
MLP = ROOT / "examples" / "models" / "torchscript-mlp"
ADD_SUB_BODY = ROOT / "bench" / "lib" / "add_sub_request.json"
LISTEN_RE = re.compile(r"HTTP server listening on [^ ]+:(\d+)")
SERVER_CPU = os.environ.get("SERVER_CPU", "0")
CLIENT_CPU = os.environ.get("CLIENT_CPU", "1")

# wrk: POSTs $BENCH_BODY_FILE; with $BENCH_HEADER_LENGTH set, as a binary-extension request.
WRK_LUA = textwrap.dedent("""\
    local f = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
    wrk.method = "POST"
    wrk.body = f:read("*a")
    f:close()
    local header_length = os.getenv("BENCH_HEADER_LENGTH")
    if header_length ~= nil and header_length ~= "" then
      wrk.headers["Content-Type"] = "application/octet-stream"
      wrk.headers["Inference-Header-Content-Length"] = header_length
    else
      wrk.headers["Content-Type"] = "application/json"
    end
    function done(summary, latency, requests)
      local e = summary.errors
      io.write(string.format(
        "BENCH_RESULT requests=%d duration_us=%d errors=%d status=%d p50_us=%d p99_us=%d\\n",
        summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout,
        e.status, latency:percentile(50), latency:percentile(99)))
    end
    """)

# In-process python3-torch loop, run in its own process pinned like the server.
TORCH_LOOP = textwrap.dedent("""\
    import sys, time, torch
    torch.set_num_threads(1)
    model = torch.jit.load(sys.argv[1])
    model.eval()
    batch, seconds = int(sys.argv[2]), float(sys.argv[3])
    x = torch.randn(batch, 4)
    with torch.inference_mode():
        for _ in range(100):
            model(x)
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for _ in range(64):
                model(x)
            calls += 64
        elapsed = time.perf_counter() - start
    print(f"BENCH calls_per_s={calls / elapsed:.1f}")
    """)


def note(msg):
    print(f"torchscript_bench: {msg}", file=sys.stderr, flush=True)


def loadavg():
    return open("/proc/loadavg").read().split()[:3]


class Server:
    """A pinned `quiver serve`; the port is read from its log."""

    def __init__(self, quiver, args, cpu=None):
        cmd = [quiver, "serve", "--host", "127.0.0.1", "--http-port", "0", "--grpc-port", "0",
               *args]
        if cpu is not None:
            cmd = ["taskset", "-c", cpu, *cmd]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        self.log = []
        self.port = None
        got_port = threading.Event()

        def read():
            for line in self.proc.stderr:
                self.log.append(line)
                m = LISTEN_RE.search(line)
                if m and self.port is None:
                    self.port = int(m.group(1))
                    got_port.set()
            got_port.set()

        threading.Thread(target=read, daemon=True).start()
        if not got_port.wait(60) or self.port is None:
            self.stop()
            raise RuntimeError("quiver serve did not start:\n" + "".join(self.log))
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout=60):
        """Seconds from spawning the process to the first 200 from /v2/health/ready."""
        session = requests.Session()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if session.get(self.url + "/v2/health/ready", timeout=2).status_code == 200:
                    return time.monotonic() - self.started
            except requests.RequestException:
                pass
            time.sleep(0.002)
        raise RuntimeError("not ready:\n" + "".join(self.log))

    def cpu_seconds(self):
        """User + system CPU time of the server so far, all threads."""
        fields = open(f"/proc/{self.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory(self):
        status = open(f"/proc/{self.proc.pid}/status").read()
        kb = {k: int(v) for k, v in re.findall(r"^(VmRSS|RssAnon):\s+(\d+) kB", status, re.M)}
        with open(f"/proc/{self.proc.pid}/maps") as f:
            torch_mapped = any("libtorch" in line for line in f)
        return kb["VmRSS"] / 1024, kb["RssAnon"] / 1024, torch_mapped

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def make_repository(tmp):
    repo = tmp / "repo"
    if not repo.exists():
        shutil.copytree(MLP, repo / "torchscript-mlp")
        shutil.copytree(MLP, repo / "torchscript-mlp-inline")
        with open(repo / "torchscript-mlp-inline" / "config.yaml", "a") as f:
            f.write("inline_execution: true\n")
    return repo


def make_requests(tmp, batch):
    """The JSON and binary-extension bodies for one batch, and python3-torch's answer."""
    x = np.random.default_rng(batch).normal(size=(batch, 4)).astype(np.float32)
    model = torch.jit.load(str(MLP / "model.pt"))
    model.eval()
    with torch.inference_mode():
        expected = model(torch.from_numpy(x)).numpy()
    body = {"id": "bench", "inputs": [{"name": "features", "shape": [batch, 4],
                                       "datatype": "FP32", "data": x.ravel().tolist()}]}
    json_file = tmp / f"json-{batch}.body"
    json_file.write_text(json.dumps(body, separators=(",", ":")))
    header = json.dumps({"id": "bench",
                         "inputs": [{"name": "features", "shape": [batch, 4], "datatype": "FP32",
                                     "parameters": {"binary_data_size": x.nbytes}}],
                         "outputs": [{"name": "scores", "parameters": {"binary_data": True}}]},
                        separators=(",", ":")).encode()
    binary_file = tmp / f"binary-{batch}.body"
    binary_file.write_bytes(header + x.tobytes())
    return {"json": (json_file, None), "binary": (binary_file, len(header))}, expected


def check_answers(server, bodies, expected, batch, model):
    path = server.url + f"/v2/models/{model}/infer"
    file, _ = bodies["json"]
    r = requests.post(path, data=file.read_bytes(), headers={"Content-Type": "application/json"})
    r.raise_for_status()
    got = np.asarray(r.json()["outputs"][0]["data"], dtype=np.float32).reshape(batch, 3)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    file, header_length = bodies["binary"]
    r = requests.post(path, data=file.read_bytes(),
                      headers={"Content-Type": "application/octet-stream",
                               "Inference-Header-Content-Length": str(header_length)})
    r.raise_for_status()
    json_length = int(r.headers["Inference-Header-Content-Length"])
    got = np.frombuffer(r.content[json_length:], dtype=np.float32).reshape(batch, 3)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def run_wrk(lua, url, body, header_length, connections, seconds, server=None):
    cpu_before = server.cpu_seconds() if server else 0.0
    env = {**os.environ, "BENCH_BODY_FILE": str(body),
           "BENCH_HEADER_LENGTH": "" if header_length is None else str(header_length)}
    out = subprocess.run(["taskset", "-c", CLIENT_CPU, "wrk", "-t1", f"-c{connections}",
                          f"-d{seconds}s", "--latency", "-s", str(lua), url],
                         env=env, capture_output=True, text=True, check=True).stdout
    m = re.search(r"BENCH_RESULT (.*)", out)
    if not m:
        raise RuntimeError("wrk printed no result:\n" + out)
    r = {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
    if r["errors"] or r["status"]:
        raise RuntimeError(f"wrk run had errors: {r}\n{out}")
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    if server:
        r["cpu_us"] = (server.cpu_seconds() - cpu_before) * 1e6 / max(r["requests"], 1)
    return r


def run_python_loop(batch, seconds):
    out = subprocess.run(["taskset", "-c", SERVER_CPU, PYTHON, "-c", TORCH_LOOP,
                          str(MLP / "model.pt"), str(batch), str(seconds)],
                         capture_output=True, text=True, check=True).stdout
    return float(re.search(r"calls_per_s=([\d.]+)", out).group(1))


def run_cpp_loop(predict_bench, batch, seconds):
    out = subprocess.run(["taskset", "-c", SERVER_CPU, predict_bench, str(MLP / "model.pt"), "4",
                          str(seconds), str(batch)], capture_output=True, text=True,
                         check=True).stdout
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r"path=(\w+) .*calls_per_s=([\d.]+)", out)}


def spread(values, fmt="{:.0f}"):
    return f"{fmt.format(min(values))}–{fmt.format(max(values))}"


def throughput(args, tmp):
    lua = tmp / "post.lua"
    lua.write_text(WRK_LUA)
    repo = make_repository(tmp)
    server = Server(args.quiver, ["--workers", "1", "--builtin-models", "add_sub",
                                  "--enable-grpc", "false", "--model-repository", str(repo)],
                    cpu=SERVER_CPU)
    try:
        server.wait_ready()
        url = server.url + "/v2/models/torchscript-mlp/infer"
        inline_url = server.url + "/v2/models/torchscript-mlp-inline/infer"
        ceiling_url = server.url + "/v2/models/add_sub/infer"
        bodies, cells = {}, {}
        for c in args.connections:
            run_wrk(lua, ceiling_url, ADD_SUB_BODY, None, c, 1)  # warm-up
        for batch in args.batches:
            bodies[batch], expected = make_requests(tmp, batch)
            check_answers(server, bodies[batch], expected, batch, "torchscript-mlp")
            check_answers(server, bodies[batch], expected, batch, "torchscript-mlp-inline")
            for encoding, (body, header_length) in bodies[batch].items():
                for c in args.connections:
                    run_wrk(lua, url, body, header_length, c, 1)  # warm-up
                    if encoding == "json":
                        run_wrk(lua, inline_url, body, header_length, c, 1)
        for rnd in range(args.repeats):
            note(f"round {rnd + 1} of {args.repeats}")
            for c in args.connections:
                cells.setdefault(("add_sub", c), []).append(
                    run_wrk(lua, ceiling_url, ADD_SUB_BODY, None, c, args.duration, server))
            for batch in args.batches:
                cells.setdefault(("python", batch), []).append(
                    run_python_loop(batch, args.duration))
                for path, rate in run_cpp_loop(args.predict_bench, batch, args.duration).items():
                    cells.setdefault((path, batch), []).append(rate)
                for encoding, (body, header_length) in bodies[batch].items():
                    for c in args.connections:
                        r = run_wrk(lua, url, body, header_length, c, args.duration, server)
                        cells.setdefault((encoding, c, batch), []).append(r)
                        if encoding == "json":
                            r = run_wrk(lua, inline_url, body, header_length, c, args.duration,
                                        server)
                            cells.setdefault(("inline", c, batch), []).append(r)
    finally:
        server.stop()

    lines = ["| batch | path | calls or requests/s (median, spread) | rows/s | p50 µs | "
             "server CPU µs/req | ÷ torch (Python) | ÷ libtorch (C++) |",
             "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for batch in args.batches:
        python = statistics.median(cells[("python", batch)])
        forward = statistics.median(cells[("forward", batch)])
        rows = [("torch (Python) in-process", cells[("python", batch)], None, None),
                ("libtorch forward (C++) in-process", cells[("forward", batch)], None, None),
                ("quiver Model::Execute in-process", cells[("execute", batch)], None, None)]
        for encoding in ("json", "binary", "inline"):
            for c in args.connections:
                runs = cells[(encoding, c, batch)]
                label = ("json, inline_execution" if encoding == "inline" else encoding)
                rows.append((f"quiver REST {label}, {c} conn.", [r["rps"] for r in runs],
                             statistics.median(r["p50_us"] for r in runs),
                             statistics.median(r["cpu_us"] for r in runs)))
        for label, values, p50, cpu in rows:
            m = statistics.median(values)
            if cpu is None:  # one thread busy all the time
                cpu = 1e6 / m
            lines.append(f"| {batch} | {label} | {m:,.0f} ({spread(values)}) | {m * batch:,.0f} | "
                         f"{'' if p50 is None else f'{p50:.0f}'} | {cpu:.1f} | {m / python:.2f} | "
                         f"{m / forward:.2f} |")
    lines += ["", "The HTTP ceiling in the same run: the built-in add_sub model (no model work, "
              "runs on the I/O thread) on the same server:", "",
              "| path | requests/s (median, spread) | p50 µs | server CPU µs/req |",
              "| --- | ---: | ---: | ---: |"]
    for c in args.connections:
        runs = cells[("add_sub", c)]
        rps = [r["rps"] for r in runs]
        lines.append(f"| quiver REST json add_sub, {c} conn. | {statistics.median(rps):,.0f} "
                     f"({spread(rps)}) | {statistics.median(r['p50_us'] for r in runs):.0f} | "
                     f"{statistics.median(r['cpu_us'] for r in runs):.1f} |")
    return "\n".join(lines)


def startup(args, tmp):
    repo = make_repository(tmp)
    configs = [("built-in models only", []),
               ("built-ins + TorchScript MLP", ["--model-repository", str(repo)])]
    results = {label: [] for label, _ in configs}
    for run in range(args.startup_runs):
        for label, flags in configs:
            server = Server(args.quiver, flags)
            try:
                ready = server.wait_ready()
                cpu = server.cpu_seconds()
                time.sleep(1.0)
                results[label].append((ready, *server.memory(), cpu))
            finally:
                server.stop()
    lines = ["| server | start → ready ms (median, spread) | CPU ms to ready | VmRSS MiB | "
             "RssAnon MiB | libtorch mapped |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    for label, runs in results.items():
        ms = [r[0] * 1000 for r in runs]
        rss = [r[1] for r in runs]
        anon = [r[2] for r in runs]
        mapped = {r[3] for r in runs}
        cpu = [r[4] * 1000 for r in runs]
        lines.append(f"| {label} | {statistics.median(ms):.0f} ({spread(ms)}) | "
                     f"{statistics.median(cpu):.0f} ({spread(cpu)}) | "
                     f"{statistics.median(rss):.1f} ({spread(rss, '{:.1f}')}) | "
                     f"{statistics.median(anon):.1f} ({spread(anon, '{:.1f}')}) | "
                     f"{'yes' if mapped == {True} else 'no' if mapped == {False} else 'varies'} |")
    if any(r[3] for r in results["built-in models only"]):
        raise RuntimeError("libtorch is mapped in a server without TorchScript models")
    if not all(r[3] for r in results["built-ins + TorchScript MLP"]):
        raise RuntimeError("libtorch is not mapped in a server with a TorchScript model")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-d", "--duration", type=float, default=float(os.environ.get("DURATION", 5)))
    p.add_argument("-r", "--repeats", type=int, default=int(os.environ.get("REPEATS", 5)))
    p.add_argument("-b", "--batches", default=os.environ.get("BATCHES", "1 32"))
    p.add_argument("-c", "--connections", default=os.environ.get("CONNECTIONS", "1 8"))
    p.add_argument("--startup-runs", type=int, default=int(os.environ.get("STARTUP_RUNS", 5)))
    p.add_argument("--quiver", default=os.environ.get("QUIVER", str(ROOT / "build/bin/quiver")))
    p.add_argument("--predict-bench", default=os.environ.get("PREDICT_BENCH"))
    p.add_argument("--nice", type=int, default=int(os.environ.get("BENCH_NICE", 0)))
    p.add_argument("--no-throughput", action="store_true")
    p.add_argument("--no-startup", action="store_true")
    p.add_argument("--append", action="store_true")
    args = p.parse_args()
    args.batches = [int(b) for b in args.batches.split()]
    args.connections = [int(c) for c in args.connections.split()]
    args.duration = int(args.duration) if args.duration == int(args.duration) else args.duration
    if args.predict_bench is None:
        args.predict_bench = str(pathlib.Path(args.quiver).parent / "torchscript_predict_bench")
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"torchscript_bench: {tool} not found (scripts/setup.sh --bench)")
    for binary in [args.quiver] + ([] if args.no_throughput else [args.predict_bench]):
        if not os.access(binary, os.X_OK):
            sys.exit(f"torchscript_bench: {binary} not found; build first")
    # SIGTERM/SIGHUP unwind like Ctrl-C, so every server this script started is stopped.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _: sys.exit(128 + signum))

    autogroup_old = None
    if args.nice != 0:
        # Inherited by every process this script starts. With autogroup scheduling a nice level
        # only counts within its session's group, so the group gets the same level.
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
        group = pathlib.Path("/proc/self/autogroup")
        if pathlib.Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1":
            m = re.search(r"nice (-?\d+)", group.read_text())
            try:
                group.write_text(str(args.nice))
                autogroup_old = m.group(1) if m else "0"
            except OSError:
                note("cannot set this session's autogroup nice level")
    try:
        run(args)
    finally:
        if autogroup_old is not None:
            pathlib.Path("/proc/self/autogroup").write_text(autogroup_old)


def run(args):
    st = os.stat(args.quiver)
    env = " ".join(f"{k}={os.environ[k]}" for k in ("SERVER_CPU", "CLIENT_CPU")
                   if k in os.environ)
    command = " ".join(shlex.quote(a) for a in ["bench/torchscript_bench.py", *sys.argv[1:]])
    report = [f"### Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
              "bench/torchscript_bench.py", "",
              f"- Command: `{(env + ' ') if env else ''}{command}`",
              f"- quiver: {args.quiver} ({st.st_size} bytes, modified "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(st.st_mtime))}); predict bench "
              f"{args.predict_bench}",
              f"- torch {torch.__version__}; server on CPU {SERVER_CPU}, wrk on CPU {CLIENT_CPU}; "
              f"{args.repeats} runs of {args.duration} s per cell; nice {args.nice}; "
              f"{os.cpu_count()} CPUs, Linux {os.uname().release}; load average at start "
              f"{' '.join(loadavg())}", ""]
    with tempfile.TemporaryDirectory(prefix="torchscript_bench.") as tmp:
        tmp = pathlib.Path(tmp)
        if not args.no_throughput:
            report += ["Throughput, example MLP (4 → 16 → 3), one CPU for the server or loop:",
                       "", throughput(args, tmp), ""]
        if not args.no_startup:
            report += [f"Start-up and memory ({args.startup_runs} runs each):", "",
                       startup(args, tmp), ""]
    report.append(f"Load average at end {' '.join(loadavg())}.")
    text = "\n".join(report) + "\n"
    print(text)
    if args.append:
        with open(REPORT, "a", encoding="utf-8") as f:
            f.write("\n" + text)
        note(f"appended to {REPORT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
