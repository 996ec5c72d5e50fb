#!/usr/bin/python3
"""`quiver up` (issue #8): cold start, the first request to a revision at zero replicas until its
response, for an XGBoost and a scikit-learn model whose files are already local (the model
cache case: a local-path storageUri, nothing to download).

One daemon (`quiver up`, state in a temp dir, --stable-window 6s, --scale-to-zero-grace-period
1s, --autoscaler-tick 500ms so that an idle revision reaches zero about 7 s after its last
request) runs two InferenceServices with minReplicas 0: examples/models/xgboost-iris (modelFormat
xgboost) and examples/models/sklearn-iris (modelFormat sklearn). Each cycle waits until both
revisions are at zero (no child process of the daemon has --model_name=NAME in its command line
and the API lists no replica), then for each model (the order alternates between cycles) times
one V1 :predict request through the gateway (Host header form, a new TCP connection) from send
to the end of the response, and then --warm requests the same way to the replica it started.

The cold start is split with the millisecond timestamps of the daemon's log and the replica's
log (same wall clock): send → autoscaler decides 1 replica (the activator's poke) → reconciler
starts the process → replica's HTTP server listening → model READY → daemon's readiness probe
marks it Ready → response received (the gateway releases the held request; inference; reply).

Usage: /usr/bin/python3 bench/coldstart_bench.py [--quiver build/bin/quiver] [--runs-xgboost 20]
       [--runs-sklearn 10] [--warm 5] [--nice 0] [--json out.json] [--keep]
"""
import argparse
import datetime
import http.client
import json
import os
import pathlib
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "lib"))
import bench_harness as h  # noqa: E402

PROG = "coldstart_bench"
ROOT = h.ROOT
EXAMPLES = ROOT / "examples" / "models"
IRIS_ROW = [6.8, 2.8, 4.8, 1.4]
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}) (\w) (.*)$")


def log_time(stamp):
    """spdlog's local-time stamp (millisecond resolution) as a Unix time."""
    return datetime.datetime.fromisoformat(stamp).timestamp()


def read_log(path):
    """[(unix time, level, message)] of a quiver log file; lines without a stamp are skipped."""
    out = []
    try:
        text = pathlib.Path(path).read_text(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        m = LOG_LINE.match(line)
        if m:
            out.append((log_time(m.group(1)), m.group(2), m.group(3)))
    return out


def isvc_yaml(name, model_format, storage_uri, annotations=None, predictor_extra=""):
    meta = ""
    if annotations:
        meta = "\n  annotations:" + "".join(f'\n    {k}: "{v}"' for k, v in annotations.items())
    return (f"apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n"
            f"  name: {name}{meta}\nspec:\n  predictor:{predictor_extra}\n    model:\n"
            f"      modelFormat:\n        name: {model_format}\n"
            f"      storageUri: {storage_uri}\n")


class UpDaemon:
    """A `quiver up` with its API and gateway on port 0 and its state in `state_dir`; its
    stdout and stderr go to state_dir/daemon.log. Stopped with SIGTERM (which drains and stops
    its replicas) by bench_harness.stop_all at exit."""

    def __init__(self, quiver, state_dir, extra=(), timeout=60, prefix=()):
        self.quiver = quiver
        self.state_dir = pathlib.Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.state_dir / "daemon.log"
        self.command = [quiver, "up", "--state-dir", str(self.state_dir), "--api-port", "0",
                        "--gateway-port", "0", *extra]
        # `nice` execs quiver, so proc.pid is the daemon's pid (its replicas are its children).
        self.proc_command = [*prefix, *self.command]
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.proc_command, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        h._started.append(self.proc)
        deadline = time.time() + timeout
        text = ""
        while time.time() < deadline:
            text = self.log_path.read_text(errors="replace")
            api = re.search(r"API listening on (http://\S+)", text)
            gw = re.search(r"gateway listening on http://[^ ]+:(\d+)", text)
            if api and gw:
                self.api = api.group(1)
                self.gateway_port = int(gw.group(1))
                break
            if self.proc.poll() is not None:
                h.die(PROG, f"quiver up exited ({self.proc.returncode}):\n{text}")
            time.sleep(0.05)
        else:
            h.die(PROG, f"quiver up did not start in {timeout} s:\n{text}")
        self.gateway = f"http://127.0.0.1:{self.gateway_port}"
        self.env = {**os.environ, "QUIVER_STATE_DIR": str(self.state_dir)}

    @property
    def log(self):
        return self.log_path.read_text(errors="replace")

    def cli(self, *args, input=None):
        p = subprocess.run([self.quiver, *args], input=input, capture_output=True, text=True,
                           env=self.env, timeout=120)
        if p.returncode != 0:
            h.die(PROG, f"quiver {' '.join(args)} failed ({p.returncode}): {p.stdout}{p.stderr}")
        return p.stdout

    def get(self, path):
        with urllib.request.urlopen(self.api + path, timeout=10) as r:
            return json.loads(r.read())

    def isvc_path(self, name, ns="default"):
        return f"/apis/serving.kserve.io/v1beta1/namespaces/{ns}/inferenceservices/{name}"

    def ready(self, name):
        doc = self.get(self.isvc_path(name))
        return any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in doc.get("status", {}).get("conditions", []))

    def wait_ready(self, name, timeout=180):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.ready(name):
                return
            time.sleep(0.1)
        h.die(PROG, f"{name} not Ready in {timeout} s\n--- daemon log ---\n{self.log[-4000:]}")

    def api_replicas(self, name):
        """The replicas the API lists for a service's revisions: [(revision, state)]."""
        revs = self.get(self.isvc_path(name) + "/revisions")["items"]
        return [(rev["name"], r["state"]) for rev in revs for r in rev.get("replicas", [])]

    def replica_pids(self, name):
        """The daemon's child processes serving model `name` (the cheapest exact signal: the
        process is gone once the replica has stopped; a zombie has an empty cmdline)."""
        pids = []
        try:
            tasks = list(pathlib.Path(f"/proc/{self.proc.pid}/task").iterdir())
        except OSError:
            return pids
        for task in tasks:
            try:
                pids += [int(p) for p in (task / "children").read_text().split()]
            except OSError:
                pass
        out = []
        for p in pids:
            try:
                cmd = pathlib.Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"--model_name={name}".encode() in cmd:
                out.append(p)
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc in h._started:
            h._started.remove(self.proc)
        self._log.close()


def predict(port, name, timeout=60):
    """One V1 :predict through the gateway on a new connection: (status, body, send wall time,
    seconds from send to the end of the response)."""
    body = json.dumps({"instances": [IRIS_ROW]}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    sent = time.time()
    t0 = time.perf_counter()
    try:
        conn.request("POST", f"/v1/models/{name}:predict", body=body,
                     headers={"Host": f"{name}.default.example.com",
                              "Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        took = time.perf_counter() - t0
        return r.status, data.decode(errors="replace"), sent, took
    except (OSError, http.client.HTTPException) as e:
        return 0, f"{type(e).__name__}: {e}", sent, time.perf_counter() - t0
    finally:
        conn.close()


def wait_zero(daemon, names, timeout=90):
    """Until no replica process runs for any of `names` and the API lists none."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not any(daemon.replica_pids(n) for n in names):
            if not any(daemon.api_replicas(n) for n in names):
                return
        time.sleep(0.05)
    h.die(PROG, f"{names} not at zero replicas in {timeout} s\n--- daemon log ---\n"
                f"{daemon.log[-4000:]}")


def split(daemon, name, sent, received):
    """The cold start's phases (ms) from the daemon's and the replica's logs, or None for a
    phase whose line was not found. Stamps are truncated to the ms, so each phase is ±1 ms."""
    since = sent - 0.002
    d = [e for e in read_log(daemon.log_path) if e[0] >= since]

    def first(entries, pattern):
        rx = re.compile(pattern)
        for t, _, msg in entries:
            m = rx.search(msg)
            if m:
                return t, m
        return None, None

    # The revision was at zero before the request: its next non-zero decision is the poke's.
    decide, _ = first(d, rf"^autoscaler default/{name}/\S+: [1-9]\d* replica\(s\)")
    started, m = first(d, rf"^InferenceService/default/{name} ReplicaStarted: .* log (\S+)$")
    ready, _ = first(d, rf"^InferenceService/default/{name} ReplicaReady:")
    listening = model_ready = answered = None
    load_ms = None
    if m:
        r = [e for e in read_log(m.group(1)) if e[0] >= since]
        listening, _ = first(r, r"HTTP server listening on")
        model_ready, lm = first(r, rf"model '{name}' READY .*loaded in ([\d.]+) ms")
        load_ms = float(lm.group(1)) if lm else None
        answered, _ = first(r, rf"access .*method=POST path=/v1/models/{name}:predict "
                               rf"status=200")

    def ms(a, b):
        return (b - a) * 1000 if a is not None and b is not None else None

    return {"activate": ms(sent, decide), "spawn": ms(decide, started),
            "boot": ms(started, listening), "load": ms(listening, model_ready),
            "probe": ms(model_ready, ready), "forward": ms(ready, received),
            "replica_answered_after_ready": ms(ready, answered), "model_load_ms": load_ms}


def p90(values):
    """90th percentile, linear interpolation between order statistics (inclusive method)."""
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=10, method="inclusive")[8]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quiver", default=h.DEFAULT_QUIVER)
    ap.add_argument("--runs-xgboost", type=int, default=20)
    ap.add_argument("--runs-sklearn", type=int, default=10)
    ap.add_argument("--warm", type=int, default=5, help="warm requests after each cold one")
    ap.add_argument("--json", help="also write every measurement to this file")
    ap.add_argument("--keep", action="store_true", help="keep the state dir (logs) afterwards")
    ap.add_argument("--nice", type=int, default=0,
                    help="run the daemon (and so its replicas) and this client at this nice "
                         "level; negative levels need root and shield the measurement from "
                         "other work on the machine")
    args = ap.parse_args()
    if not os.access(args.quiver, os.X_OK):
        h.die(PROG, f"--quiver {args.quiver}: not an executable file")
    if args.runs_xgboost < 1 or args.runs_sklearn < 0 or args.warm < 0:
        h.die(PROG, "--runs-xgboost must be >= 1, --runs-sklearn and --warm >= 0")
    h.install_cleanup()
    try:
        prefix = h.priority_prefix(args.nice)
    except SystemExit as e:
        h.die(PROG, f"--nice {args.nice}: {e}")

    started_at = datetime.datetime.now(datetime.timezone.utc)
    load_before = h.loadavg()
    work = pathlib.Path(tempfile.mkdtemp(prefix="quiver-coldstart-"))
    daemon = UpDaemon(args.quiver, work / "state",
                      ["--stable-window", "6s", "--scale-to-zero-grace-period", "1s",
                       "--autoscaler-tick", "500ms"], prefix=prefix)
    if args.nice:
        # The client too (after the daemon: `nice -n` is relative to this process's level).
        os.nice(args.nice)
    models = {"cs-xgboost": ("xgboost", EXAMPLES / "xgboost-iris", args.runs_xgboost),
              "cs-sklearn": ("sklearn", EXAMPLES / "sklearn-iris", args.runs_sklearn)}
    models = {k: v for k, v in models.items() if v[2] > 0}
    for name, (fmt, path, _) in models.items():
        daemon.cli("apply", "-f", "-",
                   input=isvc_yaml(name, fmt, path, predictor_extra="\n    minReplicas: 0"))
    for name in models:
        daemon.wait_ready(name)
        # The first request also warms the page cache for the runtime's shared libraries.
        status, text, _, _ = predict(daemon.gateway_port, name)
        if status != 200:
            h.die(PROG, f"{name}: first request failed ({status}): {text}")
    h.note(PROG, f"daemon up ({daemon.gateway}); cycles of ~7 s: at zero → one cold request "
                 f"per model → {args.warm} warm")

    cold = {n: [] for n in models}
    warm = {n: [] for n in models}
    splits = {n: [] for n in models}
    failures = []
    cycle = 0
    while any(len(cold[n]) < models[n][2] for n in models):
        pending = [n for n in models if len(cold[n]) < models[n][2]]
        pending = h.rotated(pending, cycle)
        wait_zero(daemon, list(models))
        time.sleep(0.2)  # let the stopped replica's teardown finish before timing
        for name in pending:
            status, text, sent, took = predict(daemon.gateway_port, name)
            if status != 200 or "predictions" not in text:
                failures.append((name, "cold", status, text))
                if len(failures) >= 5:
                    h.die(PROG, f"{len(failures)} failed requests, the last: {failures[-1]}\n"
                                f"--- daemon log ---\n{daemon.log[-4000:]}", code=1)
                continue
            received = sent + took
            cold[name].append(took * 1000)
            for _ in range(args.warm):
                s2, t2, _, took2 = predict(daemon.gateway_port, name)
                if s2 != 200:
                    failures.append((name, "warm", s2, t2))
                else:
                    warm[name].append(took2 * 1000)
            time.sleep(0.05)  # the replica's access log line is written asynchronously
            splits[name].append(split(daemon, name, sent, received))
            shown = {k: round(v, 1) for k, v in splits[name][-1].items() if v is not None}
            h.note(PROG, f"{name} cold #{len(cold[name])}: {took * 1000:.1f} ms "
                         f"{json.dumps(shown)}")
        cycle += 1
    load_after = h.loadavg()
    daemon.stop()

    print(f"Cold start through `quiver up`'s gateway (first request at zero replicas → "
          f"response), {started_at:%Y-%m-%d %H:%M} UTC")
    print(f"Machine: {h.machine()}; load average before {load_before}, after {load_after}")
    print(f"Binary: {h.binary_facts(args.quiver)}")
    print(f"Command: /usr/bin/python3 bench/coldstart_bench.py {' '.join(sys.argv[1:])}")
    print(f"Daemon: {' '.join(daemon.command[1:])}"
          f"{f' at nice {args.nice} (client too)' if args.nice else ''}\n")
    rows = []
    for name, (fmt, _, _) in models.items():
        c, w = cold[name], warm[name]
        if not c:
            rows.append([fmt, 0] + ["–"] * 7)
            continue
        rows.append([fmt, len(c), h.fmt(statistics.median(c), 1), h.fmt(p90(c), 1),
                     h.fmt(min(c), 1), h.fmt(max(c), 1), len(w),
                     h.fmt(statistics.median(w), 2) if w else "–",
                     h.fmt(p90(w), 2) if w else "–"])
    print(h.table(["model", "cold runs", "cold median ms", "cold p90 ms", "cold min ms",
                   "cold max ms", "warm requests", "warm median ms", "warm p90 ms"], rows))
    print("\nCold start split, median ms (from the daemon's and the replica's log stamps, ±1 ms "
          "each):\n")
    phases = [("activate", "send → autoscaler decides (activator poke)"),
              ("spawn", "decision → process started"),
              ("boot", "started → replica HTTP listening"),
              ("load", "listening → model READY"),
              ("probe", "model READY → daemon marks Ready"),
              ("forward", "Ready → response received")]
    header = ["phase"] + [models[n][0] for n in models]
    prow = []
    for key, label in phases:
        row = [f"{label}"]
        for name in models:
            vals = [s[key] for s in splits[name] if s[key] is not None]
            row.append(f"{h.fmt(statistics.median(vals), 1)} ({len(vals)})" if vals else "–")
        prow.append(row)
    row = ["model load as the replica reports it"]
    for name in models:
        vals = [s["model_load_ms"] for s in splits[name] if s["model_load_ms"] is not None]
        row.append(h.fmt(statistics.median(vals), 1) if vals else "–")
    prow.append(row)
    print(h.table(header, prow))
    print("\n(n) = runs in which both log lines of the phase were found.")
    if failures:
        print(f"\n{len(failures)} failed request(s):")
        for f in failures[:10]:
            print(f"  {f}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(
            {"started": started_at.isoformat(), "load_before": load_before,
             "load_after": load_after, "cold_ms": cold, "warm_ms": warm, "splits": splits,
             "failures": failures, "daemon": daemon.command}, indent=1))
    if args.keep:
        h.note(PROG, f"state and logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
