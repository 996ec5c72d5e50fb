"""Shared by the `quiver up` integration tests: a daemon process with its API, gateway and CLI,
and small helpers to write InferenceServices and read their status."""
import json
import os
import pathlib
import re
import signal
import subprocess
import threading
import time

import pytest
import requests

from conftest import QUIVER_BIN, ROOT

EXAMPLES = ROOT / "examples"
API_RE = re.compile(r"API listening on (http://\S+)")
GATEWAY_RE = re.compile(r"gateway listening on http://[^ ]+:(\d+)")
IRIS_ROW = [6.8, 2.8, 4.8, 1.4]


class Daemon:
    """A `quiver up` process with its own state dir; stderr kept in `log_lines`."""

    def __init__(self, state_dir, extra=(), env=None):
        self.state_dir = pathlib.Path(state_dir)
        self.args = [QUIVER_BIN, "up", "--state-dir", str(self.state_dir), "--api-port", "0",
                     "--gateway-port", "0", *extra]
        self.log_lines = []
        self.api = None
        self.gateway_port = None
        started = threading.Event()
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env={**os.environ, **(env or {})})

        def read_stdout():
            for line in self.proc.stdout:
                self.log_lines.append(line)
                m = API_RE.search(line)
                if m:
                    self.api = m.group(1)
                g = GATEWAY_RE.search(line)
                if g:
                    self.gateway_port = int(g.group(1))
                if self.api and self.gateway_port:
                    started.set()
            started.set()

        def read_stderr():
            for line in self.proc.stderr:
                self.log_lines.append(line)

        threading.Thread(target=read_stdout, daemon=True).start()
        threading.Thread(target=read_stderr, daemon=True).start()
        if not started.wait(60) or not self.api or not self.gateway_port:
            self.kill()
            raise RuntimeError("quiver up did not start:\n" + self.log)
        self.gateway = f"http://127.0.0.1:{self.gateway_port}"

    @property
    def log(self):
        return "".join(self.log_lines)

    def cli(self, *args, input=None, check=True):
        env = {**os.environ, "QUIVER_STATE_DIR": str(self.state_dir)}
        r = subprocess.run([QUIVER_BIN, *args], capture_output=True, text=True, input=input,
                           env=env, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError(f"quiver {' '.join(args)} failed ({r.returncode}):\n"
                                 f"{r.stdout}\n{r.stderr}\n--- daemon log ---\n{self.log}")
        return r

    def isvc(self, name, ns="default", kind="inferenceservices", version="v1beta1"):
        r = requests.get(f"{self.api}/apis/serving.kserve.io/{version}/namespaces/{ns}/"
                         f"{kind}/{name}", timeout=10)
        r.raise_for_status()
        return r.json()

    def wait_condition(self, name, predicate, what, timeout=180, kind="inferenceservices",
                       version="v1beta1"):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = self.isvc(name, kind=kind, version=version)
            if predicate(last):
                return last
            time.sleep(0.2)
        raise AssertionError(f"{name}: {what} not reached in {timeout} s; last status:\n"
                             f"{json.dumps(last.get('status'), indent=1)}\n"
                             f"--- daemon log ---\n{self.log}")

    def wait_ready(self, name, timeout=180):
        return self.wait_condition(name, lambda d: condition(d, "Ready") == "True", "Ready",
                                   timeout)

    def post(self, host, path, body, timeout=30):
        return requests.post(self.gateway + path, json=body, headers={"Host": host},
                             timeout=timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def condition(doc, ctype):
    for c in doc.get("status", {}).get("conditions", []):
        if c.get("type") == ctype:
            return c.get("status")
    return None


def replica_pids(daemon_pid):
    """Pids of the replica processes a daemon started (its children)."""
    pids = []
    for task in pathlib.Path(f"/proc/{daemon_pid}/task").iterdir():
        try:
            pids += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return pids


def cmdline(pid):
    try:
        return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.fixture
def daemon(tmp_path):
    started = []

    def start(state_dir=None, extra=(), env=None):
        d = Daemon(state_dir or tmp_path / "state", extra, env)
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()  # a clean stop drains and stops the daemon's replicas


def isvc_yaml(name, model_format, storage_uri, protocol=None, extra=""):
    proto = f"\n      protocolVersion: {protocol}" if protocol else ""
    return f"""apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: {name}
spec:
  predictor:{extra}
    model:
      modelFormat:
        name: {model_format}{proto}
      storageUri: {storage_uri}
"""


def v2_iris_body():
    return {"inputs": [{"name": "input-0", "datatype": "FP32", "shape": [1, 4],
                        "data": IRIS_ROW}]}
