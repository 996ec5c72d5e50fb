"""Tracing in `quiver serve`: W3C traceparent on REST and gRPC, spans for the request, its queue
wait and its execution, exported over OTLP/HTTP as JSON to a receiver inside the test.

A user sees: their trace id continued by the server's spans, the server span a child of their
own span, queue and execute spans under the server span, sampling honoured (ratio 0 exports
nothing of new traces, a sampled parent still wins), spans flushed when the server stops.
"""
import importlib
import re
import subprocess
import sys
import time

import pytest
import requests

from conftest import ROOT, QuiverServer
from telemetry_helpers import ADD_SUB_BODY, SLEEP_BODY, HttpReceiver, spans_of

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
SAMPLED = f"00-{TRACE_ID}-{PARENT_ID}-01"
UNSAMPLED = f"00-{TRACE_ID}-{PARENT_ID}-00"
# Export quickly: the batch processor's delay in milliseconds.
FAST = {"OTEL_BSP_SCHEDULE_DELAY": "20"}


@pytest.fixture
def receiver():
    r = HttpReceiver()
    yield r
    r.close()


def start(start_server, receiver, *args, env=None):
    return start_server(["--trace-endpoint", receiver.url, *args], env={**FAST, **(env or {})})


def spans_with_trace(receiver, trace_id, n, timeout=10.0):
    got = receiver.wait_for(
        lambda rs: len([s for s in spans_of(rs) if s["traceId"] == trace_id]) >= n, timeout)
    return [s for s in spans_of(got) if s["traceId"] == trace_id]


def by_name(spans):
    out = {}
    for s in spans:
        assert s["name"] not in out, f"two spans named {s['name']}"
        out[s["name"]] = s
    return out


def nanos(s, key):
    value = s[key]
    assert isinstance(value, str), f"{key} must be a decimal string in OTLP/JSON"
    return int(value)


def test_request_queue_and_execute_spans_continue_the_incoming_trace(start_server, receiver):
    server = start(start_server, receiver, "--trace-service-name", "iris-predictor")
    r = server.post("/v2/models/sleep/infer", data=SLEEP_BODY,
                    headers={"traceparent": SAMPLED, "tracestate": "vendor=abc"})
    assert r.status_code == 200, r.text
    spans = by_name(spans_with_trace(receiver, TRACE_ID, 3))
    assert set(spans) == {"POST /v2/models/sleep/infer", "queue", "execute"}
    server_span = spans["POST /v2/models/sleep/infer"]
    queue, execute = spans["queue"], spans["execute"]
    # The server span is the caller's child; queue and execute are the server span's.
    assert server_span["parentSpanId"] == PARENT_ID
    assert re.fullmatch(r"[0-9a-f]{16}", server_span["spanId"])
    assert server_span["spanId"] != PARENT_ID
    assert queue["parentSpanId"] == server_span["spanId"]
    assert execute["parentSpanId"] == server_span["spanId"]
    assert len({server_span["spanId"], queue["spanId"], execute["spanId"]}) == 3
    assert server_span["kind"] == 2 and queue["kind"] == 1 and execute["kind"] == 1
    assert server_span["traceState"] == "vendor=abc"
    # Times nest: request ⊇ queue, execute, and the queue wait comes before the execution.
    start_ns, end_ns = nanos(server_span, "startTimeUnixNano"), nanos(server_span, "endTimeUnixNano")
    assert abs(start_ns / 1e9 - time.time()) < 60
    assert start_ns <= nanos(queue, "startTimeUnixNano") <= nanos(queue, "endTimeUnixNano")
    assert nanos(queue, "endTimeUnixNano") <= nanos(execute, "startTimeUnixNano")
    assert nanos(execute, "endTimeUnixNano") <= end_ns
    # The sleep model sleeps 1 ms per execution.
    assert nanos(execute, "endTimeUnixNano") - nanos(execute, "startTimeUnixNano") >= 900_000
    attrs = server_span["_attrs"]
    assert attrs["http.request.method"] == "POST"
    assert attrs["url.path"] == "/v2/models/sleep/infer"
    assert attrs["http.response.status_code"] == 200
    assert attrs["model.name"] == "sleep"
    assert attrs["quiver.request_id"] == r.headers["x-request-id"]
    assert execute["_attrs"]["model.name"] == "sleep"
    assert server_span["_resource"]["service.name"] == "iris-predictor"
    assert receiver.received[0].path == "/v1/traces"
    assert receiver.received[0].headers["content-type"] == "application/json"


def test_a_request_without_traceparent_starts_a_new_trace(start_server, receiver):
    server = start(start_server, receiver)
    r = server.post("/v2/models/add_sub/infer", data=ADD_SUB_BODY)
    assert r.status_code == 200
    rid = r.headers["x-request-id"]
    got = receiver.wait_for(lambda rs: any(s["_attrs"].get("quiver.request_id") == rid
                                           for s in spans_of(rs)))
    root = [s for s in spans_of(got) if s["_attrs"].get("quiver.request_id") == rid][0]
    assert "parentSpanId" not in root
    assert re.fullmatch(r"[0-9a-f]{32}", root["traceId"]) and root["traceId"] != "0" * 32
    assert root["_resource"]["service.name"] == "quiver"
    # The access log names the trace, so a log line leads to its trace.
    deadline = time.time() + 5
    while f"trace_id={root['traceId']}" not in server.log and time.time() < deadline:
        time.sleep(0.02)
    assert f"request_id={rid}" in server.log
    assert f"trace_id={root['traceId']}" in server.log


def test_failed_requests_are_spans_with_their_status(start_server, receiver):
    server = start(start_server, receiver)
    r = server.post("/v2/models/nope/infer", data=b"{}", headers={"traceparent": SAMPLED})
    assert r.status_code == 404
    (span,) = spans_with_trace(receiver, TRACE_ID, 1)
    assert span["_attrs"]["http.response.status_code"] == 404
    assert span.get("status", {}).get("code", 0) == 0  # 4xx is the client's error: UNSET
    r = server.post("/v2/models/add_sub/infer", data=b'{"inputs": 5}',
                    headers={"traceparent": SAMPLED})
    assert r.status_code == 400


def test_sampling_ratio_zero_exports_no_new_trace_but_honours_a_sampled_parent(
        start_server, receiver):
    server = start(start_server, receiver, "--trace-sampling-ratio", "0")
    for _ in range(20):
        assert server.post("/v2/models/add_sub/infer", data=ADD_SUB_BODY).status_code == 200
    assert server.post("/v2/models/add_sub/infer", data=ADD_SUB_BODY,
                       headers={"traceparent": UNSAMPLED}).status_code == 200
    assert server.post("/v2/models/add_sub/infer", data=ADD_SUB_BODY,
                       headers={"traceparent": SAMPLED}).status_code == 200
    # Stopping flushes whatever is queued, so afterwards the receiver has everything.
    assert server.stop() == 0
    spans = spans_of(receiver.received)
    assert spans, "the sampled parent's request was not exported"
    assert {s["traceId"] for s in spans} == {TRACE_ID}
    assert len([s for s in spans if s["kind"] == 2]) == 1


def test_ratio_one_exports_every_request(start_server, receiver):
    server = start(start_server, receiver, "--trace-sampling-ratio", "1")
    ids = set()
    for _ in range(10):
        ids.add(server.post("/v2/models/add_sub/infer", data=ADD_SUB_BODY).headers["x-request-id"])
    got = receiver.wait_for(
        lambda rs: ids <= {s["_attrs"].get("quiver.request_id") for s in spans_of(rs)})
    assert ids <= {s["_attrs"].get("quiver.request_id") for s in spans_of(got)}


def test_spans_are_flushed_when_the_server_stops(start_server, receiver):
    # A schedule delay far beyond the test: only the shutdown flush can deliver the spans.
    server = start(start_server, receiver, env={"OTEL_BSP_SCHEDULE_DELAY": "600000"})
    assert server.post("/v2/models/add_sub/infer", data=ADD_SUB_BODY,
                       headers={"traceparent": SAMPLED}).status_code == 200
    time.sleep(0.2)
    assert receiver.received == []
    assert server.stop() == 0
    assert len(spans_with_trace(receiver, TRACE_ID, 1, timeout=1)) >= 1


def test_the_standard_otel_environment_variables_configure_tracing(start_server, receiver):
    server = start_server([], env={**FAST, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
                                   "OTEL_SERVICE_NAME": "from-env",
                                   "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                                   "OTEL_TRACES_SAMPLER_ARG": "1.0"})
    assert server.post("/v2/models/add_sub/infer", data=ADD_SUB_BODY,
                       headers={"traceparent": SAMPLED}).status_code == 200
    (span,) = [s for s in spans_with_trace(receiver, TRACE_ID, 1) if s["kind"] == 2]
    assert span["_resource"]["service.name"] == "from-env"
    assert receiver.received[0].path == "/v1/traces"


def test_a_dead_collector_does_not_fail_requests(start_server):
    dead = HttpReceiver()
    url = dead.url
    dead.close()  # nothing listens there now
    server = start_server(["--trace-endpoint", url], env=FAST)
    for _ in range(50):
        assert server.post("/v2/models/add_sub/infer", data=ADD_SUB_BODY).status_code == 200
    t0 = time.time()
    assert server.stop() == 0
    assert time.time() - t0 < 10


def test_bad_tracing_flags_are_refused():
    from conftest import QUIVER_BIN
    for args, fragment in [
        (["--trace-endpoint", "collector:4318"], "http://"),
        (["--trace-sampling-ratio", "0.5"], "--trace-endpoint"),
        (["--trace-endpoint", "http://x", "--trace-sampling-ratio", "2"], "--trace-sampling-ratio"),
    ]:
        p = subprocess.run([QUIVER_BIN, "serve", "--http-port", "0", "--grpc-port", "0", *args],
                           capture_output=True, text=True, timeout=20)
        assert p.returncode != 0, args
        assert fragment in p.stderr + p.stdout, (args, p.stderr)


# ---------------------------------------------------------------------------------------------
# gRPC


@pytest.fixture(scope="module")
def pb(tmp_path_factory):
    grpc = pytest.importorskip("grpc")
    out = tmp_path_factory.mktemp("stubs")
    proto_dir = ROOT / "proto"
    subprocess.run(["protoc", f"--python_out={out}", f"--grpc_out={out}",
                    "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin",
                    f"-I{proto_dir}", str(proto_dir / "grpc_predict_v2.proto")],
                   check=True, capture_output=True, text=True)
    sys.path.insert(0, str(out))
    try:
        return grpc, importlib.import_module("grpc_predict_v2_pb2"), \
            importlib.import_module("grpc_predict_v2_pb2_grpc")
    finally:
        sys.path.remove(str(out))


def grpc_port(server, timeout=5.0):
    deadline = time.time() + timeout
    while server.grpc_port is None and time.time() < deadline:
        time.sleep(0.01)
    return server.grpc_port


def test_grpc_calls_take_traceparent_from_metadata(start_server, receiver, pb):
    grpc, pb2, pb2_grpc = pb
    server = start(start_server, receiver)
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port(server)}")
    stub = pb2_grpc.GRPCInferenceServiceStub(channel)
    t = pb2.ModelInferRequest.InferInputTensor(name="INPUT0", datatype="FP32", shape=[1, 4])
    t.contents.fp32_contents.extend([1, 2, 3, 4])
    req = pb2.ModelInferRequest(model_name="sleep", inputs=[t])
    _, call = stub.ModelInfer.with_call(req, metadata=[("traceparent", SAMPLED),
                                                       ("x-request-id", "grpc-req-1")], timeout=10)
    assert dict(call.initial_metadata()).get("x-request-id") == "grpc-req-1"
    spans = by_name(spans_with_trace(receiver, TRACE_ID, 3))
    server_span = spans["inference.GRPCInferenceService/ModelInfer"]
    assert server_span["parentSpanId"] == PARENT_ID
    assert server_span["kind"] == 2
    assert server_span["_attrs"]["rpc.system"] == "grpc"
    assert server_span["_attrs"]["rpc.method"] == "ModelInfer"
    assert server_span["_attrs"]["rpc.grpc.status_code"] == 0
    assert server_span["_attrs"]["quiver.request_id"] == "grpc-req-1"
    assert spans["queue"]["parentSpanId"] == server_span["spanId"]
    assert spans["execute"]["parentSpanId"] == server_span["spanId"]
    # An unknown model is a NOT_FOUND span, still a child of the caller.
    with pytest.raises(grpc.RpcError):
        stub.ModelInfer(pb2.ModelInferRequest(model_name="nope"),
                        metadata=[("traceparent", SAMPLED)], timeout=10)
    got = receiver.wait_for(lambda rs: any(s["_attrs"].get("rpc.grpc.status_code") == 5
                                           for s in spans_of(rs)))
    assert any(s["_attrs"].get("rpc.grpc.status_code") == 5 for s in spans_of(got))
    channel.close()
