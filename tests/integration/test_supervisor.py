"""The control plane's process supervisor with real `quiver serve` replicas.

Drives `supervisor_fixture` (built beside the quiver binary; $SUPERVISOR_FIXTURE overrides),
which supervises N replicas of `quiver serve --builtin-models add_sub`, prints every replica
event as a JSON line and keeps the replicas' records in a state file. A replica killed with
kill -9 must come back Ready and serving on its port; after the fixture itself is killed with
kill -9 and started again from the same state file, the replicas must be adopted (same pids),
not restarted.
"""
import json
import os
import pathlib
import queue
import signal
import subprocess
import threading
import time

import pytest
import requests

from conftest import QUIVER_BIN

FIXTURE = os.environ.get(
    "SUPERVISOR_FIXTURE", str(pathlib.Path(QUIVER_BIN).parent / "supervisor_fixture"))


def alive(pid):
    """True when `pid` runs and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class Fixture:
    """One supervisor_fixture process and the events it printed."""

    def __init__(self, tmp_path, replicas=2):
        assert os.access(FIXTURE, os.X_OK), f"supervisor_fixture not built: {FIXTURE}"
        self.events = []
        self._queue = queue.Queue()
        self.proc = subprocess.Popen(
            [FIXTURE, "--quiver", QUIVER_BIN, "--replicas", str(replicas),
             "--state", str(tmp_path / "state.json"), "--log-dir", str(tmp_path),
             "--backoff-ms", "200", "--grace", "10"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                self._queue.put(json.loads(line))
            except json.JSONDecodeError:
                self._queue.put({"event": "not-json", "line": line})

    def wait_for(self, predicate, timeout=30.0, what="event"):
        """Returns the first event (earlier unclaimed ones included) matching `predicate`."""
        for i, e in enumerate(self.events):
            if predicate(e):
                return self.events.pop(i)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                e = self._queue.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                break
            if predicate(e):
                return e
            self.events.append(e)
        raise AssertionError(f"no {what} within {timeout}s; unclaimed events: {self.events}")

    def wait_state(self, replica, state, timeout=30.0):
        return self.wait_for(lambda e: e.get("id") == replica and e.get("state") == state,
                             timeout, f"{state} event for {replica}")

    def kill9(self):
        self.proc.kill()
        self.proc.wait(10)

    def terminate(self, timeout=60):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


def infer(port):
    a = list(range(16))
    b = [1] * 16
    body = {"inputs": [
        {"name": "INPUT0", "datatype": "INT32", "shape": [1, 16], "data": a},
        {"name": "INPUT1", "datatype": "INT32", "shape": [1, 16], "data": b}]}
    r = requests.post(f"http://127.0.0.1:{port}/v2/models/add_sub/infer", json=body, timeout=10)
    assert r.status_code == 200, r.text
    outputs = {o["name"]: o["data"] for o in r.json()["outputs"]}
    assert outputs == {"OUTPUT0": [x + 1 for x in a], "OUTPUT1": [x - 1 for x in a]}


@pytest.fixture
def cleanup():
    """Whatever happens, kills every fixture started and every replica pid registered."""
    fixtures, pids = [], set()
    yield fixtures, pids
    for f in fixtures:
        if f.proc.poll() is None:
            f.proc.kill()
            f.proc.wait()
    for pid in pids:
        if alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def start_fixture(tmp_path, cleanup):
    def start(replicas=2):
        f = Fixture(tmp_path, replicas)
        cleanup[0].append(f)
        return f
    return start


@pytest.fixture
def pids_to_reap(cleanup):
    return cleanup[1]


def test_kill9_replica_restarts_and_daemon_restart_adopts(tmp_path, start_fixture,
                                                          pids_to_reap):
    fixture = start_fixture()
    ready = {r: fixture.wait_state(r, "Ready") for r in ("r0", "r1")}
    ports = {r: e["http_port"] for r, e in ready.items()}
    pids = {r: e["pid"] for r, e in ready.items()}
    pids_to_reap.update(pids.values())
    assert ports["r0"] != ports["r1"]
    for r in ports:
        assert requests.get(f"http://127.0.0.1:{ports[r]}/v2/health/ready", timeout=5).ok
        infer(ports[r])

    # A replica dies: it is restarted on the same port and serves again.
    os.kill(pids["r0"], signal.SIGKILL)
    failed = fixture.wait_state("r0", "Failed")
    assert failed["last_failure"]["reason"] == "killed by signal 9 (Killed)"
    assert failed["last_failure"]["pid"] == pids["r0"]
    assert "listening" in failed["last_failure"]["log_tail"], failed
    restarted = fixture.wait_state("r0", "Ready")
    assert restarted["restart_count"] == 1
    assert restarted["pid"] != pids["r0"]
    assert restarted["http_port"] == ports["r0"]
    pids["r0"] = restarted["pid"]
    pids_to_reap.add(pids["r0"])
    infer(ports["r0"])

    # The daemon dies: the replicas keep serving...
    fixture.kill9()
    for r in ports:
        assert alive(pids[r])
        infer(ports[r])

    # ...and the restarted daemon adopts them rather than starting new ones.
    fixture = start_fixture()
    for r in ports:
        adopted = fixture.wait_for(lambda e, r=r: e.get("event") == "adopted" and e["id"] == r,
                                   what=f"adoption of {r}")
        assert adopted["pid"] == pids[r]
        ready = fixture.wait_state(r, "Ready")
        assert ready["pid"] == pids[r]
        assert ready["adopted"] is True
        assert ready["restart_count"] == 0
        infer(ports[r])
    assert not [e for e in fixture.events if e.get("reason") == "process started"]

    # An adopted replica is not the new daemon's child; its death is still seen and repaired.
    os.kill(pids["r1"], signal.SIGKILL)
    failed = fixture.wait_state("r1", "Failed")
    assert failed["last_failure"]["reason"] == "exited (exit status unknown: adopted process)"
    restarted = fixture.wait_state("r1", "Ready")
    assert restarted["pid"] != pids["r1"]
    pids_to_reap.add(restarted["pid"])
    infer(ports["r1"])

    # A clean shutdown drains every replica: SIGTERM, quiver serve exits 0.
    assert fixture.terminate() == 0
    stopped = {r: fixture.wait_state(r, "Stopped")["reason"] for r in ports}
    # r1 was started by this daemon, which sees its exit code; r0 is adopted, not its child.
    assert stopped == {"r0": "stopped: exited (exit status unknown: adopted process)",
                       "r1": "stopped: exited with code 0"}
    assert not alive(pids["r0"]) and not alive(restarted["pid"])
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["replicas"] == []


def test_stale_state_starts_fresh_replicas(start_fixture, pids_to_reap):
    fixture = start_fixture(replicas=1)
    first = fixture.wait_state("r0", "Ready")
    pids_to_reap.add(first["pid"])
    fixture.kill9()
    # The replica dies while no daemon watches it.
    os.killpg(first["pid"], signal.SIGKILL)
    deadline = time.time() + 10
    while alive(first["pid"]) and time.time() < deadline:
        time.sleep(0.02)

    fixture = start_fixture(replicas=1)
    refused = fixture.wait_for(lambda e: e.get("event") == "adopt_failed", what="adopt_failed")
    assert "is gone" in refused["reason"] or "exited" in refused["reason"], refused
    fresh = fixture.wait_state("r0", "Ready")
    pids_to_reap.add(fresh["pid"])
    assert fresh["pid"] != first["pid"]
    assert fresh["http_port"] == first["http_port"]
    infer(fresh["http_port"])
    assert fixture.terminate() == 0
