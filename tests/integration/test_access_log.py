"""The access log of `quiver serve`: one line per request with its request id (taken from
x-request-id or generated, and returned as x-request-id), method, path, status, bytes and the
queue / compute / total timings, at info level in the --log-format (text or JSON); switchable
with --access-log.
"""
import json
import re
import time
import uuid

import pytest

from telemetry_helpers import ADD_SUB_BODY, SLEEP_BODY

ACCESS_RE = re.compile(
    r"access request_id=(?P<id>\S+) method=(?P<method>\S+) path=(?P<path>\S+) "
    r"status=(?P<status>\d+) bytes_in=(?P<bytes_in>\d+) bytes_out=(?P<bytes_out>\d+)"
    r"(?: model=(?P<model>\S+))? queue_ms=(?P<queue>[\d.]+) compute_ms=(?P<compute>[\d.]+) "
    r"total_ms=(?P<total>[\d.]+)")


def access_line(server, request_id, timeout=5.0):
    """The parsed text access line for `request_id`, waiting for it to be written."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for line in list(server.log_lines):
            m = ACCESS_RE.search(line)
            if m and m.group("id") == request_id:
                return m, line
        time.sleep(0.02)
    raise AssertionError(f"no access line for {request_id}:\n{server.log}")


def test_a_given_request_id_is_echoed_and_logged(start_server):
    server = start_server([])
    r = server.post("/v2/models/sleep/infer", data=SLEEP_BODY,
                    headers={"x-request-id": "trace-me-123"})
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "trace-me-123"
    m, line = access_line(server, "trace-me-123")
    assert " I " in line  # info level
    assert m.group("method") == "POST"
    assert m.group("path") == "/v2/models/sleep/infer"
    assert m.group("status") == "200"
    assert int(m.group("bytes_in")) == len(SLEEP_BODY)
    assert int(m.group("bytes_out")) == len(r.content)
    assert m.group("model") == "sleep"
    queue, compute, total = (float(m.group(k)) for k in ("queue", "compute", "total"))
    assert compute >= 0.9  # the sleep model takes 1 ms per execution
    assert queue + compute <= total + 0.001


def test_a_missing_request_id_is_generated(start_server):
    server = start_server([])
    r = server.post("/v2/models/add_sub/infer", data=ADD_SUB_BODY)
    rid = r.headers["x-request-id"]
    uuid.UUID(rid)  # a UUID
    access_line(server, rid)
    r2 = server.get("/v2/health/live")
    assert r2.headers["x-request-id"] != rid
    m, _ = access_line(server, r2.headers["x-request-id"])
    assert m.group("method") == "GET" and m.group("model") is None
    # An unusable id (spaces, too long) is replaced rather than logged.
    r3 = server.get("/v2/health/live", headers={"x-request-id": "has spaces"})
    uuid.UUID(r3.headers["x-request-id"])


def test_errors_are_logged_with_their_status(start_server):
    server = start_server([])
    r = server.post("/v2/models/nope/infer", data=b"{}", headers={"x-request-id": "e404"})
    assert r.status_code == 404
    m, _ = access_line(server, "e404")
    assert m.group("status") == "404"
    r = server.post("/v2/models/add_sub/infer", data=b"{", headers={"x-request-id": "e400"})
    m, _ = access_line(server, "e400")
    assert m.group("status") == "400" and m.group("model") == "add_sub"


def test_json_log_format_puts_the_fields_at_the_top_level(start_server):
    server = start_server(["--log-format", "json"])
    r = server.post("/v2/models/add_sub/infer", data=ADD_SUB_BODY,
                    headers={"x-request-id": "json-1"})
    assert r.status_code == 200
    deadline = time.time() + 5
    entry = None
    while entry is None and time.time() < deadline:
        for line in list(server.log_lines):
            if '"json-1"' in line:
                entry = json.loads(line)
        time.sleep(0.02)
    assert entry is not None, server.log
    assert entry["level"] == "info" and entry["msg"] == "access"
    assert entry["request_id"] == "json-1"
    assert entry["method"] == "POST"
    assert entry["path"] == "/v2/models/add_sub/infer"
    assert entry["status"] == 200
    assert entry["bytes_out"] == len(r.content)
    assert entry["model"] == "add_sub"
    for k in ("queue_ms", "compute_ms", "total_ms"):
        assert isinstance(entry[k], float) and entry[k] >= 0
    # Every line of the server's output is still one JSON object.
    for line in server.log_lines:
        json.loads(line)


def test_the_access_log_can_be_switched_off(start_server):
    server = start_server(["--access-log", "false"])
    r = server.post("/v2/models/add_sub/infer", data=ADD_SUB_BODY,
                    headers={"x-request-id": "quiet-1"})
    assert r.status_code == 200
    time.sleep(0.3)
    assert "quiet-1" not in server.log
    assert " access " not in server.log


def test_grpc_calls_are_logged_with_their_code(start_server):
    grpc = pytest.importorskip("grpc")
    from test_tracing import grpc_port
    import importlib
    import subprocess
    import sys
    import tempfile
    from conftest import ROOT
    out = tempfile.mkdtemp()
    proto_dir = ROOT / "proto"
    subprocess.run(["protoc", f"--python_out={out}", f"--grpc_out={out}",
                    "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin",
                    f"-I{proto_dir}", str(proto_dir / "grpc_predict_v2.proto")],
                   check=True, capture_output=True, text=True)
    sys.path.insert(0, out)
    try:
        pb2 = importlib.import_module("grpc_predict_v2_pb2")
        pb2_grpc = importlib.import_module("grpc_predict_v2_pb2_grpc")
    finally:
        sys.path.remove(out)
    server = start_server([])
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port(server)}")
    stub = pb2_grpc.GRPCInferenceServiceStub(channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.ModelInfer(pb2.ModelInferRequest(model_name="nope"),
                        metadata=[("x-request-id", "g-1")], timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert dict(err.value.initial_metadata()).get("x-request-id") == "g-1"
    m, _ = access_line(server, "g-1")
    assert m.group("method") == "ModelInfer"
    assert m.group("path") == "/inference.GRPCInferenceService/ModelInfer"
    assert m.group("status") == "5"  # NOT_FOUND
    channel.close()
