"""`quiver serve` command line: KServe runtime-style flags, built-in model selection, errors on bad
flags, --version and --help, and the idle memory of a server with only the built-in models."""
import re
import shutil
import socket
import subprocess
import threading
import time

import numpy as np
import pytest
import requests

from conftest import EXAMPLES, LISTEN_RE, QUIVER_BIN, ROOT

BUILTINS = ["add_sub", "echo", "sleep"]


def project_version():
    m = re.search(r"project\(quiver\s+VERSION\s+([0-9.]+)", (ROOT / "CMakeLists.txt").read_text())
    assert m, "no project(quiver VERSION ...) in CMakeLists.txt"
    return m.group(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_quiver(args, timeout=15):
    """Runs `quiver args...` to completion (for commands that must exit)."""
    return subprocess.run([QUIVER_BIN] + list(args), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


class ExactServe:
    """`quiver serve` with exactly the given flags (conftest's QuiverServer adds --http-port 0)."""

    def __init__(self, args):
        self.proc = subprocess.Popen([QUIVER_BIN, "serve"] + list(args), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.port = None
        self._seen = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line)
            m = LISTEN_RE.search(line)
            if m and self.port is None:
                self.port = int(m.group(1))
                self._seen.set()
        self._seen.set()

    def wait_listening(self, timeout=15):
        assert self._seen.wait(timeout) and self.port is not None, "".join(self.lines)
        return self.port

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def exact_serve():
    started = []

    def start(args):
        s = ExactServe(args)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def wait_ready(url, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if requests.get(url + "/v2/health/ready", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.02)
    raise AssertionError(f"{url} never became ready")


# ---------------------------------------------------------------------------------------------
# KServe-style single model


@pytest.fixture(scope="module")
def xgboost_model(tmp_path_factory):
    """An xgboost classifier folder (the iris example, or a freshly trained one), two input rows
    and the predictions XGBoost itself makes for them."""
    xgb = pytest.importorskip("xgboost")
    d = tmp_path_factory.mktemp("kserve") / "model"
    example = EXAMPLES / "xgboost-iris"
    if (example / "model.json").exists():
        shutil.copytree(example, d)
    else:
        rng = np.random.default_rng(0)
        x = rng.normal(size=(60, 4)).astype(np.float32)
        y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)
        booster = xgb.train({"objective": "multi:softprob", "num_class": 3, "max_depth": 2},
                            xgb.DMatrix(x, label=y), num_boost_round=5)
        d.mkdir(parents=True)
        booster.save_model(str(d / "model.json"))
    booster = xgb.Booster()
    booster.load_model(str(d / "model.json"))
    rows = np.array([[6.8, 2.8, 4.8, 1.4], [5.1, 3.5, 1.4, 0.2]], dtype=np.float32)
    expected = booster.predict(xgb.DMatrix(rows))
    return d, rows, expected


def test_model_name_and_model_dir_serve_one_xgboost_model(start_server, xgboost_model):
    model_dir, rows, expected = xgboost_model
    s = start_server(["--model_name", "foo", "--model_dir", str(model_dir)], wait_ready=False)
    deadline = time.time() + 15
    while time.time() < deadline and s.get("/v2/models/foo/ready").json().get("state") == "LOADING":
        time.sleep(0.02)
    assert "foo" in s.get("/v2/models").json()["models"]
    r = s.get("/v2/models/foo/ready")
    assert r.status_code == 200, f"{r.text}\n{s.log}"
    assert r.json() == {"name": "foo", "ready": True}
    assert s.get("/v2/health/ready").status_code == 200
    meta = s.get("/v2/models/foo").json()
    assert meta["name"] == "foo" and meta["versions"] == ["1"]
    r = s.post("/v2/models/foo/infer", json={"inputs": [
        {"name": "input-0", "datatype": "FP32", "shape": list(rows.shape),
         "data": rows.tolist()}]})
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    assert out["shape"][0] == 2
    np.testing.assert_allclose(np.array(out["data"]).reshape(expected.shape), expected,
                               rtol=1e-5, atol=1e-6)
    assert s.get("/v2/models/model").status_code == 404  # the default name is not also served


def test_model_repository_underscore_spelling(start_server, tmp_path):
    (tmp_path / "snooze").mkdir()
    (tmp_path / "snooze" / "config.yaml").write_text("format: sleep\n")
    s = start_server(["--model_repository", str(tmp_path), "--builtin_models", "none"])
    assert s.get("/v2/models").json()["models"] == ["snooze"]
    r = s.post("/v2/models/snooze/infer", json={"inputs": [
        {"name": "INPUT0", "datatype": "FP32", "shape": [1, 1], "data": [3.5]}]})
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [3.5]


@pytest.mark.parametrize("flag", ["--http_port", "--http-port"])
def test_http_port_both_spellings(exact_serve, flag):
    port = free_port()
    s = exact_serve(["--host", "127.0.0.1", flag, str(port)])
    assert s.wait_listening() == port
    wait_ready(f"http://127.0.0.1:{port}")
    assert requests.get(f"http://127.0.0.1:{port}/v2/health/live", timeout=5).json() == {
        "live": True}


@pytest.mark.parametrize("flag", ["--grpc_port", "--grpc-port"])
def test_grpc_port_flag_sets_the_grpc_port(start_server, flag):
    # The fixture passes --grpc-port 0 first; the last value given wins.
    port = free_port()
    s = start_server([flag, str(port)])
    assert s.grpc_port == port, s.log
    assert s.get("/v2/health/live").status_code == 200


@pytest.mark.parametrize("workers", [1, 3])
def test_workers_sets_the_io_threads(start_server, workers):
    s = start_server(["--workers", str(workers)])
    assert re.search(rf"\({workers} I/O thread", s.log), s.log
    with requests.Session() as session:
        for i in range(20):
            r = session.post(s.url + "/v2/models/echo/infer", timeout=10, json={
                "inputs": [{"name": "x", "datatype": "INT32", "shape": [1], "data": [i]}]})
            assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [i]


# ---------------------------------------------------------------------------------------------
# Built-in model selection


def test_builtin_models_none_serves_no_builtin(start_server):
    s = start_server(["--builtin-models", "none"])
    assert s.get("/v2/models").json() == {"models": []}
    for m in BUILTINS:
        r = s.get(f"/v2/models/{m}")
        assert r.status_code == 404
        assert r.json()["error"] == f"Model with name {m} does not exist."
    assert s.get("/v2/health/ready").status_code == 200


def test_builtin_models_subset(start_server):
    s = start_server(["--builtin-models", "echo"])
    assert s.get("/v2/models").json() == {"models": ["echo"]}
    assert s.get("/v2/models/add_sub").status_code == 404


def test_builtin_models_bogus_exits_with_a_message():
    r = run_quiver(["serve", "--host", "127.0.0.1", "--http-port", "0",
                    "--builtin-models", "echo,bogus"])
    assert r.returncode != 0
    assert "bogus" in r.stderr + r.stdout


def test_missing_model_repository_exits_naming_it():
    r = run_quiver(["serve", "--host", "127.0.0.1", "--http-port", "0",
                    "--model-repository", "/nonexistent"])
    assert r.returncode != 0
    assert "/nonexistent" in r.stderr + r.stdout


@pytest.mark.parametrize("args", [
    ["serve", "--frobnicate"],
    ["serve", "--http-port", "not-a-number"],
    ["serve", "--http-port", "70000"],
    ["serve", "--workers"],
    ["launch"],
])
def test_bad_command_lines_exit_non_zero(args):
    r = run_quiver(args)
    assert r.returncode != 0, r.stdout
    assert (r.stderr + r.stdout).strip()


def test_version_flag():
    r = run_quiver(["--version"])
    assert r.returncode == 0
    assert r.stdout.strip().endswith(project_version()), r.stdout


def test_serve_help_lists_the_flags():
    r = run_quiver(["serve", "--help"])
    assert r.returncode == 0
    for flag in ["--model_repository", "--model-repository", "--model_name", "--model_dir",
                 "--http_port", "--http-port", "--grpc_port", "--workers", "--builtin-models",
                 "--strict-readiness", "--max-body-bytes", "--max-header-bytes",
                 "--read-timeout", "--timeout-keep-alive"]:
        assert flag in r.stdout, f"{flag} missing from serve --help"


# ---------------------------------------------------------------------------------------------
# Memory


def test_idle_resident_memory_under_20_mb(start_server):
    s = start_server([])
    for _ in range(20):
        assert s.post("/v2/models/echo/infer", json={"inputs": [
            {"name": "x", "datatype": "FP32", "shape": [4], "data": [1.0, 2.0, 3.0, 4.0]}]}
        ).status_code == 200
    time.sleep(0.2)
    status = open(f"/proc/{s.proc.pid}/status").read()
    rss_kb = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))
    assert rss_kb < 20 * 1024, f"idle VmRSS {rss_kb} kB"
