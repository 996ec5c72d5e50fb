"""`quiver router --graph FILE` end to end: real `quiver serve` processes behind a real router
process, driven with python3-requests. KServe's documentation samples (a sequence of two, a
20/80 splitter, an ensemble of two, a switch on a request field), Hard and Soft failures,
nested nodes, Open Inference Protocol v2 chaining, header propagation, timeouts and a bad graph
file."""
import concurrent.futures as cf
import http.server
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests

from conftest import EXAMPLES, QUIVER_BIN, QuiverServer

LISTEN_RE = re.compile(r"HTTP server listening on [^ ]+:(\d+)")

IRIS_ROWS = {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6], [5.1, 3.5, 1.4, 0.2]]}
A = list(range(16))
B = [10] * 16
# Fixed ids: a v2 server makes one up per request otherwise.
ADD_SUB = {"id": "r1", "inputs": [
    {"name": "INPUT0", "datatype": "INT32", "shape": [1, 16], "data": A},
    {"name": "INPUT1", "datatype": "INT32", "shape": [1, 16], "data": B},
]}
FP32 = {"id": "r2", "inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [1, 2], "data": [1.5, 2.5]}]}


class Router:
    """A `quiver router` child process on port 0; stderr is kept in `log`."""

    def __init__(self, graph_file, args=(), env=None):
        self.lines = []
        self.port = None
        self._up = threading.Event()
        self.proc = subprocess.Popen(
            [QUIVER_BIN, "router", "--graph", str(graph_file), "--host", "127.0.0.1",
             "--http-port", "0", "--threads", "2"] + list(args),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env=env)
        threading.Thread(target=self._read, daemon=True).start()
        if not self._up.wait(30) or self.port is None:
            self.stop()
            raise RuntimeError("quiver router did not start:\n" + self.log)
        self.url = f"http://127.0.0.1:{self.port}"

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line)
            m = LISTEN_RE.search(line)
            if m and self.port is None:
                self.port = int(m.group(1))
                self._up.set()
        self._up.set()

    @property
    def log(self):
        return "".join(self.lines)

    def post(self, body, path="/", **kw):
        data = body if isinstance(body, (str, bytes)) else json.dumps(body)
        return requests.post(self.url + path, data=data, timeout=kw.pop("timeout", 30), **kw)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def start_router(tmp_path):
    routers = []
    counter = [0]

    def start(graph_yaml, args=(), env=None):
        counter[0] += 1
        path = tmp_path / f"graph{counter[0]}.yaml"
        path.write_text(graph_yaml)
        r = Router(path, args, env)
        routers.append(r)
        return r

    yield start
    for r in routers:
        assert r.stop() == 0, r.log


@pytest.fixture(scope="module")
def builtin():
    """echo, add_sub and sleep (1 ms)."""
    s = QuiverServer([])
    s.wait_ready()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def iris(tmp_path_factory):
    """sklearn-iris (Python runtime) and xgboost-iris (XGBoost runtime), as in KServe's samples."""
    repo = tmp_path_factory.mktemp("iris-repo")
    for name in ("sklearn-iris", "xgboost-iris"):
        shutil.copytree(EXAMPLES / name, repo / name)
    s = QuiverServer(["--model-repository", str(repo), "--builtin-models", "none"])
    s.wait_ready(timeout=120)
    yield s
    s.stop()


def graph(nodes, extra=""):
    return ("apiVersion: serving.kserve.io/v1alpha1\nkind: InferenceGraph\n"
            "metadata: {name: test-graph}\nspec:\n" + extra + "  nodes:\n" + nodes)


def v2(server, model):
    return f"{server.url}/v2/models/{model}/infer"


def direct(server, model, body):
    r = requests.post(v2(server, model), data=json.dumps(body), timeout=10)
    return r


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------------
# KServe's documentation samples (docs/samples/graph)


def test_sequence_of_two_services_kserve_sample(iris, start_router):
    router = start_router(graph("""\
    root:
      routerType: Sequence
      steps:
      - serviceName: sklearn-iris
        name: sklearn-iris
      - serviceName: xgboost-iris
        name: xgboost-iris
        data: $request
"""), ["--service", f"sklearn-iris={iris.url}", "--service", f"xgboost-iris={iris.url}"])
    r = router.post(IRIS_ROWS)
    assert r.status_code == 200, r.text
    expected = requests.post(iris.url + "/v1/models/xgboost-iris:predict",
                             data=json.dumps(IRIS_ROWS), timeout=10)
    assert expected.status_code == 200
    assert r.json() == expected.json()
    assert r.headers["Content-Type"].startswith("application/json")
    # The first step ran too: sklearn-iris's own answer for the same rows is a valid class list.
    first = requests.post(iris.url + "/v1/models/sklearn-iris:predict",
                          data=json.dumps(IRIS_ROWS), timeout=10).json()
    assert len(first["predictions"]) == 3


def test_splitter_20_80_within_the_binomial_bound(builtin, start_router):
    router = start_router(graph(f"""\
    root:
      routerType: Splitter
      steps:
      - {{serviceUrl: "{v2(builtin, 'echo')}", weight: 20}}
      - {{serviceUrl: "{v2(builtin, 'sleep')}", weight: 80}}
"""))
    n = 2000
    body = json.dumps(FP32)

    def one(_):
        with requests.Session() as s:
            out = []
            for _ in range(n // 8):
                r = s.post(router.url + "/", data=body, timeout=30)
                assert r.status_code == 200, r.text
                out.append(r.json()["model_name"])
            return out

    with cf.ThreadPoolExecutor(8) as pool:
        names = [m for chunk in pool.map(one, range(8)) for m in chunk]
    assert len(names) == n
    echo = names.count("echo")
    assert echo + names.count("sleep") == n
    # Two-sided 99.9% bound of Binomial(2000, 0.2): 400 +- 3.29 sd.
    bound = 3.29 * math.sqrt(n * 0.2 * 0.8)
    assert abs(echo - 400) <= bound, echo


def test_ensemble_of_two_maps_step_names_to_responses(builtin, start_router):
    router = start_router(graph(f"""\
    root:
      routerType: Ensemble
      steps:
      - {{name: echo, serviceUrl: "{v2(builtin, 'echo')}"}}
      - {{serviceUrl: "{v2(builtin, 'add_sub')}"}}
"""))
    r = router.post(ADD_SUB)
    assert r.status_code == 200, r.text
    got = r.json()
    assert set(got) == {"echo", "1"}
    assert got["echo"] == direct(builtin, "echo", ADD_SUB).json()
    assert got["1"] == direct(builtin, "add_sub", ADD_SUB).json()
    assert got["1"]["outputs"][0]["data"] == [a + b for a, b in zip(A, B)]


def test_switch_on_a_request_field(builtin, start_router):
    router = start_router(graph(f"""\
    root:
      routerType: Switch
      steps:
      - serviceUrl: "{v2(builtin, 'add_sub')}"
        condition: 'inputs.#(datatype=="INT32")'
      - serviceUrl: "{v2(builtin, 'sleep')}"
        condition: 'inputs.#(datatype=="FP32")'
"""))
    assert router.post(ADD_SUB).json()["model_name"] == "add_sub"
    assert router.post(FP32).json()["model_name"] == "sleep"
    r = router.post({"inputs": [{"name": "x", "datatype": "BYTES", "shape": [1], "data": ["a"]}]})
    assert r.status_code == 404
    assert r.json() == {"error": "Failed to process request",
                        "cause": "None of the routes matched with the switch condition"}
    r = router.post("not json")
    assert r.status_code == 400
    assert "not JSON" in r.json()["cause"]


# ------------------------------------------------------------------------------------------
# Hard and Soft failures


def test_a_failing_hard_step_ends_the_sequence_with_its_status_and_body(builtin, start_router):
    # sleep wants FP32: the add_sub body makes it answer 400.
    model_error = direct(builtin, "sleep", ADD_SUB)
    assert model_error.status_code == 400
    steps = f"""\
    root:
      routerType: Sequence
      steps:
      - {{serviceUrl: "{v2(builtin, 'sleep')}", dependency: DEP}}
      - {{serviceUrl: "{v2(builtin, 'add_sub')}", data: $request}}
"""
    hard = start_router(graph(steps.replace("DEP", "Hard")))
    r = hard.post(ADD_SUB)
    assert r.status_code == 400
    assert r.json() == model_error.json()
    soft = start_router(graph(steps.replace("DEP", "Soft")))
    r = soft.post(ADD_SUB)
    assert r.status_code == 200, r.text
    assert r.json()["model_name"] == "add_sub"


def test_a_failing_hard_step_decides_an_ensemble(builtin, start_router):
    router = start_router(graph(f"""\
    root:
      routerType: Ensemble
      steps:
      - {{name: sum, serviceUrl: "{v2(builtin, 'add_sub')}"}}
      - {{name: slow, serviceUrl: "{v2(builtin, 'sleep')}", dependency: Hard}}
"""))
    r = router.post(ADD_SUB)
    assert r.status_code == 400
    assert r.json() == direct(builtin, "sleep", ADD_SUB).json()
    # Soft: the failure is one member of the answer.
    soft = start_router(graph(f"""\
    root:
      routerType: Ensemble
      steps:
      - {{name: sum, serviceUrl: "{v2(builtin, 'add_sub')}"}}
      - {{name: slow, serviceUrl: "{v2(builtin, 'sleep')}"}}
"""))
    r = soft.post(ADD_SUB)
    assert r.status_code == 200
    assert r.json()["slow"] == direct(builtin, "sleep", ADD_SUB).json()


def test_a_step_to_a_dead_port_fails_the_graph_naming_it(builtin, start_router):
    dead = free_port()
    router = start_router(graph(f"""\
    root:
      routerType: Sequence
      steps:
      - {{name: gone, serviceUrl: "http://127.0.0.1:{dead}/v2/models/echo/infer"}}
      - {{serviceUrl: "{v2(builtin, 'echo')}"}}
"""))
    r = router.post(FP32)
    assert r.status_code == 500
    body = r.json()
    assert body["error"] == "Failed to process request"
    assert f"127.0.0.1:{dead}" in body["cause"] and "gone" in body["cause"]


# ------------------------------------------------------------------------------------------
# Nesting and v2 chaining


def test_v2_chaining_outputs_become_the_next_inputs(builtin, start_router):
    router = start_router(graph(f"""\
    root:
      routerType: Sequence
      steps:
      - serviceUrl: "{v2(builtin, 'add_sub')}"
      - serviceUrl: "{v2(builtin, 'add_sub')}"
        data: $response
        mapOutputsToInputs: {{OUTPUT0: INPUT0, OUTPUT1: INPUT1}}
      - serviceUrl: "{v2(builtin, 'echo')}"
        data: $response
        mapOutputsToInputs: true
"""))
    r = router.post(ADD_SUB)
    assert r.status_code == 200, r.text
    out = {o["name"]: o["data"] for o in r.json()["outputs"]}
    # (a + b) + (a - b) = 2a, (a + b) - (a - b) = 2b; echo renames them output-0, output-1.
    assert out == {"output-0": [2 * a for a in A], "output-1": [2 * b for b in B]}


def test_v1_chaining_with_map_predictions_to_instances(builtin, start_router):
    router = start_router(graph(f"""\
    root:
      routerType: Sequence
      steps:
      - serviceUrl: "{builtin.url}/v1/models/echo:predict"
      - serviceUrl: "{builtin.url}/v1/models/echo:predict"
        data: $response
        mapPredictionsToInstances: true
"""))
    r = router.post({"instances": [[1, 2], [3, 4]]})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": [[1, 2], [3, 4]]}


def test_nested_nodes(builtin, start_router):
    router = start_router(graph(f"""\
    root:
      routerType: Sequence
      steps:
      - {{name: pick, nodeName: pick}}
      - {{name: both, nodeName: both, data: $response}}
    pick:
      routerType: Switch
      steps:
      - serviceUrl: "{v2(builtin, 'add_sub')}"
        condition: 'inputs.#(name=="INPUT1")'
      - serviceUrl: "{v2(builtin, 'echo')}"
        condition: inputs
    both:
      routerType: Ensemble
      steps:
      - name: twice
        serviceUrl: "{v2(builtin, 'add_sub')}"
        mapOutputsToInputs: {{OUTPUT0: INPUT0, OUTPUT1: INPUT1}}
      - name: again
        nodeName: again
        mapOutputsToInputs: {{OUTPUT0: INPUT0, OUTPUT1: INPUT1}}
    again:
      routerType: Splitter
      steps:
      - serviceUrl: "{v2(builtin, 'add_sub')}"
        weight: 100
"""))
    r = router.post(ADD_SUB)
    assert r.status_code == 200, r.text
    got = r.json()
    assert set(got) == {"twice", "again"}
    for member in ("twice", "again"):
        out = {o["name"]: o["data"] for o in got[member]["outputs"]}
        assert out == {"OUTPUT0": [2 * a for a in A], "OUTPUT1": [2 * b for b in B]}


# ------------------------------------------------------------------------------------------
# Headers, timeouts, health, configuration errors


class HeaderMirror:
    """A step backend in this process: answers the headers it got, after `delay` seconds."""

    def __init__(self, delay=0.0):
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                time.sleep(mirror.delay)
                body = json.dumps({"headers": {k: v for k, v in self.headers.items()}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.delay = delay
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/predict"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirror():
    m = HeaderMirror()
    yield m
    m.close()


def test_matching_headers_are_propagated_to_every_step(mirror, start_router):
    router = start_router(graph(f"""\
    root:
      routerType: Ensemble
      steps:
      - {{name: a, serviceUrl: "{mirror.url}"}}
      - {{name: b, serviceUrl: "{mirror.url}"}}
"""), ["--propagate-header", "^X-Tenant"], env={**os.environ, "PROPAGATE_HEADERS": "Authorization"})
    r = router.post({"x": 1}, headers={"x-tenant-id": "t1", "Authorization": "Bearer abc",
                                       "X-Other": "no"})
    assert r.status_code == 200, r.text
    for step in ("a", "b"):
        got = r.json()[step]["headers"]
        assert got.get("X-Tenant-Id") == "t1"
        assert got.get("Authorization") == "Bearer abc"
        assert "X-Other" not in got
        assert got.get("Content-Type") == "application/json"


def test_step_and_graph_timeouts(start_router):
    slow = HeaderMirror(delay=3.0)
    try:
        step = start_router(graph(f"""\
    root:
      routerType: Sequence
      steps:
      - serviceUrl: "{slow.url}"
""", extra="  routerTimeouts: {serviceClient: 1}\n"))
        t0 = time.monotonic()
        r = step.post({})
        assert r.status_code == 500
        assert "timed out" in r.json()["cause"] or "timeout" in r.json()["cause"]
        assert time.monotonic() - t0 < 2.5
        whole = start_router(graph(f"""\
    root:
      routerType: Sequence
      steps:
      - serviceUrl: "{slow.url}"
""", extra="  timeout: 1\n"))
        t0 = time.monotonic()
        r = whole.post({})
        assert r.status_code == 504
        assert "spec.timeout" in r.json()["cause"]
        assert time.monotonic() - t0 < 2.5
    finally:
        slow.close()


def test_health_routes_as_kserves_router(builtin, start_router):
    router = start_router(graph(f"""\
    root:
      routerType: Sequence
      steps:
      - serviceUrl: "{v2(builtin, 'echo')}"
"""))
    assert requests.get(router.url + "/readyz", timeout=5).status_code == 200
    r = requests.get(router.url + "/v2/health/ready", timeout=5)
    assert r.status_code == 200 and r.json() == {"ready": True}
    assert requests.get(router.url + "/v2/health/live", timeout=5).json() == {"live": True}
    # Any other path and method runs the graph, as KServe's router does.
    r = router.post(FP32, path="/v2/models/anything/infer")
    assert r.status_code == 200 and r.json()["model_name"] == "echo"


@pytest.mark.parametrize("nodes,message", [
    ("""\
    root:
      routerType: Splitter
      steps:
      - {serviceUrl: "http://127.0.0.1:1/a", weight: 20}
      - {serviceUrl: "http://127.0.0.1:1/b", weight: 70}
""", "the weights of a Splitter's steps must sum to 100, got 90"),
    ("""\
    root:
      routerType: Switch
      steps:
      - {serviceUrl: "http://127.0.0.1:1/a", condition: 'instances.#(x=="1"'}
""", "spec.nodes.root.steps[0].condition: position 18: unterminated query"),
    ("""\
    root:
      routerType: Sequence
      steps:
      - {nodeName: missing}
""", "no node named \"missing\""),
])
def test_a_bad_graph_file_exits_2_naming_the_field(tmp_path, nodes, message):
    path = tmp_path / "bad.yaml"
    path.write_text(graph(nodes))
    r = subprocess.run([QUIVER_BIN, "router", "--graph", str(path), "--http-port", "0"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr


def test_a_missing_graph_file_exits_2(tmp_path):
    r = subprocess.run([QUIVER_BIN, "router", "--graph", str(tmp_path / "nope.yaml")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "cannot read" in r.stderr and "nope.yaml" in r.stderr
