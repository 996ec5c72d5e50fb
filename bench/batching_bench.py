#!/usr/bin/python3
"""Dynamic batching (issue #5): what batching buys, measured side by side in one run.

Cases, all models in one `quiver serve` (a temporary repository) and measured in the same run:
  - `sleep` (built-in format: returns its input after a fixed --sleep-us per execution, 1
    instance) at --sleep-concurrency (64): batching off, and max_batch_size --max-batch (32)
    with max_queue_delay --sleep-delay-us. With one instance and a fixed execution time the
    ideal gain is the batch size the load allows, min(max_batch, concurrency), per execution;
    the report gives achieved gain (requests/s on ÷ off) ÷ ideal (target >= 0.8).
  - an XGBoost regressor (--xgb-model, default examples/models/xgboost-regressor: 100 trees, 20
    features; checked, and generated into the temporary repository if it is not that) with
    instance_count 1 and nthread 1, at concurrency 1 and 64: batching off, and max_batch_size
    --max-batch with each of --xgb-delays (max_queue_delay, µs). Requests are one row, REST
    (--encoding json, the default, or binary), random values from `quiver bench`.
  - the same model in-process (bench/lib/xgb_inprocess.py: python3-xgboost's libxgboost, the
    C call the runtime makes, XGBoosterPredictFromDense with a proxy DMatrix, nthread 1 as the
    instance is configured, one thread) at --inproc-batches rows per call, pinned to the
    server's CPU, for the same length as a server case.
  - p99 with batching against the bound max_queue_delay + one execution + p99 without
    batching at the same concurrency (one execution: --sleep-us for sleep; the in-process wall
    time of a --max-batch-row call for XGBoost).
  - a control for that bound (bench/lib/timer_lateness.py): how late a bare timed wait of each
    nonzero XGBoost delay wakes a thread (a futex wait with an absolute deadline and 1 µs of
    timer slack, as the instance thread's condition_variable::wait_until), pinned to the
    server's CPU at the same nice. No server is involved: it is what the machine adds to any
    delayed request.

Method: the server runs on --server-cpus (default 0) with one HTTP I/O thread (--workers 1; the
model instance threads share that CPU), `quiver bench` (one sender thread, one keep-alive
connection per concurrent request) on --client-cpus (default 1). Each case is one `quiver bench`
run of 3 windows of --window-ms, all three merged (--max-trials 3). A warm-up run of every case
comes first, then --repeats rounds, each running every case once in an order rotated every round
(round-robin, in-process runs included). Figures are medians over rounds with the min-max spread
of requests/s; gains are also given per round (on and off of one round ran minutes apart at
most). Server CPU per request comes from /proc/PID/stat around each run, "busiest thread" is the
server thread with the most CPU in the run, as a share of the run's wall time (100%: that thread
had a whole CPU and was the limit).

Executed batch sizes (--trace-batches auto|on|off, default auto = when root with tracefs, an
x86-64 quiver with symbols, and nm/readelf): after the measured rounds, one more run of each
batching case with a uprobe on quiver::ExecuteBatch(jobs, ...) that records jobs.size() for
every execution, in a private tracing instance removed afterwards. Those extra runs are not part
of the figures.

Usage: /usr/bin/python3 bench/batching_bench.py [--quiver PATH] [--repeats 5] [--window-ms 2000]
           [--sleep-us 10000] [--sleep-delay-us 2000] [--sleep-concurrency 64] [--max-batch 32]
           [--xgb-model FILE] [--xgb-delays 0,500] [--xgb-concurrency 1,64]
           [--encoding json|binary] [--inproc-batches 1,8,32] [--server-cpus 0]
           [--client-cpus 1] [--nice N] [--trace-batches auto] [--markdown FILE]
The quiver binary: --quiver, else $QUIVER, else build/bin/quiver of this checkout; the XGBoost
plugin is found as `quiver serve` finds it (<bin>/runtimes, $QUIVER_RUNTIME_DIR). Needs taskset
and python3-xgboost (scripts/setup.sh --bench). Prints a Markdown report on stdout; progress on
stderr. Exit status 0, or 1 when some request failed.
"""
import argparse
import collections
import json
import os
import pathlib
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "lib"))
import bench_harness as h  # noqa: E402

PROG = "batching_bench"
INPROC = pathlib.Path(__file__).resolve().parent / "lib" / "xgb_inprocess.py"
TIMER = pathlib.Path(__file__).resolve().parent / "lib" / "timer_lateness.py"
PY = "/usr/bin/python3"


class BatchTracer:
    """Counts jobs per quiver::ExecuteBatch call with a uprobe (tracefs), in a private tracing
    instance. x86-64 only: the first argument (a reference to the job vector) is in %rdi, the
    vector's begin and end pointers at +0 and +8."""

    TRACEFS = pathlib.Path("/sys/kernel/tracing")

    def __init__(self, quiver):
        self.ok = False
        self.why = ""
        self.group = f"quiverbench{os.getpid()}"
        self.instance = self.TRACEFS / "instances" / self.group
        self.defined = False
        if os.geteuid() != 0:
            self.why = "not root"
            return
        if platform.machine() != "x86_64":
            self.why = "not x86-64"
            return
        if not (self.TRACEFS / "uprobe_events").exists():
            self.why = "no tracefs uprobes"
            return
        if not shutil.which("nm") or not shutil.which("readelf"):
            self.why = "no nm/readelf"
            return
        syms = subprocess.run(["nm", quiver], capture_output=True, text=True).stdout
        m = re.search(r"^([0-9a-f]+) T (_ZN6quiver12ExecuteBatch\S*)$", syms, re.M)
        if not m:
            self.why = "quiver::ExecuteBatch not in the symbol table"
            return
        vaddr = int(m.group(1), 16)
        offset = None
        segs = subprocess.run(["readelf", "-lW", quiver], capture_output=True, text=True).stdout
        for line in segs.splitlines():
            f = line.split()
            if f and f[0] == "LOAD":
                off, va, filesz = int(f[1], 16), int(f[2], 16), int(f[4], 16)
                if va <= vaddr < va + filesz:
                    offset = vaddr - va + off
        if offset is None:
            self.why = "cannot map ExecuteBatch to a file offset"
            return
        self.probe = (f"p:{self.group}/execbatch {os.path.realpath(quiver)}:{offset:#x} "
                      "begin=+0(%di):u64 end=+8(%di):u64")
        self.ok = True
        import atexit
        atexit.register(self.remove)

    def _write(self, path, text, append=False):
        # os.open: Python's append mode seeks to the end, which tracefs files refuse.
        fd = os.open(path, os.O_WRONLY | (os.O_APPEND if append else os.O_TRUNC))
        try:
            os.write(fd, (text + "\n").encode())
        finally:
            os.close(fd)

    def start(self):
        if not self.defined:
            self._write(self.TRACEFS / "uprobe_events", self.probe, append=True)
            self.defined = True
        self.instance.mkdir(exist_ok=True)
        self._write(self.instance / "buffer_size_kb", "8192")
        self._write(self.instance / "events" / self.group / "execbatch" / "enable", "1")

    def stop(self, tids):
        """Batch sizes of the executions by the threads `tids` since start()."""
        self._write(self.instance / "events" / self.group / "execbatch" / "enable", "0")
        sizes = []
        lost = 0
        for line in (self.instance / "trace").read_text().splitlines():
            m = re.search(r"-(\d+)\s+\[\d+\].*begin=(\d+) end=(\d+)", line)
            if m and int(m.group(1)) in tids:
                sizes.append((int(m.group(3)) - int(m.group(2))) // 8)
        for stats in (self.instance / "per_cpu").glob("cpu*/stats"):
            m = re.search(r"overrun: (\d+)", stats.read_text())
            lost += int(m.group(1)) if m else 0
        self.instance.rmdir()
        return sizes, lost

    def remove(self):
        if self.instance.exists():
            try:
                self._write(self.instance / "events" / self.group / "execbatch" / "enable", "0")
                self.instance.rmdir()
            except OSError:
                pass
        if self.defined:
            try:
                self._write(self.TRACEFS / "uprobe_events", f"-:{self.group}/execbatch",
                            append=True)
            except OSError:
                pass
            self.defined = False


def write_repo(repo, a, model_file):
    def model(name, yaml, model_json=False):
        d = repo / name
        d.mkdir(parents=True)
        (d / "config.yaml").write_text(yaml)
        if model_json:
            os.symlink(model_file, d / "model.json")

    sleep = f"format: sleep\nparameters: {{sleep_us: {a.sleep_us}}}\n"
    model("sleep-off", sleep)
    model("sleep-b%d" % a.max_batch, sleep + f"max_batch_size: {a.max_batch}\n"
          f"dynamic_batching: {{max_queue_delay_microseconds: {a.sleep_delay_us}}}\n")
    xgb = "format: xgboost\ninstance_count: 1\nparameters: {nthread: 1}\n"
    model("xgb-off", xgb, True)
    for d in a.xgb_delays:
        model(f"xgb-b{a.max_batch}-d{d}", xgb + f"max_batch_size: {a.max_batch}\n"
              f"dynamic_batching: {{max_queue_delay_microseconds: {d}}}\n", True)


def inprocess(a, model_file, batch, seconds, prefix):
    cmd = prefix + ["taskset", "-c", a.server_cpus, PY, str(INPROC), "run", "--model",
                    str(model_file), "--batch", str(batch), "--seconds", str(seconds),
                    "--nthread", "1"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{PROG}: in-process baseline failed: {p.stderr}")
    r = json.loads(p.stdout)
    r["calls_s"] = r["calls"] / r["seconds"]
    r["rows_s"] = r["rows"] / r["seconds"]
    r["wall_us"] = r["seconds"] * 1e6 / r["calls"]
    r["cpu_us"] = r["cpu"] * 1e6 / r["calls"]
    r["cpu_share"] = r["cpu"] / r["seconds"]
    return r


def timer_lateness(a, delay_us, seconds, prefix):
    cmd = prefix + ["taskset", "-c", a.server_cpus, PY, str(TIMER), "--delay-us", str(delay_us),
                    "--seconds", str(seconds)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{PROG}: timer control failed: {p.stderr}")
    return json.loads(p.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quiver", default=h.DEFAULT_QUIVER)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--window-ms", type=int, default=2000)
    ap.add_argument("--sleep-us", type=int, default=10000)
    ap.add_argument("--sleep-delay-us", type=int, default=2000)
    ap.add_argument("--sleep-concurrency", type=int, default=64)
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument("--xgb-model",
                    default=str(h.ROOT / "examples" / "models" / "xgboost-regressor" / "model.json"))
    ap.add_argument("--xgb-delays", default="0,500")
    ap.add_argument("--xgb-concurrency", default="1,64")
    ap.add_argument("--encoding", choices=("json", "binary"), default="json")
    ap.add_argument("--inproc-batches", default="1,8,32")
    ap.add_argument("--server-cpus", default="0")
    ap.add_argument("--client-cpus", default="1")
    ap.add_argument("--nice", type=int, default=0)
    ap.add_argument("--trace-batches", choices=("auto", "on", "off"), default="auto")
    ap.add_argument("--markdown")
    a = ap.parse_args()
    a.xgb_delays = [int(x) for x in a.xgb_delays.split(",") if x != ""]
    a.xgb_conc = [int(x) for x in a.xgb_concurrency.split(",")]
    a.inproc = [int(x) for x in a.inproc_batches.split(",")]
    if a.max_batch not in a.inproc:
        a.inproc.append(a.max_batch)

    if not os.access(a.quiver, os.X_OK):
        h.die(PROG, f"no quiver binary at {a.quiver} (build it, or give --quiver / $QUIVER)")
    for tool in ("taskset", "nice"):
        if not shutil.which(tool):
            h.die(PROG, f"missing {tool} (scripts/setup.sh --bench)")
    h.check_cpu(a.server_cpus)
    h.check_cpu(a.client_cpus)
    h.install_cleanup()
    prefix = h.priority_prefix(a.nice)
    work = tempfile.mkdtemp(prefix="quiver-batching-bench.")
    try:
        return run(a, prefix, pathlib.Path(work))
    finally:
        h.stop_all()
        shutil.rmtree(work, ignore_errors=True)


def run(a, prefix, work):
    load_before = h.loadavg()
    busy = h.cpu_busy()
    start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    h.note(PROG, f"{start}; {h.machine()}; load average {load_before}; busy {busy}")

    # The XGBoost model: 100 trees over 20 features, else one is generated.
    model_note = ""
    model_file = pathlib.Path(a.xgb_model).resolve()
    desc = None
    if model_file.exists():
        p = subprocess.run([PY, str(INPROC), "describe", "--model", str(model_file)],
                           capture_output=True, text=True)
        desc = json.loads(p.stdout) if p.returncode == 0 else None
    if not desc or desc["trees"] != 100 or desc["features"] != 20:
        made = work / "generated-regressor.json"
        subprocess.run([PY, str(INPROC), "make", "--out", str(made)], check=True)
        model_note = (f"{model_file} is {'missing' if not desc else str(desc['trees']) + ' trees / ' + str(desc['features']) + ' features'}; "
                      f"generated a 100-tree, 20-feature, depth-6 regressor with python3-xgboost instead")
        model_file = made
        desc = json.loads(subprocess.run([PY, str(INPROC), "describe", "--model", str(made)],
                                         capture_output=True, text=True, check=True).stdout)
    else:
        model_note = f"{model_file} ({desc['trees']} trees, {desc['features']} features, checked)"
    h.note(PROG, f"XGBoost model: {model_note}; xgboost {desc['xgboost']}")

    repo = work / "repo"
    write_repo(repo, a, model_file)
    server_args = ["--workers", "1", "--builtin-models", "none", "--model-repository", str(repo)]
    server = h.Server(a.quiver, server_args, a.server_cpus, prefix, work, grpc=False)
    h.note(PROG, f"server pid {server.pid}: HTTP {server.http}")
    configs = {d.name: (d / "config.yaml").read_text() for d in sorted(repo.iterdir())}

    sleep_on = f"sleep-b{a.max_batch}"
    xgb_on = [f"xgb-b{a.max_batch}-d{d}" for d in a.xgb_delays]
    # ("server", model, concurrency), ("inproc", batch) or ("timer", delay µs)
    cases = [("server", "sleep-off", a.sleep_concurrency),
             ("server", sleep_on, a.sleep_concurrency)]
    for c in a.xgb_conc:
        cases.append(("server", "xgb-off", c))
        for m in xgb_on:
            cases.append(("server", m, c))
    for b in a.inproc:
        cases.append(("inproc", b))
    for d in a.xgb_delays:
        if d > 0:
            cases.append(("timer", d))

    def one(case, window_ms):
        if case[0] == "inproc":
            return inprocess(a, model_file, case[1], 3 * window_ms / 1000, prefix)
        if case[0] == "timer":
            return timer_lateness(a, case[1], 3 * window_ms / 1000, prefix)
        _, model, c = case
        t_before, w0 = server.threads(), time.monotonic()
        r = h.run_quiver_bench(a.quiver, server, model, c, window_ms, 3, a.client_cpus, prefix,
                               str(work), binary=(a.encoding == "binary" and model.startswith("xgb")))
        t_after, w1 = server.threads(), time.monotonic()
        deltas = sorted(((t_after[t][1] - t_before[t][1]) for t in t_after if t in t_before),
                        reverse=True)
        r["busiest"] = deltas[0] / (w1 - w0) if deltas else float("nan")
        return r

    h.note(PROG, f"warm-up: {len(cases)} cases x 3 x 300 ms")
    for case in cases:
        one(case, 300)
    results = {case: [] for case in cases}
    for rep in range(a.repeats):
        for case in h.rotated(cases, rep):
            r = one(case, a.window_ms)
            results[case].append(r)
            if case[0] == "timer":
                h.note(PROG, f"round {rep + 1}/{a.repeats} timer {case[1]} µs: late p50 "
                             f"{r['p50_us']:.0f} p99 {r['p99_us']:.0f} µs ({r['waits']} waits)")
            elif case[0] == "inproc":
                h.note(PROG, f"round {rep + 1}/{a.repeats} in-process batch {case[1]:<3} "
                             f"{r['calls_s']:9.1f} calls/s {r['rows_s']:9.0f} rows/s "
                             f"{r['cpu_us']:7.1f} CPU µs/call (CPU {100 * r['cpu_share']:.0f}%)")
            else:
                h.note(PROG, f"round {rep + 1}/{a.repeats} {case[1]:<14} c={case[2]:<3} "
                             f"{r['rps']:9.1f} req/s p50 {r['p50']:8.0f} p99 {r['p99']:8.0f} µs "
                             f"server {r['server_us']:7.1f} µs/req busiest {100 * r['busiest']:.0f}% "
                             f"errors {r['errors']}")

    # Executed batch sizes, in extra runs after the measured ones.
    batch_sizes = {}
    trace_note = "off (--trace-batches off)"
    if a.trace_batches != "off":
        tracer = BatchTracer(a.quiver)
        if not tracer.ok:
            trace_note = f"not available ({tracer.why})"
            if a.trace_batches == "on":
                raise SystemExit(f"{PROG}: --trace-batches on: {tracer.why}")
        else:
            trace_note = ("uprobe on quiver::ExecuteBatch, one extra run per batching case "
                          "after the measured rounds")
            for case in cases:
                if case[0] == "server" and case[1] != "sleep-off" and case[1] != "xgb-off":
                    tracer.start()
                    r = one(case, a.window_ms)
                    sizes, lost = tracer.stop(set(server.threads()))
                    batch_sizes[case] = (sizes, lost, r)
                    h.note(PROG, f"trace {case[1]} c={case[2]}: {len(sizes)} executions, "
                                 f"mean {sum(sizes) / max(1, len(sizes)):.1f} items, lost {lost}")
            tracer.remove()
    load_after = h.loadavg()
    server.stop()
    return report(a, cases, results, batch_sizes, trace_note, configs, server_args, model_note,
                  desc, start, load_before, load_after, busy, sleep_on, xgb_on)


def batch_summary(case, batch_sizes):
    if case not in batch_sizes:
        return "–", None
    sizes, lost, _ = batch_sizes[case]
    if not sizes:
        return "none traced", None
    cnt = collections.Counter(sizes)
    mean = sum(sizes) / len(sizes)
    top = max(sizes)
    ones = cnt[1] / len(sizes)
    full = cnt[top] / len(sizes)
    rows_full = cnt[top] * top / sum(sizes)
    shares = f"{100 * ones:.0f}% of 1" + (f", {100 * full:.0f}% of {top}" if top > 1 else "")
    text = (f"{mean:.1f} ({len(sizes)} executions: {shares}"
            + (f"; {100 * rows_full:.0f}% of rows in batches of {top}" if top > 1 else "") + ")"
            + (f", {lost} events lost" if lost else ""))
    return text, mean


def report(a, cases, results, batch_sizes, trace_note, configs, server_args, model_note, desc,
           start, load_before, load_after, busy, sleep_on, xgb_on):
    med = lambda case, k: h.median([r[k] for r in results[case]])  # noqa: E731
    errors = sum(r.get("errors", 0) for rs in results.values() for r in rs)
    cmd = " ".join(["bench/batching_bench.py"] + sys.argv[1:])
    out = [f"### Run of {start}\n"]
    out.append(f"- Command: `/usr/bin/python3 {cmd}` ({a.repeats} rounds, 3 x {a.window_ms} ms "
               f"windows per case, round-robin, nice {a.nice})")
    out.append(f"- Machine: {h.machine()}; load average before {load_before}, after "
               f"{load_after}; CPUs busy just before: {busy}")
    out.append(f"- quiver: {h.binary_facts(a.quiver)}; checkout commit {h.commit()}")
    out.append(f"- Server: `quiver serve {' '.join(server_args[:-1])} <repo> --enable-grpc false` "
               f"pinned to CPU {a.server_cpus}; `quiver bench` (one thread, REST "
               f"{'binary' if a.encoding == 'binary' else 'JSON'} for XGBoost, JSON for sleep) "
               f"pinned to CPU {a.client_cpus}; in-process baseline pinned to CPU {a.server_cpus}")
    out.append(f"- XGBoost model: {model_note}; xgboost {desc['xgboost']}")
    out.append(f"- Executed batch sizes: {trace_note}")
    out.append("- Model configs: " + "; ".join(
        f"`{n}`: `{c.strip().replace(chr(10), ' ')}`" for n, c in configs.items()))
    out.append("")

    # Sleep.
    off = ("server", "sleep-off", a.sleep_concurrency)
    on = ("server", sleep_on, a.sleep_concurrency)
    ideal = min(a.max_batch, a.sleep_concurrency)
    rows = []
    for case, label in ((off, "off"), (on, f"max_batch_size {a.max_batch}, delay {a.sleep_delay_us} µs")):
        rs = results[case]
        lo, hi = h.spread([r["rps"] for r in rs])
        rows.append([label, case[2], h.fmt(med(case, "rps"), 1), f"{h.fmt(lo, 1)}–{h.fmt(hi, 1)}",
                     h.fmt(med(case, "p50")), h.fmt(med(case, "p99")),
                     h.fmt(med(case, "server_us"), 1), f"{100 * med(case, 'busiest'):.0f}%",
                     batch_summary(case, batch_sizes)[0], sum(r["errors"] for r in rs)])
    out.append(f"`sleep` model, {a.sleep_us} µs per execution, 1 instance, FP32 [1,1] requests "
               "over REST JSON:\n")
    out.append(h.table(["batching", "conc.", "req/s (median)", "min–max", "p50 µs", "p99 µs",
                        "server CPU µs/req", "busiest thread", "mean executed batch", "errors"],
                       rows, "lrrrrrrrlr"))
    gain = med(on, "rps") / med(off, "rps")
    per_round = [r_on["rps"] / r_off["rps"] for r_on, r_off in zip(results[on], results[off])]
    verdict = "met" if gain / ideal >= 0.8 else "**not met**"
    out.append("")
    out.append(f"- Gain (req/s on ÷ off, medians): **{gain:.1f}×**; per round "
               f"{', '.join(f'{g:.1f}' for g in per_round)}. Ideal: min({a.max_batch}, "
               f"{a.sleep_concurrency}) = {ideal}× (one instance, fixed execution time). "
               f"Achieved ÷ ideal = **{gain / ideal:.2f}** — target ≥ 0.8: {verdict}.")
    out.append(f"- Upper bound from the execution time alone: 1 ÷ {a.sleep_us} µs = "
               f"{1e6 / a.sleep_us:.0f} executions/s, so off ≤ {1e6 / a.sleep_us:.0f} req/s and "
               f"on ≤ {ideal * 1e6 / a.sleep_us:.0f} req/s; measured off = "
               f"{med(off, 'rps'):.1f} ({100 * med(off, 'rps') * a.sleep_us / 1e6:.0f}% of its "
               f"bound), on = {med(on, 'rps'):.0f} ({100 * med(on, 'rps') * a.sleep_us / 1e6 / ideal:.0f}%).")
    out.append("")

    # XGBoost, server.
    rows = []
    for c in a.xgb_conc:
        for m in ["xgb-off"] + xgb_on:
            case = ("server", m, c)
            rs = results[case]
            lo, hi = h.spread([r["rps"] for r in rs])
            label = "off" if m == "xgb-off" else f"max_batch_size {a.max_batch}, delay {m.split('-d')[1]} µs"
            rows.append([label, c, h.fmt(med(case, "rps")), f"{h.fmt(lo)}–{h.fmt(hi)}",
                         h.fmt(med(case, "p50")), h.fmt(med(case, "p99")),
                         h.fmt(med(case, "server_us"), 1), f"{100 * med(case, 'busiest'):.0f}%",
                         "1 (no batching)" if m == "xgb-off" else batch_summary(case, batch_sizes)[0],
                         sum(r["errors"] for r in rs)])
    out.append(f"XGBoost regressor ({desc['trees']} trees, {desc['features']} features), "
               f"instance_count 1, nthread 1; one row per request over REST "
               f"{'binary' if a.encoding == 'binary' else 'JSON'} (req/s = rows/s):\n")
    out.append(h.table(["batching", "conc.", "req/s (median)", "min–max", "p50 µs", "p99 µs",
                        "server CPU µs/req", "busiest thread", "mean executed batch", "errors"],
                       rows, "lrrrrrrrlr"))
    out.append("")
    # In-process.
    rows = []
    for b in a.inproc:
        case = ("inproc", b)
        rs = results[case]
        lo, hi = h.spread([r["rows_s"] for r in rs])
        rows.append([b, h.fmt(med(case, "calls_s")), h.fmt(med(case, "rows_s")),
                     f"{h.fmt(lo)}–{h.fmt(hi)}", h.fmt(med(case, "wall_us"), 1),
                     h.fmt(med(case, "cpu_us"), 1), h.fmt(med(case, "cpu_us") / b, 2),
                     f"{100 * med(case, 'cpu_share'):.0f}%"])
    out.append("The same model in-process (python3-xgboost's libxgboost through ctypes: "
               "XGBoosterPredictFromDense with a proxy DMatrix, nthread 1, one thread, pinned "
               f"to CPU {a.server_cpus}, {3 * a.window_ms / 1000:.0f} s per run):\n")
    out.append(h.table(["rows per call", "calls/s (median)", "rows/s (median)", "min–max",
                        "wall µs/call", "CPU µs/call", "CPU µs/row", "CPU share"], rows,
                       "rrrrrrrr"))
    out.append("")
    inp1 = ("inproc", 1)
    inpb = ("inproc", a.max_batch)
    for c in a.xgb_conc:
        o = ("server", "xgb-off", c)
        out.append(f"- c={c}, batching off: quiver {med(o, 'rps'):,.0f} rows/s = "
                   f"**{med(o, 'rps') / med(inp1, 'rows_s'):.2f}×** in-process at 1 row/call "
                   f"({med(inp1, 'rows_s'):,.0f}); server CPU per request "
                   f"{med(o, 'server_us'):.1f} µs against {med(inp1, 'cpu_us'):.1f} µs per "
                   f"in-process call ({med(inp1, 'cpu_us') / med(o, 'server_us'):.2f}× efficiency)")
        for m in xgb_on:
            n = ("server", m, c)
            tr = batch_summary(n, batch_sizes)[1]
            out.append(f"- c={c}, {m}: {med(n, 'rps'):,.0f} rows/s = "
                       f"**{med(n, 'rps') / med(o, 'rps'):.2f}×** batching off, "
                       f"{med(n, 'rps') / med(inpb, 'rows_s'):.2f}× in-process at "
                       f"{a.max_batch} rows/call ({med(inpb, 'rows_s'):,.0f} rows/s)"
                       + (f"; mean executed batch {tr:.1f}" if tr else ""))
    out.append("")

    # p99 bound.
    rows = []
    exec_sleep = a.sleep_us
    rows.append(["sleep", sleep_on, a.sleep_concurrency,
                 f"{h.fmt(med(on, 'p50'))} / {h.fmt(med(off, 'p50'))}", h.fmt(med(on, "p99")),
                 f"{a.sleep_delay_us} + {exec_sleep} + {h.fmt(med(off, 'p99'))} = "
                 f"{h.fmt(a.sleep_delay_us + exec_sleep + med(off, 'p99'))}",
                 "yes" if med(on, "p99") <= a.sleep_delay_us + exec_sleep + med(off, "p99") else "**no**"])
    exec_xgb = med(inpb, "wall_us")
    for c in a.xgb_conc:
        o = ("server", "xgb-off", c)
        for m in xgb_on:
            n = ("server", m, c)
            d = int(m.split("-d")[1])
            bound = d + exec_xgb + med(o, "p99")
            rows.append(["xgboost", m, c, f"{h.fmt(med(n, 'p50'))} / {h.fmt(med(o, 'p50'))}",
                         h.fmt(med(n, "p99")),
                         f"{d} + {exec_xgb:.0f} + {h.fmt(med(o, 'p99'))} = {h.fmt(bound)}",
                         "yes" if med(n, "p99") <= bound else "**no**"])
    out.append("p99 latency with batching against max_queue_delay + one execution (sleep: "
               f"{a.sleep_us} µs; XGBoost: the in-process wall time of a {a.max_batch}-row call, "
               f"median) + p99 without batching at the same concurrency, all µs, medians:\n")
    out.append(h.table(["model", "config", "conc.", "p50 with / without batching",
                        "p99 with batching", "bound", "holds"], rows, "llrrrrl"))
    out.append("")
    for d in a.xgb_delays:
        t = ("timer", d)
        if t not in results:
            continue
        out.append(f"- Control (`bench/lib/timer_lateness.py`): a bare {d} µs timed wait (futex, "
                   f"absolute deadline, 1 µs timer slack: what the instance thread waits with), "
                   f"pinned to CPU {a.server_cpus} at the same nice, woke "
                   f"p50 {med(t, 'p50_us'):.0f} µs, p90 {med(t, 'p90_us'):.0f} µs, "
                   f"p99 {med(t, 'p99_us'):.0f} µs late (medians over rounds; p99 per round "
                   f"{', '.join('%.0f' % r['p99_us'] for r in results[t])}; "
                   f"{h.fmt(med(t, 'waits'))} waits per run). Every request delayed by "
                   f"{d} µs carries this on top of the bound's terms.")
    out.append("")
    unstable = sum(not r.get("stable", True) for rs in results.values() for r in rs)
    out.append(f"- Errors: {errors} failed requests"
               + ("." if not errors else " — those figures are not valid."))
    out.append(f"- Runs not stable within 10% over their 3 windows: {unstable} of "
               f"{sum(len(v) for k, v in results.items() if k[0] == 'server')} (reported anyway)")
    text = "\n".join(out) + "\n"
    print(text)
    if a.markdown:
        pathlib.Path(a.markdown).write_text(text)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
