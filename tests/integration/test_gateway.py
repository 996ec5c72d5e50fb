"""The gateway end to end: `gateway_fixture` (the gateway library on a route table read from a
JSON file, until the control plane drives it) in front of real `quiver serve` replicas, talked
to with python3-requests."""
import concurrent.futures as cf
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

from conftest import QUIVER_BIN

FIXTURE_BIN = os.environ.get("QUIVER_GATEWAY_FIXTURE",
                             str(pathlib.Path(QUIVER_BIN).parent / "gateway_fixture"))
LISTEN_RE = re.compile(r"gateway listening on [^ ]+:(\d+)")

ADD_SUB_BODY = json.dumps({"inputs": [
    {"name": "INPUT0", "datatype": "INT32", "shape": [1, 16], "data": list(range(16))},
    {"name": "INPUT1", "datatype": "INT32", "shape": [1, 16], "data": [10] * 16},
]})
SUM = [i + 10 for i in range(16)]
SLEEP_BODY = json.dumps({"inputs": [
    {"name": "INPUT0", "datatype": "FP32", "shape": [1, 2], "data": [1.5, 2.5]},
]})
ADDER_HOST = {"Host": "adder.default.example.com"}


class GatewayProcess:
    def __init__(self, routes_file):
        if not os.path.exists(FIXTURE_BIN):
            raise RuntimeError(f"{FIXTURE_BIN} is missing: build the gateway_fixture target")
        self.log_lines = []
        self._port = None
        self._ready = threading.Event()
        self.proc = subprocess.Popen([FIXTURE_BIN, "--routes", str(routes_file), "--port", "0"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(30) or self._port is None:
            self.stop()
            raise RuntimeError("gateway_fixture did not start:\n" + "".join(self.log_lines))
        self.url = f"http://127.0.0.1:{self._port}"

    def _read(self):
        for line in self.proc.stderr:
            self.log_lines.append(line)
            m = LISTEN_RE.search(line)
            if m and self._port is None:
                self._port = int(m.group(1))
                self._ready.set()
        self._ready.set()

    def post(self, path, data, headers=None, timeout=30):
        return requests.post(self.url + path, data=data, headers=headers or {}, timeout=timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def service(name, ports, namespace="default", container_concurrency=0, queue_depth=0):
    return {"namespace": namespace, "name": name, "predictor": [{
        "revision": f"{name}-predictor-00001", "percent": 100,
        "endpoints": [f"127.0.0.1:{p}" for p in ports],
        "container_concurrency": container_concurrency, "queue_depth": queue_depth}]}


@pytest.fixture
def start_gateway(tmp_path):
    gateways = []

    def start(services):
        routes = tmp_path / f"routes{len(gateways)}.json"
        routes.write_text(json.dumps({"services": services}))
        g = GatewayProcess(routes)
        gateways.append(g)
        return g

    yield start
    for g in gateways:
        assert g.stop() == 0, "".join(g.log_lines)


def metric(server, name, model):
    """Sum of a metric's samples for one model, from the replica's /metrics."""
    text = server.get("/metrics").text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and f'model="{model}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_infer_through_host_and_path_forms_matches_the_replica(start_server, start_gateway):
    replica = start_server(["--builtin-models", "add_sub"])
    gw = start_gateway([service("adder", [replica.port])])
    direct = replica.post("/v2/models/add_sub/infer", data=ADD_SUB_BODY)
    by_host = gw.post("/v2/models/add_sub/infer", ADD_SUB_BODY, ADDER_HOST)
    by_path = gw.post("/serving/default/adder/v2/models/add_sub/infer", ADD_SUB_BODY)
    assert direct.status_code == by_host.status_code == by_path.status_code == 200, by_path.text
    answers = [by_host.json(), direct.json(), by_path.json()]
    for a in answers:
        a.pop("id")  # generated per request by the replica
    assert answers[0] == answers[1] == answers[2]
    assert by_host.json()["outputs"][0]["data"] == SUM
    assert by_host.headers["Content-Type"] == direct.headers["Content-Type"]
    # Readiness through the gateway answers what the replica answers.
    ready = requests.get(gw.url + "/serving/default/adder/v2/models/add_sub/ready", timeout=10)
    assert ready.status_code == 200


def test_two_replicas_share_the_load(start_server, start_gateway):
    replicas = [start_server(["--builtin-models", "add_sub"]) for _ in range(2)]
    gw = start_gateway([service("adder", [r.port for r in replicas])])

    def one(_):
        r = gw.post("/v2/models/add_sub/infer", ADD_SUB_BODY, ADDER_HOST)
        assert r.status_code == 200, r.text
    with cf.ThreadPoolExecutor(4) as ex:
        list(ex.map(one, range(40)))
    counts = [metric(r, "nv_inference_request_success", "add_sub") for r in replicas]
    assert sum(counts) == 40
    # Least outstanding with round-robin ties spreads the requests; neither replica idles.
    assert min(counts) >= 10, counts


def test_killed_replica_is_routed_around(start_server, start_gateway):
    replicas = [start_server(["--builtin-models", "add_sub"]) for _ in range(2)]
    gw = start_gateway([service("adder", [r.port for r in replicas])])
    assert gw.post("/v2/models/add_sub/infer", ADD_SUB_BODY, ADDER_HOST).status_code == 200
    replicas[0].stop(sig=signal.SIGKILL)
    for _ in range(20):
        r = gw.post("/v2/models/add_sub/infer", ADD_SUB_BODY, ADDER_HOST)
        assert r.status_code == 200, r.text
        assert r.json()["outputs"][0]["data"] == SUM
    replicas[1].stop(sig=signal.SIGKILL)
    r = gw.post("/v2/models/add_sub/infer", ADD_SUB_BODY, ADDER_HOST)
    assert r.status_code == 502
    # Both replicas were tried (the retry goes to the one avoided since it failed); both named.
    for replica in replicas:
        assert f"127.0.0.1:{replica.port}" in r.json()["error"], r.text


def test_unknown_service_is_404_and_not_ready_is_503(start_gateway):
    gw = start_gateway([service("cold", [])])
    r = gw.post("/v2/models/x/infer", ADD_SUB_BODY, {"Host": "nope.default.example.com"})
    assert r.status_code == 404
    assert "nope.default.example.com" in r.json()["error"]
    r = gw.post("/serving/other/nope/v2/models/x/infer", ADD_SUB_BODY)
    assert r.status_code == 404
    r = gw.post("/v2/models/x/infer", ADD_SUB_BODY, {"Host": "cold.default.example.com"})
    assert r.status_code == 503
    assert "default/cold is not ready" in r.json()["error"]


def test_explain_without_explainer_reaches_the_predictor_as_in_kserve(start_server,
                                                                      start_gateway):
    replica = start_server(["--builtin-models", "add_sub"])
    gw = start_gateway([service("adder", [replica.port])])
    body = json.dumps({"instances": [[1, 2, 3, 4]]})
    direct = replica.post("/v1/models/add_sub:explain", data=body)
    r = gw.post("/v1/models/add_sub:explain", body, ADDER_HOST)
    # KServe's ingress routes :explain to the explainer only when there is one; otherwise
    # the predictor's server answers, 501 for a model without an explainer.
    assert r.status_code == direct.status_code == 501, r.text
    assert r.json() == direct.json()
    r = gw.post("/v1/models/add_sub:explain", body, {"Host": "adder-explainer.default.example.com"})
    assert r.status_code == 404


def sleep_repo(tmp_path, sleep_us):
    d = tmp_path / "repo" / "slow"
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(f"format: sleep\nparameters: {{sleep_us: {sleep_us}}}\n")
    return tmp_path / "repo"


def test_container_concurrency_queues_in_the_gateway_not_the_replica(start_server,
                                                                     start_gateway, tmp_path):
    replica = start_server(["--model-repository", str(sleep_repo(tmp_path, 200000)),
                            "--builtin-models", "none"])
    gw = start_gateway([service("slow", [replica.port], container_concurrency=1,
                                queue_depth=10)])
    host = {"Host": "slow.default.example.com"}

    def one(_):
        return gw.post("/v2/models/slow/infer", SLEEP_BODY, host)
    t = time.time()
    with cf.ThreadPoolExecutor(3) as ex:
        answers = list(ex.map(one, range(3)))
    took = time.time() - t
    assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
    assert answers[0].json()["outputs"][0]["data"] == [1.5, 2.5]
    assert took >= 0.55, took  # one at a time: 3 × 200 ms
    # The replica never had a request waiting: the gateway held them (≈0 queue time there;
    # three at once straight to the replica would queue ≈600 ms in total).
    queued_us = metric(replica, "nv_inference_queue_duration_us", "slow")
    assert queued_us < 100000, queued_us


def test_container_concurrency_queue_full_is_503(start_server, start_gateway, tmp_path):
    replica = start_server(["--model-repository", str(sleep_repo(tmp_path, 1000000)),
                            "--builtin-models", "none"])
    gw = start_gateway([service("slow", [replica.port], container_concurrency=1,
                                queue_depth=1)])
    host = {"Host": "slow.default.example.com"}
    with cf.ThreadPoolExecutor(3) as ex:
        # All three arrive while the first sleeps its second at the replica: one runs, one
        # waits in the gateway's queue (depth 1), one is turned away.
        futures = [ex.submit(gw.post, "/v2/models/slow/infer", SLEEP_BODY, host)
                   for _ in range(3)]
        answers = [f.result() for f in futures]
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 200, 503], [a.text for a in answers]
    rejected = next(a for a in answers if a.status_code == 503)
    assert "containerConcurrency 1" in rejected.json()["error"]
