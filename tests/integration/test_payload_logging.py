"""Payload logging in `quiver serve` with KServe's logger semantics: every inference request and
its response reach a sink as CloudEvents (binary mode over HTTP, or JSON lines in a file), the
pair sharing one id, with KServe's extensions; modes all / request / response; failed requests
logged with their status (unlike KServe); and a slow or dead sink never slows or fails requests.
"""
import base64
import json
import re
import statistics
import time
from datetime import datetime, timezone

import pytest
import requests

from telemetry_helpers import ADD_SUB_BODY, HttpReceiver

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SAMPLED = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"


@pytest.fixture
def sink():
    s = HttpReceiver()
    yield s
    s.close()


def events_of(sink, n, timeout=10.0):
    got = sink.wait_count(n, timeout)
    return got


def pair(events, event_id):
    req = [e for e in events if e.headers.get("ce-id") == event_id
           and e.headers["ce-type"] == REQUEST_TYPE]
    res = [e for e in events if e.headers.get("ce-id") == event_id
           and e.headers["ce-type"] == RESPONSE_TYPE]
    return req, res


def test_request_and_response_reach_the_sink_as_cloudevents(start_server, sink):
    server = start_server(["--log-url", sink.url + "/events"])
    r = server.post("/v2/models/add_sub/infer", data=ADD_SUB_BODY,
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 200
    rid = r.headers["x-request-id"]
    events = events_of(sink, 2)
    req, res = pair(events, rid)
    assert len(req) == 1 and len(res) == 1, [e.headers for e in events]
    req, res = req[0], res[0]
    assert req.path == "/events"
    for e in (req, res):
        h = e.headers
        assert h["ce-specversion"] == "1.0"
        assert h["ce-source"].startswith("http://localhost:")
        assert h["ce-inferenceservicename"] == "add_sub"
        assert h["ce-namespace"] == "default"
        assert h["ce-component"] == "predictor"
        assert h["ce-endpoint"] == "default"
        t = datetime.fromisoformat(h["ce-time"].replace("Z", "+00:00"))
        assert abs((datetime.now(timezone.utc) - t).total_seconds()) < 60
        assert h["content-type"] == "application/json"
    assert req.body == ADD_SUB_BODY
    assert res.body == r.content
    assert res.headers["ce-httpstatus"] == "200"
    assert "ce-httpstatus" not in req.headers
    assert res.json()["outputs"][0]["data"] == [i + 1 for i in range(16)]


def test_kserve_extensions_can_be_named(start_server, sink):
    server = start_server(["--log-url", sink.url, "--log-service-name", "my-isvc",
                           "--log-namespace", "team-a", "--log-component", "transformer",
                           "--log-endpoint", "canary"])
    assert server.post("/v2/models/add_sub/infer", data=ADD_SUB_BODY).status_code == 200
    for e in events_of(sink, 2):
        assert e.headers["ce-inferenceservicename"] == "my-isvc"
        assert e.headers["ce-namespace"] == "team-a"
        assert e.headers["ce-component"] == "transformer"
        assert e.headers["ce-endpoint"] == "canary"


def test_a_failed_request_is_logged_with_its_status(start_server, sink):
    server = start_server(["--log-url", sink.url])
    bad = b'{"inputs": [{"name": "INPUT0", "datatype": "INT32", "shape": [1, 16], "data": [1]}]}'
    r = server.post("/v2/models/add_sub/infer", data=bad)
    assert r.status_code == 400
    req, res = pair(events_of(sink, 2), r.headers["x-request-id"])
    assert req[0].body == bad
    assert res[0].headers["ce-httpstatus"] == "400"
    assert "error" in res[0].json()


@pytest.mark.parametrize("mode,types", [("request", {REQUEST_TYPE}), ("response", {RESPONSE_TYPE}),
                                        ("all", {REQUEST_TYPE, RESPONSE_TYPE})])
def test_mode_filters_the_events(start_server, sink, mode, types):
    server = start_server(["--log-url", sink.url, "--log-mode", mode])
    for _ in range(3):
        assert server.post("/v2/models/add_sub/infer", data=ADD_SUB_BODY).status_code == 200
    assert server.get("/v2/health/ready").status_code == 200  # not an inference: not logged
    assert server.stop() == 0  # flushes
    got = sink.received
    assert {e.headers["ce-type"] for e in got} == types
    assert len(got) == 3 * len(types)


def test_v1_cloudevent_ids_are_kept(start_server, sink):
    server = start_server(["--log-url", sink.url])
    body = json.dumps({"instances": [[1, 2]]}).encode()
    r = server.post("/v1/models/echo:predict", data=body,
                    headers={"ce-specversion": "1.0", "ce-id": "client-event-7",
                             "ce-source": "test", "ce-type": "my.request",
                             "Content-Type": "application/json"})
    assert r.status_code == 200
    req, res = pair(events_of(sink, 2), "client-event-7")
    assert req[0].body == body
    assert json.loads(res[0].body) == {"predictions": [[1, 2]]}


def test_binary_tensor_bodies_are_logged_byte_for_byte(start_server, sink):
    server = start_server(["--log-url", sink.url, "--log-mode", "request"])
    header = json.dumps({"inputs": [{"name": "INPUT0", "datatype": "INT32", "shape": [1, 16],
                                     "parameters": {"binary_data_size": 64}},
                                    {"name": "INPUT1", "datatype": "INT32", "shape": [1, 16],
                                     "parameters": {"binary_data_size": 64}}]}).encode()
    body = header + bytes(range(64)) + bytes(64)
    r = server.post("/v2/models/add_sub/infer", data=body,
                    headers={"Content-Type": "application/octet-stream",
                             "Inference-Header-Content-Length": str(len(header))})
    assert r.status_code == 200, r.text
    (e,) = events_of(sink, 1)
    assert e.body == body
    assert e.headers["content-type"] == "application/octet-stream"


def test_deliveries_carry_the_trace_context(start_server, sink):
    # Tracing off: the caller's traceparent is passed on unchanged.
    server = start_server(["--log-url", sink.url, "--log-mode", "request"])
    server.post("/v2/models/add_sub/infer", data=ADD_SUB_BODY,
                headers={"traceparent": SAMPLED, "tracestate": "k=v"})
    (e,) = events_of(sink, 1)
    assert e.headers["traceparent"] == SAMPLED
    assert e.headers["tracestate"] == "k=v"
    server.stop()
    # Tracing on: the delivery is a child of the request's server span, in the same trace.
    collector = HttpReceiver()
    try:
        server = start_server(["--log-url", sink.url, "--log-mode", "request",
                               "--trace-endpoint", collector.url])
        server.post("/v2/models/add_sub/infer", data=ADD_SUB_BODY,
                    headers={"traceparent": SAMPLED})
        e = events_of(sink, 2)[1]
        m = re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-01", e.headers["traceparent"])
        assert m and m.group(1) == TRACE_ID
        assert m.group(2) != "00f067aa0ba902b7"
        server.stop()
        from telemetry_helpers import spans_of
        server_spans = [s for s in spans_of(collector.received)
                        if s["kind"] == 2 and s["traceId"] == TRACE_ID]
        assert [s["spanId"] for s in server_spans] == [m.group(2)]
    finally:
        collector.close()


def test_a_file_sink_gets_one_json_event_per_line(start_server, tmp_path):
    path = tmp_path / "payloads.jsonl"
    server = start_server(["--log-url", f"file://{path}"])
    r = server.post("/v2/models/add_sub/infer", data=ADD_SUB_BODY)
    bad = server.post("/v2/models/add_sub/infer", data=b'{"inputs": 7}')
    assert r.status_code == 200 and bad.status_code == 400
    assert server.stop() == 0
    lines = path.read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert len(events) == 4
    by_key = {(e["id"], e["type"]): e for e in events}
    req = by_key[(r.headers["x-request-id"], REQUEST_TYPE)]
    res = by_key[(r.headers["x-request-id"], RESPONSE_TYPE)]
    assert req["specversion"] == "1.0"
    assert req["inferenceservicename"] == "add_sub"
    assert req["datacontenttype"] == "application/json"
    assert req["data"] == json.loads(ADD_SUB_BODY)
    assert res["httpstatus"] == 200
    assert res["data"] == r.json()
    bad_res = by_key[(bad.headers["x-request-id"], RESPONSE_TYPE)]
    assert bad_res["httpstatus"] == 400
    # The malformed request body is not JSON in the right shape but is valid JSON: embedded.
    assert by_key[(bad.headers["x-request-id"], REQUEST_TYPE)]["data"] == {"inputs": 7}


def test_a_bad_log_url_is_refused(start_server):
    from conftest import QUIVER_BIN
    import subprocess
    p = subprocess.run([QUIVER_BIN, "serve", "--http-port", "0", "--grpc-port", "0",
                        "--log-url", "kafka://broker"], capture_output=True, text=True,
                       timeout=20)
    assert p.returncode == 2
    assert "--log-url" in p.stderr


def median_latency(session, url, n):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = session.post(url, data=ADD_SUB_BODY, timeout=10)
        out.append(time.perf_counter() - t0)
        assert r.status_code == 200
    return statistics.median(out)


def test_a_slow_or_dead_sink_neither_fails_nor_slows_requests(start_server):
    slow = HttpReceiver(delay=0.5)  # each delivery takes half a second
    dead = HttpReceiver()
    dead_url = dead.url
    dead.close()  # nothing listens there any more
    try:
        base = start_server([])
        with_slow = start_server(["--log-url", slow.url, "--log-queue-size", "16",
                                  "--log-workers", "1"])
        with_dead = start_server(["--log-url", dead_url, "--log-retry-backoff", "50"])
        sessions = {s: requests.Session() for s in (base, with_slow, with_dead)}
        url = "/v2/models/add_sub/infer"
        for s in sessions:  # warm up connections
            median_latency(sessions[s], s.url + url, 5)
        # Interleaved rounds, so that machine noise hits all three alike.
        samples = {s: [] for s in sessions}
        for _ in range(20):
            for s, sess in sessions.items():
                samples[s].append(median_latency(sess, s.url + url, 10))
        m = {s: statistics.median(v) for s, v in samples.items()}
        print(f"median latency: no sink {m[base] * 1e3:.3f} ms, slow sink "
              f"{m[with_slow] * 1e3:.3f} ms, dead sink {m[with_dead] * 1e3:.3f} ms")
        # Had a request waited for its delivery it would take >= 500 ms (slow sink) or a
        # connection attempt plus retries (dead sink); allow generous noise otherwise.
        limit = 3 * m[base] + 0.005
        assert m[with_slow] < limit, (m[with_slow], m[base])
        assert m[with_dead] < limit, (m[with_dead], m[base])
        assert m[with_slow] < 0.1
        # The slow sink's backlog was dropped and counted, not queued without end.
        metrics = with_slow.get("/metrics")
        if metrics.status_code == 200:
            dropped = re.search(r"^quiver_payload_log_dropped_total (\d+)", metrics.text, re.M)
            assert dropped and int(dropped.group(1)) > 0, metrics.text
            failed = re.search(r"^quiver_payload_log_failed_total (\d+)",
                               with_dead.get("/metrics").text, re.M)
            assert failed and int(failed.group(1)) > 0
        # Stopping is bounded although the slow sink still holds deliveries.
        for s in (with_slow, with_dead):
            t0 = time.time()
            assert s.stop() == 0
            assert time.time() - t0 < 12, s.log
    finally:
        slow.close()
