"""Prometheus metrics of `quiver serve` end to end: GET /metrics after real traffic over REST v2
(JSON and binary), V1 and gRPC, batching, rejections and unloads; `promtool check metrics` on the
output; and a real Prometheus server scraping Quiver and answering PromQL queries.

Names follow Triton (nv_inference_*, labels model/version; shared/reference/model-servers.md 2.1)
and KServe (request_*_seconds, label model_name; 2.2).
"""
import concurrent.futures as cf
import importlib
import json
import math
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import requests

from conftest import ROOT, QuiverServer

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

# Names kept for Triton compatibility that Prometheus' linter would name differently (counters
# without _total, _count on a gauge, _us units). Everything else must lint clean.
TRITON_NAMES = {
    "nv_inference_request_success", "nv_inference_request_failure", "nv_inference_count",
    "nv_inference_exec_count", "nv_inference_pending_request_count",
    "nv_inference_request_duration_us", "nv_inference_queue_duration_us",
    "nv_inference_compute_input_duration_us", "nv_inference_compute_infer_duration_us",
    "nv_inference_compute_output_duration_us", "nv_model_load_duration_secs",
}


# ---------------------------------------------------------------------------------------------
# Helpers


class Scrape:
    """One GET /metrics, parsed into (name, labels, value) samples."""

    def __init__(self, server):
        r = server.get("/metrics")
        assert r.status_code == 200, r.text
        self.text = r.text
        self.samples = []
        for line in r.text.splitlines():
            if not line or line.startswith("#"):
                continue
            m = SAMPLE_RE.match(line)
            assert m, f"not a sample line: {line!r}"
            labels = dict(LABEL_RE.findall(m.group(2) or ""))
            self.samples.append((m.group(1), labels, float(m.group(3))))

    def value(self, name, **labels):
        """The sum of the samples of `name` whose labels include `labels`; None when none."""
        found = [v for n, l, v in self.samples
                 if n == name and all(l.get(k) == str(x) for k, x in labels.items())]
        return sum(found) if found else None

    def delta(self, before, name, **labels):
        return (self.value(name, **labels) or 0) - (before.value(name, **labels) or 0)


def write_model(repo, name, config):
    d = repo / name
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(config)


def add_sub_json(rows=1):
    a = np.arange(rows * 16, dtype=np.int32).reshape(rows, 16)
    return {"inputs": [
        {"name": "INPUT0", "datatype": "INT32", "shape": [rows, 16], "data": a.ravel().tolist()},
        {"name": "INPUT1", "datatype": "INT32", "shape": [rows, 16], "data": a.ravel().tolist()},
    ]}


def add_sub_binary():
    """An add_sub request with both inputs in the binary tensor extension."""
    raw = np.arange(16, dtype=np.int32).tobytes()
    header = json.dumps({"inputs": [
        {"name": n, "datatype": "INT32", "shape": [1, 16],
         "parameters": {"binary_data_size": len(raw)}} for n in ("INPUT0", "INPUT1")]}).encode()
    return header + raw + raw, {"Content-Type": "application/octet-stream",
                                "Inference-Header-Content-Length": str(len(header))}


def sleep_infer(server, model, rows=1):
    body = {"inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [rows, 2],
                        "data": [1.0] * (rows * 2)}]}
    return requests.post(f"{server.url}/v2/models/{model}/infer", json=body, timeout=30)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo")
    # Batches of up to 32 items; an execution takes 20 ms, so concurrent requests share one.
    write_model(repo, "batched", "format: sleep\nmax_batch_size: 32\n"
                "dynamic_batching: {max_queue_delay_microseconds: 20000}\n"
                "parameters: {sleep_us: 20000}\n")
    # One request executes, one waits; the rest are refused at once.
    write_model(repo, "tiny_queue", "format: sleep\nmax_batch_size: 1\n"
                "dynamic_batching: {default_queue_policy: {max_queue_size: 1}}\n"
                "parameters: {sleep_us: 300000}\n")
    write_model(repo, "spare", "format: sleep\nparameters: {sleep_us: 10}\n")
    s = QuiverServer(["--model-repository", str(repo)])
    s.wait_ready()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def pb(tmp_path_factory):
    """grpc_predict_v2 stubs generated by protoc, as test_grpc.py does."""
    pytest.importorskip("grpc")
    out = tmp_path_factory.mktemp("stubs")
    proto_dir = ROOT / "proto"
    subprocess.run(["protoc", f"--python_out={out}", f"--grpc_out={out}",
                    "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin", f"-I{proto_dir}",
                    str(proto_dir / "grpc_predict_v2.proto")], check=True, capture_output=True)
    sys.path.insert(0, str(out))
    try:
        return (importlib.import_module("grpc_predict_v2_pb2"),
                importlib.import_module("grpc_predict_v2_pb2_grpc"))
    finally:
        sys.path.remove(str(out))


# ---------------------------------------------------------------------------------------------
# The endpoint


def test_metrics_endpoint_serves_prometheus_text(server):
    r = server.get("/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == CONTENT_TYPE
    m = Scrape(server)
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                 "process_virtual_memory_bytes", "process_start_time_seconds",
                 "process_open_fds"):
        assert m.value(name) is not None and m.value(name) > 0, name
    assert m.value("process_start_time_seconds") <= time.time()
    # Model states: 1 for the current state, 0 for the others; load time for READY models.
    assert m.value("quiver_model_state", model="add_sub", state="READY") == 1
    assert m.value("quiver_model_state", model="add_sub", state="FAILED") == 0
    assert m.value("nv_model_load_duration_secs", model="batched") >= 0
    # Every failure reason exists from load on, at zero.
    for reason in ("REJECTED", "CANCELED", "BACKEND", "OTHER"):
        assert m.value("nv_inference_request_failure", model="spare", reason=reason) == 0
    assert server.post("/metrics").status_code == 405


# ---------------------------------------------------------------------------------------------
# Counts per frontend


def test_rest_v2_json_and_binary_counts(server):
    before = Scrape(server)
    for _ in range(5):
        r = server.post("/v2/models/add_sub/infer", json=add_sub_json())
        assert r.status_code == 200, r.text
    body, headers = add_sub_binary()
    for _ in range(2):
        r = server.post("/v2/models/add_sub/infer", data=body, headers=headers)
        assert r.status_code == 200, r.text
    bad = add_sub_json()
    bad["inputs"][0]["datatype"] = "FP32"
    for _ in range(3):
        assert server.post("/v2/models/add_sub/infer", json=bad).status_code == 400
    assert server.post("/v2/models/add_sub/infer", data=b"{",
                       headers={"Inference-Header-Content-Length": "x"}).status_code == 400
    after = Scrape(server)
    assert after.delta(before, "nv_inference_request_success", model="add_sub") == 7
    assert after.delta(before, "nv_inference_request_failure", model="add_sub",
                       reason="OTHER") == 4
    assert after.delta(before, "nv_inference_request_failure", model="add_sub",
                       reason="BACKEND") == 0
    # add_sub does not batch: one inference and one execution per request (Triton's counting).
    assert after.delta(before, "nv_inference_count", model="add_sub") == 7
    assert after.delta(before, "nv_inference_exec_count", model="add_sub") == 7
    # Latency: the histograms count successful requests; the µs counters grow.
    assert after.delta(before, "nv_inference_request_duration_seconds_count", model="add_sub") == 7
    assert after.delta(before, "request_predict_seconds_count", model_name="add_sub") == 7
    assert after.delta(before, "request_preprocess_seconds_count", model_name="add_sub") == 7
    assert after.delta(before, "nv_inference_request_duration_us", model="add_sub") > 0
    assert after.delta(before, "nv_inference_compute_infer_duration_us", model="add_sub") > 0
    # The whole request takes at least its compute.
    assert (after.delta(before, "nv_inference_request_duration_us", model="add_sub") >=
            after.delta(before, "nv_inference_compute_infer_duration_us", model="add_sub"))
    assert after.value("nv_inference_request_duration_seconds_bucket", model="add_sub",
                       le="+Inf") == after.value("nv_inference_request_duration_seconds_count",
                                                 model="add_sub")


def test_v1_predict_counts(server):
    row = list(range(16))
    before = Scrape(server)
    for _ in range(4):  # tensor model through V1
        r = server.post("/v1/models/add_sub:predict",
                        json={"instances": [{"INPUT0": row, "INPUT1": row}]})
        assert r.status_code == 200, r.text
    for _ in range(2):
        r = server.post("/v1/models/add_sub:predict", json={"instances": [{"INPUT0": row}]})
        assert r.status_code == 400
    for _ in range(3):  # a model that takes the V1 JSON itself
        r = server.post("/v1/models/echo:predict", json={"instances": [[1, 2]]})
        assert r.status_code == 200, r.text
    r = server.post("/v1/models/echo:predict", data=b"{}",
                    headers={"ce-specversion": "1.0", "Content-Type": "application/json"})
    assert r.status_code == 400  # a CloudEvent without its required attributes
    after = Scrape(server)
    assert after.delta(before, "nv_inference_request_success", model="add_sub") == 4
    assert after.delta(before, "nv_inference_request_failure", model="add_sub",
                       reason="OTHER") == 2
    assert after.delta(before, "nv_inference_request_success", model="echo") == 3
    assert after.delta(before, "nv_inference_request_failure", model="echo", reason="OTHER") == 1
    assert after.delta(before, "nv_inference_exec_count", model="echo") == 3
    assert after.delta(before, "request_predict_seconds_count", model_name="echo") == 3


def test_grpc_model_infer_counts(server, pb):
    import grpc
    pb2, pb2_grpc = pb
    deadline = time.time() + 5
    while server.grpc_port is None and time.time() < deadline:
        time.sleep(0.01)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    stub = pb2_grpc.GRPCInferenceServiceStub(channel)

    def request(datatype="INT32", raw=False):
        req = pb2.ModelInferRequest(model_name="add_sub")
        for name in ("INPUT0", "INPUT1"):
            t = req.inputs.add(name=name, datatype=datatype, shape=[1, 16])
            if raw:
                req.raw_input_contents.append(struct.pack("<16i", *range(16)))
            elif datatype == "INT32":
                t.contents.int_contents.extend(range(16))
            else:
                t.contents.fp32_contents.extend([1.0] * 16)
        return req

    before = Scrape(server)
    try:
        for i in range(5):
            stub.ModelInfer(request(raw=i % 2 == 1), timeout=10)
        for _ in range(2):
            with pytest.raises(grpc.RpcError) as e:
                stub.ModelInfer(request(datatype="FP32"), timeout=10)
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        channel.close()
    after = Scrape(server)
    assert after.delta(before, "nv_inference_request_success", model="add_sub") == 5
    assert after.delta(before, "nv_inference_request_failure", model="add_sub",
                       reason="OTHER") == 2
    assert after.delta(before, "nv_inference_exec_count", model="add_sub") == 5


# ---------------------------------------------------------------------------------------------
# Batching, rejections, unloads


def test_batching_executes_fewer_times_than_it_infers(server):
    before = Scrape(server)
    with cf.ThreadPoolExecutor(16) as ex:
        results = list(ex.map(lambda _: sleep_infer(server, "batched", rows=2), range(16)))
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    after = Scrape(server)
    assert after.delta(before, "nv_inference_request_success", model="batched") == 16
    # Items are the batch dimension summed: 16 requests of 2 rows.
    assert after.delta(before, "nv_inference_count", model="batched") == 32
    execs = after.delta(before, "nv_inference_exec_count", model="batched")
    assert 1 <= execs < 16, execs
    # Requests waited for their batch: queue time is there, and the split is consistent.
    assert after.delta(before, "nv_inference_queue_duration_us", model="batched") > 0
    assert after.delta(before, "nv_inference_queue_duration_seconds_count", model="batched") == 16
    # Every request of a batch counts the batch's compute (20 ms sleep each).
    assert after.delta(before, "nv_inference_compute_infer_duration_us",
                       model="batched") >= 16 * 19000
    assert after.value("nv_inference_pending_request_count", model="batched") == 0


def test_rejected_requests_have_reason_rejected(server):
    before = Scrape(server)
    with cf.ThreadPoolExecutor(8) as ex:
        results = list(ex.map(lambda _: sleep_infer(server, "tiny_queue"), range(8)))
    codes = [r.status_code for r in results]
    assert set(codes) <= {200, 503}, codes
    assert codes.count(503) > 0, codes
    after = Scrape(server)
    assert after.delta(before, "nv_inference_request_failure", model="tiny_queue",
                       reason="REJECTED") == codes.count(503)
    assert after.delta(before, "nv_inference_request_success", model="tiny_queue") == \
        codes.count(200)


def test_unloaded_model_series_disappear_and_state_says_so(server):
    assert sleep_infer(server, "spare").status_code == 200
    assert Scrape(server).value("nv_inference_request_success", model="spare") >= 1
    assert server.post("/v2/repository/models/spare/unload").status_code == 200
    m = Scrape(server)
    # As Triton: an unloaded model's per-model series leave the exposition.
    assert not [s for s in m.samples if s[1].get("model") == "spare"
                and s[0] != "quiver_model_state"]
    assert m.value("request_predict_seconds_count", model_name="spare") is None
    assert m.value("quiver_model_state", model="spare", state="UNLOADED") == 1
    assert m.value("quiver_model_state", model="spare", state="READY") == 0
    # Loaded again, it counts from zero.
    assert server.post("/v2/repository/models/spare/load").status_code == 200
    m = Scrape(server)
    assert m.value("nv_inference_request_success", model="spare") == 0
    assert m.value("quiver_model_state", model="spare", state="READY") == 1


def test_allow_metrics_false_turns_metrics_off(start_server):
    s = start_server(["--allow-metrics", "false", "--enable-grpc", "false"])
    assert s.get("/metrics").status_code == 404
    r = s.post("/v2/models/add_sub/infer", json=add_sub_json())
    assert r.status_code == 200, r.text


# ---------------------------------------------------------------------------------------------
# promtool and a real Prometheus


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian: prometheus)")
def test_promtool_check_metrics(server):
    # Traffic first, so that every family has samples (histograms included).
    for _ in range(3):
        server.post("/v2/models/add_sub/infer", json=add_sub_json())
    text = server.get("/metrics").text
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    # 0: clean; 3: lint findings only (1 would be a parse error).
    assert p.returncode in (0, 3), p.stdout + p.stderr
    findings = [line for line in (p.stdout + p.stderr).splitlines() if line.strip()]
    flagged = {line.split()[0] for line in findings}
    assert flagged <= TRITON_NAMES, findings
    # Quiver's own names and the standard process names lint clean.
    for line in findings:
        assert not line.startswith(("quiver_", "process_", "request_")), line


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus (Debian package)")
def test_real_prometheus_scrapes_and_answers_rate_and_quantile(server, tmp_path):
    port = free_port()
    (tmp_path / "prometheus.yml").write_text(f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: quiver
    static_configs:
      - targets: ["127.0.0.1:{server.port}"]
""")
    prom = subprocess.Popen(
        ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
         "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    stop = threading.Event()

    def traffic():
        with requests.Session() as s:
            while not stop.is_set():
                s.post(f"{server.url}/v2/models/add_sub/infer", json=add_sub_json(), timeout=10)
                time.sleep(0.005)

    def query(promql):
        r = requests.get(f"{base}/api/v1/query", params={"query": promql}, timeout=5)
        assert r.status_code == 200, r.text
        result = r.json()["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    loader = threading.Thread(target=traffic, daemon=True)
    try:
        deadline = time.time() + 20
        while True:
            try:
                if requests.get(f"{base}/-/ready", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.time() < deadline and prom.poll() is None, "prometheus did not start"
            time.sleep(0.1)
        loader.start()
        rate_q = 'sum(rate(nv_inference_request_success{model="add_sub"}[5s]))'
        p99_q = ('histogram_quantile(0.99, sum by (le) '
                 '(rate(nv_inference_request_duration_seconds_bucket{model="add_sub"}[5s])))')
        rate = p99 = None
        deadline = time.time() + 30
        while time.time() < deadline:
            rate, p99 = query(rate_q), query(p99_q)
            if rate and p99 and not math.isnan(p99):
                break
            time.sleep(0.5)
        assert query('up{job="quiver"}') == 1
        assert rate is not None and rate > 0, rate
        # A quantile of the request latency, in seconds: add_sub answers well under a second.
        assert p99 is not None and 0 < p99 < 1, p99
    finally:
        stop.set()
        if loader.is_alive():
            loader.join(timeout=10)
        prom.terminate()
        try:
            prom.wait(timeout=10)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait()
