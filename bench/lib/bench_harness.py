"""What bench/protocol_bench.py and bench/batching_bench.py share: starting `quiver serve` on
free ports (port 0, ports read from its log), running `quiver bench` closed-loop with CPU
accounting for both sides, scheduling priority, machine facts, medians and Markdown.

Every process started here is recorded and stopped at exit (SIGTERM, then SIGKILL after 5 s),
also on Ctrl-C or SIGTERM. Nothing else is touched. Standard library only; /usr/bin/python3.
"""
import atexit
import json
import os
import pathlib
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_QUIVER = os.environ.get("QUIVER") or str(ROOT / "build" / "bin" / "quiver")
TICKS = os.sysconf("SC_CLK_TCK")

_started = []          # Popen objects this process started and must stop
_autogroup_old = None  # this session's autogroup nice level before --nice, restored at exit


def die(prog, message, code=2):
    print(f"{prog}: {message}", file=sys.stderr)
    sys.exit(code)


def note(prog, message):
    print(f"{prog}: {message}", file=sys.stderr, flush=True)


def stop_all():
    for p in reversed(_started):
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.time() + 5
    for p in reversed(_started):
        try:
            p.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    _started.clear()
    global _autogroup_old
    if _autogroup_old is not None:
        try:
            pathlib.Path(f"/proc/{os.getpid()}/autogroup").write_text(_autogroup_old)
        except OSError:
            pass
        _autogroup_old = None


def install_cleanup():
    """Stops every started process at exit, including on SIGINT/SIGTERM."""
    atexit.register(stop_all)

    def on_signal(signum, _frame):
        sys.exit(128 + signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)


def priority_prefix(nice):
    """`nice -n N` for child processes; with autogroup scheduling also gives this session's
    group the same level (a nice level only counts within its group), restored at exit."""
    if nice == 0:
        return []
    probe = subprocess.run(["nice", "-n", str(nice), "nice"], capture_output=True, text=True)
    if probe.returncode != 0 or probe.stdout.strip() != str(nice):
        raise SystemExit(f"cannot run at nice {nice} (negative levels need root)")
    global _autogroup_old
    group = pathlib.Path(f"/proc/{os.getpid()}/autogroup")
    try:
        if pathlib.Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1":
            m = re.search(r"nice (-?\d+)", group.read_text())
            group.write_text(str(nice))
            _autogroup_old = m.group(1) if m else "0"
    except OSError:
        pass
    return ["nice", "-n", str(nice)]


def check_cpu(cpus):
    if subprocess.run(["taskset", "-c", cpus, "true"], capture_output=True).returncode != 0:
        raise SystemExit(f"cannot pin to CPU(s) {cpus}")


class Server:
    """One `quiver serve` on 127.0.0.1 with ports chosen by the kernel (port 0), pinned to
    `cpus`. `http` and `grpc` are host:port strings read from the log lines "HTTP server
    listening on" and "gRPC server listening on"."""

    def __init__(self, quiver, args, cpus, prefix, log_dir, grpc=True, timeout=60):
        self.log_path = pathlib.Path(log_dir) / f"server-{len(_started)}.log"
        cmd = prefix + ["taskset", "-c", cpus, quiver, "serve", "--host", "127.0.0.1",
                        "--http-port", "0", "--grpc-port", "0",
                        "--enable-grpc", "true" if grpc else "false"] + args
        self.command = cmd
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        _started.append(self.proc)
        self.pid = self.proc.pid  # nice and taskset exec, so this is quiver's pid
        self.http = self.grpc = None
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = self.log_path.read_text(errors="replace")
            m = re.search(r"HTTP server listening on (\S+?:\d+)", text)
            g = re.search(r"gRPC server listening on (\S+?:\d+)", text)
            self.http = m.group(1) if m else None
            self.grpc = g.group(1) if g else None
            if self.http and (self.grpc or not grpc) and self._ready():
                return
            if self.proc.poll() is not None:
                raise SystemExit(f"quiver serve exited ({self.proc.returncode}):\n{text}")
            time.sleep(0.05)
        raise SystemExit(f"quiver serve did not become ready in {timeout} s:\n"
                         f"{self.log_path.read_text(errors='replace')}")

    def _ready(self):
        try:
            with urllib.request.urlopen(f"http://{self.http}/v2/health/ready", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def cpu_seconds(self):
        """User + system CPU of the whole process (all threads) so far."""
        stat = pathlib.Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat[stat.rfind(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / TICKS

    def threads(self):
        """{tid: (name, cpu seconds, voluntary switches, involuntary switches)}."""
        out = {}
        for task in pathlib.Path(f"/proc/{self.pid}/task").iterdir():
            try:
                stat = (task / "stat").read_text()
                status = (task / "status").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()
            name = stat[stat.find("(") + 1:stat.rfind(")")]
            vol = int(re.search(r"voluntary_ctxt_switches:\s+(\d+)", status).group(1))
            invol = int(re.search(r"nonvoluntary_ctxt_switches:\s+(\d+)", status).group(1))
            out[int(task.name)] = (name, (int(fields[11]) + int(fields[12])) / TICKS, vol, invol)
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc in _started:
            _started.remove(self.proc)
        self._log.close()


def children_cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_quiver_bench(quiver, server, model, concurrency, window_ms, windows, client_cpus,
                     prefix, work_dir, protocol="http", binary=False, input_data=None,
                     extra=()):
    """One closed-loop `quiver bench` run of `windows` windows, all of them merged (--max-trials
    = windows, so the figures cover the whole run whether or not it was stable). Returns a dict:
    rps, infer_s, p50, p99 (µs), requests, seconds, errors, body_bytes (one request's body as
    quiver bench built it), server_us (server CPU per request), client_us (load generator CPU per
    request), client_cpu (its CPU use, fraction of one CPU), stable, command."""
    url = server.grpc if protocol == "grpc" else server.http
    fd, name = tempfile.mkstemp(suffix=".json", dir=work_dir)
    os.close(fd)
    out_json = pathlib.Path(name)
    out_json.unlink()
    cmd = prefix + ["taskset", "-c", client_cpus, quiver, "bench", "-m", model, "-u", url,
                    "-i", protocol, "--concurrency-range", str(concurrency),
                    "--measurement-interval", str(window_ms), "--max-trials", str(windows),
                    "--metrics-url", "none", "--json", str(out_json)]
    if binary:
        cmd.append("--binary")
    if input_data:
        cmd += ["--input-data", str(input_data)]
    cmd += list(extra)
    s0, c0, t0 = server.cpu_seconds(), children_cpu_seconds(), time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True)
    s1, c1, t1 = server.cpu_seconds(), children_cpu_seconds(), time.monotonic()
    if p.returncode not in (0, 3) or not out_json.exists():
        raise SystemExit(f"quiver bench failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr}")
    report = json.loads(out_json.read_text())
    out_json.unlink()
    level = report["results"][0]
    m = re.search(r"request\(s\) of (\d+) bytes", p.stderr)
    requests = level["requests"]
    return {
        "rps": level["throughput_requests_per_sec"],
        "infer_s": level["throughput_infer_per_sec"],
        "p50": level["latency_us"]["p50"],
        "p99": level["latency_us"]["p99"],
        "requests": requests,
        "seconds": level["seconds"],
        "errors": level["errors"],
        "first_error": level.get("first_error"),
        "stable": level["stable"],
        "body_bytes": int(m.group(1)) if m else None,
        # The run also holds a metadata request and connection set-up: a slight overcount.
        "server_us": (s1 - s0) * 1e6 / requests if requests else float("nan"),
        "client_us": (c1 - c0) * 1e6 / requests if requests else float("nan"),
        "client_cpu": (c1 - c0) / (t1 - t0) if t1 > t0 else float("nan"),
        "command": cmd,
    }


def loadavg():
    return " ".join(pathlib.Path("/proc/loadavg").read_text().split()[:3])


def cpu_busy(seconds=1.0):
    """Per-CPU busy percentage over `seconds`, e.g. 'cpu0 97% cpu1 100%'."""
    def sample():
        out = {}
        for line in pathlib.Path("/proc/stat").read_text().splitlines():
            parts = line.split()
            if re.fullmatch(r"cpu\d+", parts[0]):
                v = list(map(int, parts[1:]))
                out[parts[0]] = (sum(v), v[3] + v[4])  # total, idle + iowait
        return out
    a = sample()
    time.sleep(seconds)
    b = sample()
    return " ".join(
        f"{k} {100 * (1 - (b[k][1] - a[k][1]) / max(1, b[k][0] - a[k][0])):.0f}%" for k in a)


def machine():
    model = "unknown CPU"
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} CPUs, {model}, Linux {os.uname().release}"


def binary_facts(path):
    st = os.stat(path)
    built = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(st.st_mtime))
    return f"{path} ({st.st_size} bytes, modified {built})"


def commit():
    """Short commit of the checkout the script lives in (read-only git), or 'unknown'."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"],
                               capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not head:
        return "unknown"
    return head + (" (work tree has uncommitted changes)" if dirty else "")


def rotated(cases, repeat):
    """Round-robin order for one repeat: the case list rotated by the repeat number, so that no
    case always runs first (or right after the same neighbour)."""
    k = repeat % len(cases)
    return cases[k:] + cases[:k]


def median(values):
    values = [v for v in values if v == v]  # drop NaN
    return statistics.median(values) if values else float("nan")


def spread(values):
    values = [v for v in values if v == v]
    return (min(values), max(values)) if values else (float("nan"), float("nan"))


def fmt(v, digits=0):
    if v is None or v != v:
        return "–"
    return f"{v:,.{digits}f}"


def table(header, rows, align=None):
    """Markdown table; `align` is a string of 'l'/'r' per column (default: first left)."""
    align = align or "l" + "r" * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if a == "l" else "---:" for a in align) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(lines)
