"""Shared fixtures for integration tests: start a real `quiver serve` on port 0 and talk to it.

The binary comes from $QUIVER_BIN (set by CTest) or build/quiver. Tests use real clients:
Debian's python3-requests and curl.
"""
import os
import pathlib
import re
import signal
import subprocess
import threading
import time

import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
QUIVER_BIN = os.environ.get("QUIVER_BIN", str(ROOT / "build" / "bin" / "quiver"))
EXAMPLES = ROOT / "examples" / "models"
LISTEN_RE = re.compile(r"HTTP server listening on [^ ]+:(\d+)")
GRPC_LISTEN_RE = re.compile(r"gRPC server listening on [^ ]+:(\d+)")


class QuiverServer:
    """A `quiver serve` child process. Its stderr is collected in `self.log`."""

    def __init__(self, args, env=None, startup_timeout=30.0):
        self.args = [QUIVER_BIN, "serve", "--host", "127.0.0.1", "--http-port", "0",
                     "--grpc-port", "0"] + list(args)
        self.grpc_port = None
        self.log_lines = []
        self._port = None
        self._port_event = threading.Event()
        self.proc = subprocess.Popen(
            self.args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
            text=True,
        )
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        if not self._port_event.wait(startup_timeout):
            self.stop()
            raise RuntimeError("quiver serve did not start:\n" + self.log)
        if self._port is None:
            raise RuntimeError("quiver serve exited:\n" + self.log)
        self.url = f"http://127.0.0.1:{self._port}"
        self.port = self._port

    def _read_log(self):
        for line in self.proc.stderr:
            self.log_lines.append(line)
            g = GRPC_LISTEN_RE.search(line)
            if g:
                self.grpc_port = int(g.group(1))
            m = LISTEN_RE.search(line)
            if m and self._port is None:
                self._port = int(m.group(1))
                self._port_event.set()
        self._port_event.set()

    @property
    def log(self):
        return "".join(self.log_lines)

    def wait_ready(self, timeout=30.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if requests.get(self.url + "/v2/health/ready", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.02)
        raise RuntimeError("server not ready:\n" + self.log)

    def get(self, path, **kw):
        return requests.get(self.url + path, timeout=kw.pop("timeout", 10), **kw)

    def post(self, path, **kw):
        return requests.post(self.url + path, timeout=kw.pop("timeout", 10), **kw)

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        return self.proc.returncode


@pytest.fixture
def start_server():
    """Factory fixture: start_server(args) -> QuiverServer; every server is stopped at the end."""
    servers = []

    def start(args=(), env=None, wait_ready=True):
        s = QuiverServer(args, env=env)
        servers.append(s)
        if wait_ready:
            s.wait_ready()
        return s

    yield start
    for s in servers:
        s.stop()


@pytest.fixture(scope="module")
def builtin_server():
    """One server with only the built-in models, shared by a module's tests."""
    s = QuiverServer([])
    s.wait_ready()
    yield s
    s.stop()
