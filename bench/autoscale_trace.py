#!/usr/bin/python3
"""`quiver up` (issue #8): a trace of replica count against offered load for a load step, to
show the autoscaler's stable and panic modes (Knative KPA semantics).

One daemon (`quiver up`, state in a temp dir, --autoscaler-tick 2s as Knative's decider) runs
one XGBoost InferenceService (examples/models/xgboost-iris) with the annotations
autoscaling.knative.dev/target (default 2, so 1.4 requests in flight per replica at the default
70% utilisation) and autoscaling.knative.dev/window (default 60s, Knative's stable window; the
panic window is 10% of it), and maxReplicas (default 8). The offered load is a closed loop from
`quiver bench` at a fixed concurrency per phase (default 1 for 20 s, 12 for 75 s, 1 for 80 s),
one `quiver bench` per phase with 1 s windows (-p 1000 -r SECONDS -s 0.01: it runs every
window), through the gateway's path form.

Recorded every second: the offered concurrency, the throughput of the bench window that ended
in that second, the replica processes (children of the daemon with --model_name=NAME, sampled
at 5 Hz), the replicas the API lists as Ready, and the autoscaler's last decision (from its log
line "autoscaler KEY: N replica(s) (REASON)", written when the count changes). Panic mode
starts at the first decision whose reason says "panic" and ends at the next decision that does
not; when the trace ends still in panic, its end is taken from the last "panic until X from now"
and marked as estimated.

Writes docs/images/autoscale_trace.png and docs/images/autoscale_trace.csv (--out-dir) and
prints a summary with the autoscaler's decisions for docs/benchmarks.md.

Usage: /usr/bin/python3 bench/autoscale_trace.py [--quiver build/bin/quiver]
       [--phases 1:20,12:75,1:80] [--target 2] [--window 60s] [--max-replicas 8]
       [--tick 2s] [--out-dir docs/images] [--keep]
"""
import argparse
import csv
import datetime
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "lib"))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import bench_harness as h  # noqa: E402
from coldstart_bench import UpDaemon, isvc_yaml, read_log  # noqa: E402

PROG = "autoscale_trace"
ROOT = h.ROOT
MODEL_DIR = ROOT / "examples" / "models" / "xgboost-iris"
WINDOW_LINE = re.compile(r"\[concurrency (\d+)\] window (\d+): ([\d.]+) infer/s, avg (\d+) µs, "
                         r"p99 (\d+) µs, errors (\d+)")
DECISION = re.compile(r"^autoscaler (\S+): (\d+) replica\(s\) \((.*)\)$")
# "panic until 58s from now" / "panic for 3.999s more": when panic mode ends unless extended.
PANIC_UNTIL = re.compile(r"panic (?:until|for) (\S+) (?:from now|more)")
SAMPLE_HZ = 5


def parse_phases(text):
    phases = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+):(\d+)\s*", part)
        if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
            h.die(PROG, f"--phases: '{part}' is not CONCURRENCY:SECONDS with both >= 1 "
                        f"(e.g. 1:20,12:75,1:80)")
        phases.append((int(m.group(1)), int(m.group(2))))
    return phases


def parse_duration(text):
    """FormatDuration's output ('850ms', '58.200s', '1m2s') in seconds, or None."""
    m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:([\d.]+)s)?", text)
    if text.endswith("ms") and re.fullmatch(r"\d+ms", text):
        return int(text[:-2]) / 1000
    if not m or not text:
        return None
    hours, minutes, seconds = m.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


class Sampler(threading.Thread):
    """Samples the replica processes and the API's Ready replicas at SAMPLE_HZ until stopped."""

    def __init__(self, daemon, name):
        super().__init__(daemon=True)
        self.d = daemon
        self.name = name
        self.samples = []  # (unix time, processes, ready)
        self.stop_event = threading.Event()

    def run(self):
        while not self.stop_event.is_set():
            t = time.time()
            procs = len(self.d.replica_pids(self.name))
            try:
                ready = sum(1 for _, state in self.d.api_replicas(self.name) if state == "Ready")
            except OSError:
                ready = -1
            self.samples.append((t, procs, ready))
            self.stop_event.wait(max(0.0, 1 / SAMPLE_HZ - (time.time() - t)))


def run_load(quiver, daemon, name, phases, work):
    """Runs the phases one after another; returns ([(start, end, concurrency)], [(unix time,
    concurrency, infer/s, avg µs, p99 µs, errors)], [bench failures])."""
    spans, windows, failures = [], [], []
    url = f"{daemon.gateway}/serving/default/{name}"
    for i, (conc, secs) in enumerate(phases):
        cmd = [quiver, "bench", "-m", name, "-u", url, "--concurrency-range", str(conc),
               "-p", "1000", "-r", str(secs), "-s", "0.01", "--metrics-url", "none",
               "--request-timeout", "60000", "--json", str(work / f"phase{i}.json")]
        start = time.time()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             bufsize=1)
        h._started.append(p)
        err_lines = []
        for line in p.stderr:
            err_lines.append(line)
            m = WINDOW_LINE.search(line)
            if m:
                windows.append((time.time(), conc, float(m.group(3)), int(m.group(4)),
                                int(m.group(5)), int(m.group(6))))
        out = p.stdout.read()
        p.wait()
        h._started.remove(p)
        spans.append((start, time.time(), conc))
        if p.returncode != 0:
            failures.append(f"phase {i + 1} (concurrency {conc}): quiver bench exit "
                            f"{p.returncode}\n{out}{''.join(err_lines[-5:])}")
    return spans, windows, failures


def decisions_of(daemon, name):
    """[(unix time, replicas, reason)] of the autoscaler's log lines for the service."""
    out = []
    for t, _, msg in read_log(daemon.log_path):
        m = DECISION.match(msg)
        if m and m.group(1).startswith(f"default/{name}/"):
            out.append((t, int(m.group(2)), m.group(3)))
    return out


def panic_spans(decisions, trace_end):
    """[(start, end, estimated)] of panic mode from the decisions' reasons. The autoscaler logs
    only when the count changes, so the end is the first later decision without panic; when
    there is none, the end the last panic decision announced (estimated)."""
    spans = []
    start = None
    last_until = None
    for t, _, reason in decisions:
        panicking = "panic" in reason
        if panicking and start is None:
            start = t
        if panicking:
            m = PANIC_UNTIL.search(reason)
            left = parse_duration(m.group(1)) if m else None
            last_until = t + left if left is not None else None
        if not panicking and start is not None:
            spans.append((start, t, False))
            start, last_until = None, None
    if start is not None:
        spans.append((start, last_until or trace_end, True))
    return spans


def plot(path, spans, samples, windows, decisions, panics, t0, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(8, 5), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1]})
    lx, ly = [], []
    for s, e, c in spans:
        lx += [s - t0, e - t0]
        ly += [c, c]
    ax.fill_between(lx, ly, color="0.85", lw=0, label="offered load (requests in flight)")
    st = [s[0] - t0 for s in samples]
    ax.step(st, [s[1] for s in samples], where="post", color="tab:blue", lw=2,
            label="replica processes")
    ax.step(st, [max(0, s[2]) for s in samples], where="post", color="tab:green", lw=1.2,
            ls="--", label="replicas Ready")
    shown = [d for d in decisions if d[0] >= t0]
    ax.plot([d[0] - t0 for d in shown], [d[1] for d in shown], "o", color="tab:orange", ms=4,
            label="autoscaler decision")
    top = max(ly + [s[1] for s in samples] + [1]) * 1.45
    ax.set_ylim(0, top)
    for start, end, estimated in panics:
        ax.axvspan(start - t0, end - t0, color="tab:red", alpha=0.10, lw=0)
        ax.axvline(start - t0, color="tab:red", lw=0.8)
        ax.axvline(end - t0, color="tab:red", lw=0.8, ls=":" if estimated else "-")
        ax.text(start - t0 + 0.5, top * 0.97, "panic mode\nstarts", color="tab:red", va="top",
                fontsize=8)
        ax.text(end - t0 + 0.5, top * 0.80,
                "panic ends" + (" (estimated)" if estimated else "") + "\n→ stable mode",
                color="tab:red", va="top", fontsize=8)
    ax.set_ylabel("requests in flight / replicas")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper right", fontsize=7, framealpha=0.9, ncol=2)
    ax.grid(alpha=0.3)
    # A bench window's throughput is drawn at the middle of its second.
    ax2.plot([w[0] - t0 - 0.5 for w in windows], [w[2] for w in windows], color="0.3", lw=1)
    ax2.set_ylabel("req/s")
    ax2.set_xlabel("seconds since the load started")
    ax2.grid(alpha=0.3)
    ax2.set_ylim(bottom=0)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quiver", default=h.DEFAULT_QUIVER)
    ap.add_argument("--phases", default="1:20,12:75,1:80",
                    help="CONCURRENCY:SECONDS,... run one after another")
    ap.add_argument("--target", default="2", help="autoscaling.knative.dev/target")
    ap.add_argument("--window", default="60s",
                    help="autoscaling.knative.dev/window (stable window; panic is 10%% of it)")
    ap.add_argument("--max-replicas", type=int, default=8)
    ap.add_argument("--tick", default="2s", help="quiver up --autoscaler-tick")
    ap.add_argument("--out-dir", default=str(ROOT / "docs" / "images"))
    ap.add_argument("--name", default="trace", help="InferenceService name")
    ap.add_argument("--keep", action="store_true", help="keep the state dir (logs) afterwards")
    args = ap.parse_args()
    phases = parse_phases(args.phases)
    if not os.access(args.quiver, os.X_OK):
        h.die(PROG, f"--quiver {args.quiver}: not an executable file")
    if args.window and not parse_duration(args.window):
        h.die(PROG, f"--window {args.window}: expected a duration such as 60s, 6s or 1m")
    if args.max_replicas < 1:
        h.die(PROG, f"--max-replicas {args.max_replicas}: must be >= 1")
    out_dir = pathlib.Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    h.install_cleanup()

    started_at = datetime.datetime.now(datetime.timezone.utc)
    load_before = h.loadavg()
    work = pathlib.Path(tempfile.mkdtemp(prefix="quiver-autoscale-"))
    daemon = UpDaemon(args.quiver, work / "state", ["--autoscaler-tick", args.tick])
    annotations = {"autoscaling.knative.dev/target": args.target}
    if args.window:
        annotations["autoscaling.knative.dev/window"] = args.window
    name = args.name
    daemon.cli("apply", "-f", "-",
               input=isvc_yaml(name, "xgboost", MODEL_DIR, annotations,
                               f"\n    maxReplicas: {args.max_replicas}"))
    daemon.wait_ready(name)
    sampler = Sampler(daemon, name)
    sampler.start()
    total = sum(s for _, s in phases)
    h.note(PROG, f"daemon up ({daemon.gateway}); load phases {args.phases} ({total} s)")
    t0 = time.time()
    spans, windows, failures = run_load(args.quiver, daemon, name, phases, work)
    t0 = spans[0][0]  # the first quiver bench's start, a few ms after t0
    t_end = time.time()
    sampler.stop_event.set()
    sampler.join()
    load_after = h.loadavg()
    daemon.stop()
    decisions = decisions_of(daemon, name)
    panics = panic_spans(decisions, t_end)

    # One row per second since the load started: the state at that instant, and the throughput
    # of the bench window that ended in the second before it.
    rows = []
    for sec in range(int(t_end - t0) + 1):
        at = t0 + sec
        offered = next((c for s, e, c in spans if s <= at < e), 0)
        win = [w for w in windows if at - 1 < w[0] <= at]
        before = [s for s in sampler.samples if s[0] <= at]
        last = before[-1] if before else (at, 0, 0)
        dec = [d for d in decisions if d[0] <= at]
        rows.append({
            "t_s": sec,
            "offered_concurrency": offered,
            "throughput_rps": f"{win[-1][2]:.0f}" if win else "",
            "errors": sum(w[5] for w in win),
            "replica_processes": last[1],
            "ready_replicas": last[2],
            "autoscaler_replicas": dec[-1][1] if dec else "",
            "panic": int("panic" in dec[-1][2]) if dec else 0,
        })
    csv_path = out_dir / "autoscale_trace.csv"
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    png_path = out_dir / "autoscale_trace.png"
    title = (f"quiver up: xgboost-iris, autoscaling target {args.target}, window "
             f"{args.window or '60s (default)'} (panic window 10% of it), maxReplicas "
             f"{args.max_replicas}, tick {args.tick}\n"
             f"offered load, closed loop (concurrency:seconds): {args.phases}")
    plot(png_path, spans, sampler.samples, windows, decisions, panics, t0, title)

    print(f"Autoscaling trace of `quiver up`, {started_at:%Y-%m-%d %H:%M} UTC")
    print(f"Machine: {h.machine()}; load average before {load_before}, after {load_after}")
    print(f"Binary: {h.binary_facts(args.quiver)}")
    print(f"Command: /usr/bin/python3 bench/autoscale_trace.py {' '.join(sys.argv[1:])}")
    print(f"Daemon: {' '.join(daemon.command[1:])}")
    print(f"Wrote {png_path} ({png_path.stat().st_size // 1024} KB) and {csv_path}\n")
    print("Phases (time since the load started):")
    for s, e, c in spans:
        rps = [w[2] for w in windows if s <= w[0] < e + 0.5 and w[1] == c]
        print(f"  {s - t0:6.1f}–{e - t0:6.1f} s  concurrency {c:3d}  median "
              f"{h.fmt(h.median(rps))} req/s over {len(rps)} windows")
    print("\nAutoscaler decisions (log lines; time since the load started):")
    for t, n, reason in decisions:
        print(f"  {t - t0:7.1f} s  {n} replica(s)  {reason}")
    for s, e, est in panics:
        print(f"\nPanic mode: {s - t0:.1f} s → {e - t0:.1f} s"
              f"{' (estimated from the last panic-until)' if est else ''}")
    if len(spans) >= 2:
        step = spans[1][0]
        peak = max(r["ready_replicas"] for r in rows)
        first_up = next((t for t, n, _ in decisions if t >= step and n > 1), None)
        full = next((s[0] for s in sampler.samples if s[0] >= step and s[2] >= peak), None)
        if first_up:
            print(f"Step at {step - t0:.1f} s: first scale-up decision after "
                  f"{first_up - step:.1f} s; {peak} replicas Ready after "
                  f"{(full - step) if full else float('nan'):.1f} s")
        if len(spans) >= 3:
            drop = spans[2][0]
            low = next((s[0] for s in sampler.samples if s[0] >= drop and s[1] <= 1), None)
            print(f"Drop at {drop - t0:.1f} s: back to 1 replica process after "
                  f"{(low - drop) if low else float('nan'):.1f} s"
                  f"{'' if low else ' (not within the trace)'}")
    errors = sum(w[5] for w in windows)
    print(f"Requests failed during the trace: {errors}")
    for f in failures:
        print(f)
    if args.keep:
        h.note(PROG, f"state and logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failures or errors else 0


if __name__ == "__main__":
    sys.exit(main())
