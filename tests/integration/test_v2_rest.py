"""Open Inference Protocol (V2) over REST, against a real `quiver serve` with real clients.

Covers the routes, the JSON codec through the built-in models (echo, add_sub, sleep), models that
fail to load, HTTP limits and timeouts, keep-alive, concurrency and the SIGTERM drain. Expected
answers come from KServe's protocol and conformance tests (shared/reference/kserve.md 1.1, 4).
"""
import concurrent.futures
import json
import re
import select
import signal
import socket
import subprocess
import threading
import time
import uuid

import numpy as np
import pytest
import requests

from conftest import EXAMPLES, QuiverServer, ROOT

BUILTINS = {"echo", "add_sub", "sleep"}


# ---------------------------------------------------------------------------------------------
# Helpers


def project_version():
    m = re.search(r"project\(quiver\s+VERSION\s+([0-9.]+)", (ROOT / "CMakeLists.txt").read_text())
    assert m, "no project(quiver VERSION ...) in CMakeLists.txt"
    return m.group(1)


def assert_error(r, status, *fragments):
    """The answer is `status` with a JSON {"error": "..."} body naming every fragment."""
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text}"
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    body = r.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    for f in fragments:
        assert f in body["error"], f"{f!r} not in error {body['error']!r}"
    return body


def infer(server, model, body, path=None, **kw):
    url = path or f"/v2/models/{model}/infer"
    if isinstance(body, (dict, list)):
        return server.post(url, json=body, **kw)
    return server.post(url, data=body, headers={"Content-Type": "application/json"}, **kw)


def tensor(name, datatype, shape, data, **extra):
    return {"name": name, "datatype": datatype, "shape": shape, "data": data, **extra}


def add_sub_request(a, b, outputs=None):
    a = np.asarray(a, dtype=np.int32)
    b = np.asarray(b, dtype=np.int32)
    body = {"inputs": [tensor("INPUT0", "INT32", list(a.shape), a.flatten().tolist()),
                       tensor("INPUT1", "INT32", list(b.shape), b.flatten().tolist())]}
    if outputs is not None:
        body["outputs"] = [{"name": n} for n in outputs]
    return body


def outputs_by_name(resp_json):
    return {o["name"]: o for o in resp_json["outputs"]}


def read_http_response(sock, head_request=False):
    """Reads one HTTP/1.1 response (Content-Length framed) from `sock`.

    Returns (status, headers dict with lower-case keys, body bytes, leftover bytes)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed before a full response head: {buf!r}")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    length = 0 if head_request else int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed in the middle of a response body")
        rest += chunk
    return status, headers, rest[:length], rest[length:]


def raw_request(port, data, timeout=5.0):
    """Sends `data` on a fresh connection and reads one response; returns it with the time."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        start = time.monotonic()
        s.sendall(data)
        status, headers, body, _ = read_http_response(s)
        return status, headers, body, time.monotonic() - start


def wait_until_closed(sock, limit):
    """Seconds until the peer closes `sock` (recv returns b""), or None after `limit` seconds."""
    start = time.monotonic()
    sock.settimeout(limit)
    try:
        while True:
            if sock.recv(65536) == b"":
                return time.monotonic() - start
    except socket.timeout:
        return None
    except ConnectionResetError:
        return time.monotonic() - start


def write_model(repo, name, config_yaml=None, files=None):
    d = repo / name
    d.mkdir(parents=True)
    if config_yaml is not None:
        (d / "config.yaml").write_text(config_yaml)
    for fname, content in (files or {}).items():
        (d / fname).write_text(content)
    return d


def wait_loaded(server, names, timeout=15.0):
    """Waits until none of `names` is still LOADING (the server loads models in the background)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        pending = [n for n in names
                   if server.get(f"/v2/models/{n}/ready").json().get("state") == "LOADING"]
        if not pending:
            return
        time.sleep(0.02)
    raise RuntimeError(f"models still loading: {pending}\n{server.log}")


# ---------------------------------------------------------------------------------------------
# Routes


def test_root_reports_alive(builtin_server):
    r = builtin_server.get("/")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"status": "alive"}


def test_health_live(builtin_server):
    r = builtin_server.get("/v2/health/live")
    assert r.status_code == 200
    assert r.json() == {"live": True}


def test_health_ready_when_every_model_is_ready(builtin_server):
    r = builtin_server.get("/v2/health/ready")
    assert r.status_code == 200
    assert r.json() == {"ready": True}


def test_server_metadata(builtin_server):
    r = builtin_server.get("/v2")
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "quiver"
    assert body["version"] == project_version()
    assert isinstance(body["extensions"], list)
    assert all(isinstance(e, str) for e in body["extensions"])


def test_model_list_names_the_builtin_models(builtin_server):
    r = builtin_server.get("/v2/models")
    assert r.status_code == 200
    models = r.json()["models"]
    assert sorted(models) == sorted(BUILTINS)


def test_add_sub_metadata(builtin_server):
    r = builtin_server.get("/v2/models/add_sub")
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "add_sub"
    assert body["versions"] == ["1"]
    assert isinstance(body["platform"], str)
    spec = lambda n: {"name": n, "datatype": "INT32", "shape": [-1, 16]}  # noqa: E731
    assert body["inputs"] == [spec("INPUT0"), spec("INPUT1")]
    assert body["outputs"] == [spec("OUTPUT0"), spec("OUTPUT1")]


def test_sleep_metadata_marks_variable_dims(builtin_server):
    body = builtin_server.get("/v2/models/sleep").json()
    assert body["name"] == "sleep"
    assert body["versions"] == ["1"]
    assert body["inputs"] == [{"name": "INPUT0", "datatype": "FP32", "shape": [-1, -1]}]
    assert body["outputs"] == [{"name": "OUTPUT0", "datatype": "FP32", "shape": [-1, -1]}]


def test_echo_metadata(builtin_server):
    body = builtin_server.get("/v2/models/echo").json()
    assert body["name"] == "echo"
    assert body["versions"] == ["1"]
    assert isinstance(body["platform"], str)
    assert isinstance(body["inputs"], list) and isinstance(body["outputs"], list)


@pytest.mark.parametrize("model", sorted(BUILTINS))
def test_model_ready(builtin_server, model):
    r = builtin_server.get(f"/v2/models/{model}/ready")
    assert r.status_code == 200
    assert r.json() == {"name": model, "ready": True}


def test_versioned_routes_serve_version_1(builtin_server):
    r = builtin_server.get("/v2/models/add_sub/versions/1")
    assert r.status_code == 200
    assert r.json() == builtin_server.get("/v2/models/add_sub").json()
    r = builtin_server.get("/v2/models/echo/versions/1/ready")
    assert r.status_code == 200
    assert r.json() == {"name": "echo", "ready": True}
    r = infer(builtin_server, None, add_sub_request([[1] * 16], [[2] * 16]),
              path="/v2/models/add_sub/versions/1/infer")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_name"] == "add_sub"
    assert body["model_version"] == "1"
    assert outputs_by_name(body)["OUTPUT0"]["data"] == [3] * 16


@pytest.mark.parametrize("version", ["2", "0", "latest"])
@pytest.mark.parametrize("suffix,method", [("", "GET"), ("/ready", "GET"), ("/infer", "POST")])
def test_other_versions_are_not_found(builtin_server, version, suffix, method):
    path = f"/v2/models/echo/versions/{version}{suffix}"
    if method == "GET":
        r = builtin_server.get(path)
    else:
        r = infer(builtin_server, None, {"inputs": []}, path=path)
    assert_error(r, 404, "echo")


@pytest.mark.parametrize("path,method", [
    ("/v2/models/nope", "GET"),
    ("/v2/models/nope/ready", "GET"),
    ("/v2/models/nope/infer", "POST"),
    ("/v2/models/nope/versions/1", "GET"),
    ("/v2/models/nope/versions/1/infer", "POST"),
])
def test_unknown_model_is_404_with_kserve_message(builtin_server, path, method):
    if method == "GET":
        r = builtin_server.get(path)
    else:
        r = infer(builtin_server, None, {"inputs": []}, path=path)
    body = assert_error(r, 404)
    assert body["error"] == "Model with name nope does not exist."


@pytest.mark.parametrize("path", [
    "/v2/nope", "/v1/nope", "/v2/health", "/v2/health/dead", "/v2/models/echo/explain",
    "/v2/models/echo/versions", "/v2/models/echo/versions/1/ready/more", "/metrics.html",
])
def test_unknown_route_is_404_json(builtin_server, path):
    assert_error(builtin_server.get(path), 404)


WRONG_METHODS = [
    ("POST", "/"), ("POST", "/v2"), ("POST", "/v2/health/live"), ("PUT", "/v2/health/ready"),
    ("DELETE", "/v2/models"), ("POST", "/v2/models/echo"), ("POST", "/v2/models/echo/ready"),
    ("GET", "/v2/models/echo/infer"), ("PUT", "/v2/models/add_sub/infer"),
    ("DELETE", "/v2/models/echo/versions/1"), ("GET", "/v2/models/echo/versions/1/infer"),
]


@pytest.mark.parametrize("method,path", WRONG_METHODS)
def test_wrong_method_is_405(builtin_server, method, path):
    r = requests.request(method, builtin_server.url + path, timeout=10)
    assert_error(r, 405)


@pytest.mark.parametrize("method,path,allowed", [
    ("POST", "/v2/health/live", "GET"), ("GET", "/v2/models/echo/infer", "POST"),
])
def test_405_lists_the_allowed_method_in_allow_header(builtin_server, method, path, allowed):
    # RFC 9110 15.5.6: "The origin server MUST generate an Allow header field in a 405 response
    # containing a list of the target resource's currently supported methods."
    r = requests.request(method, builtin_server.url + path, timeout=10)
    assert r.status_code == 405
    assert "Allow" in r.headers, f"405 without an Allow header: {dict(r.headers)}"
    assert allowed in [m.strip() for m in r.headers["Allow"].split(",")]


def test_head_response_carries_no_body(builtin_server):
    # RFC 9110 9.3.2 / RFC 9112 6.3: a response to HEAD ends with its header section whatever the
    # status. A body after it is read as the start of the next response on a keep-alive
    # connection.
    with socket.create_connection(("127.0.0.1", builtin_server.port), timeout=5) as s:
        s.sendall(b"HEAD /v2/health/live HTTP/1.1\r\nHost: t\r\n\r\n")
        _, _, _, leftover = read_http_response(s, head_request=True)
        s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(0.2)
        s.settimeout(1)
        following = leftover + s.recv(65536)
    assert following.startswith(b"HTTP/1.1 200"), (
        f"bytes after the HEAD response head are not the next response: {following[:120]!r}")


# ---------------------------------------------------------------------------------------------
# Inference through echo: every datatype, JSON decoding rules, ids and parameters

ROUND_TRIP = {
    "BOOL": [True, False, True],
    "UINT8": [0, 7, 255],
    "UINT16": [0, 7, 65535],
    "UINT32": [0, 7, 4294967295],
    "UINT64": [0, 7, 18446744073709551615],
    "INT8": [-128, 0, 127],
    "INT16": [-32768, 0, 32767],
    "INT32": [-2147483648, 0, 2147483647],
    "INT64": [-9223372036854775808, 0, 9223372036854775807],
    "FP32": [0.1, -1.5, 3.4e38, 1e-30],
    "FP64": [0.1, -2.5e-300, 1.7976931348623157e308, 3.141592653589793],
    "BYTES": ["hello", 'q"b\\n\n', "é☃€", "\u0000x", ""],
}


@pytest.mark.parametrize("datatype", list(ROUND_TRIP))
def test_echo_round_trips_datatype(builtin_server, datatype):
    data = ROUND_TRIP[datatype]
    r = infer(builtin_server, "echo", {"inputs": [tensor("x", datatype, [len(data)], data)]})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["model_name"] == "echo"
    assert body["model_version"] == "1"
    assert len(body["outputs"]) == 1
    out = body["outputs"][0]
    assert out["name"] == "output-0"
    assert out["datatype"] == datatype
    assert out["shape"] == [len(data)]
    if datatype == "FP32":
        np.testing.assert_array_equal(np.array(out["data"], dtype=np.float32),
                                      np.array(data, dtype=np.float32))
    else:
        assert out["data"] == data
        assert [type(v) for v in out["data"]] == [type(v) for v in data]


@pytest.mark.parametrize("datatype", ["FP16", "BF16"])
def test_half_precision_in_json_is_rejected(builtin_server, datatype):
    r = infer(builtin_server, "echo", {"inputs": [tensor("x", datatype, [2], [1.0, 2.0])]})
    assert_error(r, 400, datatype, "inputs[0]")


@pytest.mark.parametrize("shape,data", [
    ([2, 3], [[1, 2, 3], [4, 5, 6]]),
    ([2, 2, 2], [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]),
    ([1, 4], [[1, 2, 3, 4]]),
    ([2, 3], [1, 2, 3, 4, 5, 6]),
    ([], [42]),
    ([0, 5], []),
])
def test_nested_or_flat_data_comes_back_flat(builtin_server, shape, data):
    r = infer(builtin_server, "echo", {"inputs": [tensor("x", "INT64", shape, data)]})
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    assert out["shape"] == shape
    assert out["data"] == np.array(data, dtype=np.int64).flatten().tolist()


def test_echo_returns_every_input_in_order(builtin_server):
    inputs = [tensor("a", "FP64", [1, 2], [[1.5, 2.5]]),
              tensor("b", "BYTES", [1], ["text"]),
              tensor("c", "BOOL", [2, 1], [[False], [True]]),
              tensor("d", "INT8", [3], [-1, 0, 1])]
    r = infer(builtin_server, "echo", {"inputs": inputs})
    assert r.status_code == 200, r.text
    outs = r.json()["outputs"]
    assert [o["name"] for o in outs] == ["output-0", "output-1", "output-2", "output-3"]
    assert [o["datatype"] for o in outs] == ["FP64", "BYTES", "BOOL", "INT8"]
    assert [o["shape"] for o in outs] == [[1, 2], [1], [2, 1], [3]]
    assert [o["data"] for o in outs] == [[1.5, 2.5], ["text"], [False, True], [-1, 0, 1]]


INT_RANGES = {
    "UINT8": (0, 255), "UINT16": (0, 65535), "UINT32": (0, 2**32 - 1), "UINT64": (0, 2**64 - 1),
    "INT8": (-128, 127), "INT16": (-32768, 32767), "INT32": (-2**31, 2**31 - 1),
    "INT64": (-2**63, 2**63 - 1),
}
OUT_OF_RANGE = [(dt, lo - 1) for dt, (lo, hi) in INT_RANGES.items()] + \
               [(dt, hi + 1) for dt, (lo, hi) in INT_RANGES.items()] + [("UINT8", 300)]


@pytest.mark.parametrize("datatype,value", OUT_OF_RANGE)
def test_integer_out_of_range_is_400_naming_the_element(builtin_server, datatype, value):
    r = infer(builtin_server, "echo", {"inputs": [tensor("x", datatype, [2], [1, value])]})
    if not -2**63 <= value < 2**64:
        # The JSON parser (simdjson) reads integer literals into 64 bits; beyond that the whole
        # body is refused, with a hint, before any field is looked at.
        assert_error(r, 400, "integers must fit in 64 bits")
        return
    assert_error(r, 400, "inputs[0].data[1]", datatype, str(value))


@pytest.mark.parametrize("datatype", ["FP64", "FP32"])
def test_float_tensor_integer_literals_beyond_64_bits_need_a_decimal_point(builtin_server,
                                                                          datatype):
    # 2**64 written as an integer literal is refused with a hint; written as a float it works.
    body = '{"inputs": [{"name": "x", "datatype": "%s", "shape": [2], "data": [1, %d]}]}' % (
        datatype, 2**64)
    assert_error(infer(builtin_server, "echo", body), 400, "decimal point or exponent")
    body = body.replace(str(2**64), "1.8446744073709552e19")
    r = infer(builtin_server, "echo", body)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"][1] == pytest.approx(2.0**64, rel=1e-6)


def test_fp32_out_of_range_is_400(builtin_server):
    r = infer(builtin_server, "echo", {"inputs": [tensor("x", "FP32", [2], [1.0, 1e39])]})
    assert_error(r, 400, "inputs[0].data[1]", "FP32")


@pytest.mark.parametrize("datatype,bad", [
    ("INT32", 1.5), ("INT64", "7"), ("UINT8", True), ("INT16", None), ("UINT32", -0.5),
    ("BOOL", 1), ("BOOL", "true"), ("FP32", "1.0"), ("FP64", False), ("BYTES", 1),
    ("BYTES", True), ("INT8", {"v": 1}),
])
def test_value_of_the_wrong_json_type_is_400(builtin_server, datatype, bad):
    r = infer(builtin_server, "echo", {"inputs": [tensor("x", datatype, [2],
                                                         [ROUND_TRIP[datatype][0], bad])]})
    assert_error(r, 400, "inputs[0].data[1]", datatype)


def test_integer_error_shows_the_number_as_sent(builtin_server):
    # 1.0 is refused for INT32; the message must not claim the client sent the integer 1.
    r = infer(builtin_server, "echo", {"inputs": [tensor("x", "INT32", [1], [1.0])]})
    body = assert_error(r, 400, "inputs[0].data[0]", "INT32")
    assert "1.0" in body["error"], body["error"]


@pytest.mark.parametrize("shape,data", [
    ([3], [1, 2]), ([2], [1, 2, 3]), ([2, 2], [[1, 2], [3, 4], [5, 6]]), ([2, 3], [[1, 2, 3]]),
    ([1], []), ([0], [1]),
])
def test_shape_and_data_count_mismatch_is_400(builtin_server, shape, data):
    r = infer(builtin_server, "echo", {"inputs": [tensor("x", "INT32", shape, data)]})
    assert_error(r, 400, "inputs[0]")


def test_bytes_count_mismatch_is_400(builtin_server):
    r = infer(builtin_server, "echo", {"inputs": [tensor("ok", "INT8", [1], [1]),
                                                  tensor("s", "BYTES", [3], ["a", "b"])]})
    assert_error(r, 400, "inputs[1]")


@pytest.mark.parametrize("datatype", ["INT33", "int32", "FLOAT", "STRING", ""])
def test_unknown_datatype_is_400(builtin_server, datatype):
    r = infer(builtin_server, "echo", {"inputs": [tensor("x", datatype, [1], [1])]})
    assert_error(r, 400, "inputs[0].datatype")


@pytest.mark.parametrize("body,where", [
    ({}, "inputs"),
    ({"inputs": {}}, "inputs"),
    ({"inputs": [{"shape": [1], "datatype": "INT32", "data": [1]}]}, "inputs[0].name"),
    ({"inputs": [{"name": "x", "datatype": "INT32", "data": [1]}]}, "inputs[0].shape"),
    ({"inputs": [{"name": "x", "shape": [1], "data": [1]}]}, "inputs[0].datatype"),
    ({"inputs": [{"name": "x", "shape": [1], "datatype": "INT32"}]}, "inputs[0].data"),
    ({"inputs": [{"name": "x", "shape": [-1], "datatype": "INT32", "data": [1]}]},
     "inputs[0].shape"),
    ({"inputs": [{"name": "x", "shape": [1.5], "datatype": "INT32", "data": [1]}]},
     "inputs[0].shape"),
    ({"id": 5, "inputs": []}, "id"),
    ({"parameters": [1], "inputs": []}, "parameters"),
    ({"parameters": {"n": None}, "inputs": []}, "parameters.n"),
    ({"inputs": [], "outputs": [{"nom": "x"}]}, "outputs[0]"),
])
def test_malformed_request_fields_are_400_naming_the_field(builtin_server, body, where):
    assert_error(infer(builtin_server, "echo", body), 400, where)


def test_duplicate_input_names_are_400(builtin_server):
    r = infer(builtin_server, "echo", {"inputs": [tensor("x", "INT8", [1], [1]),
                                                  tensor("x", "INT8", [1], [2])]})
    assert_error(r, 400, "x")


@pytest.mark.parametrize("raw", [
    b'{"inputs": [{"name": "x"', b"", b"not json", b"{'inputs': []}", b'{"inputs": []}}',
    b"[1, 2]", b"\xff\xfe{}", b"null",
])
def test_malformed_json_is_400(builtin_server, raw):
    assert_error(infer(builtin_server, "echo", raw), 400)


def test_request_id_is_echoed(builtin_server):
    rid = 'my-request "7" é'
    r = infer(builtin_server, "echo", {"id": rid, "inputs": [tensor("x", "INT8", [1], [1])]})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == rid


def test_missing_id_gets_a_fresh_uuid(builtin_server):
    body = {"inputs": [tensor("x", "INT8", [1], [1])]}
    ids = [infer(builtin_server, "echo", body).json()["id"] for _ in range(3)]
    for i in ids:
        assert str(uuid.UUID(i)) == i.lower()
    assert len(set(ids)) == 3
    r = infer(builtin_server, "add_sub", add_sub_request([[1] * 16], [[1] * 16]))
    assert uuid.UUID(r.json()["id"])


PARAMS = {"s": "text", "empty": "", "yes": True, "no": False, "i": 3, "neg": -5,
          "i64": 9223372036854775807, "f": 2.0, "g": 0.25, "zero": 0.0, "big": 1e300}


def test_parameters_round_trip_with_their_types(builtin_server):
    body = {"parameters": PARAMS,
            "inputs": [tensor("a", "INT32", [1], [1], parameters={"p": 1.5, "q": "x"}),
                       tensor("b", "INT32", [1], [2]),
                       tensor("c", "INT32", [1], [3], parameters={"k": 7, "t": True})]}
    r = infer(builtin_server, "echo", body)
    assert r.status_code == 200, r.text
    resp = r.json()
    assert resp["parameters"] == PARAMS
    for k, v in PARAMS.items():
        assert type(resp["parameters"][k]) is type(v), (k, resp["parameters"][k])
    outs = outputs_by_name(resp)
    assert outs["output-0"]["parameters"] == {"p": 1.5, "q": "x"}
    assert outs["output-2"]["parameters"] == {"k": 7, "t": True}
    assert type(outs["output-2"]["parameters"]["k"]) is int
    assert not outs["output-1"].get("parameters")


def test_large_unsigned_integer_parameter_round_trips(builtin_server):
    # OIP parameters carry uint64 (InferParameter.uint64_param); a JSON integer above INT64_MAX
    # must not come back as a different, floating-point number.
    value = 18446744073709551615
    r = infer(builtin_server, "echo", {"parameters": {"u": value}, "inputs": []})
    assert r.status_code == 200, r.text
    got = r.json()["parameters"]["u"]
    assert got == value and type(got) is int, f"sent {value}, got back {got!r}"


def test_requested_output_of_echo(builtin_server):
    body = {"inputs": [tensor("a", "INT8", [1], [1]), tensor("b", "INT8", [1], [2])],
            "outputs": [{"name": "output-1"}]}
    r = infer(builtin_server, "echo", body)
    assert r.status_code == 200, r.text
    assert [o["name"] for o in r.json()["outputs"]] == ["output-1"]
    assert r.json()["outputs"][0]["data"] == [2]


def test_unknown_requested_output_of_echo_is_400(builtin_server):
    body = {"inputs": [tensor("a", "INT8", [1], [1])], "outputs": [{"name": "nope"}]}
    assert_error(infer(builtin_server, "echo", body), 400, "nope")


def test_curl_client_infer(builtin_server):
    out = subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code} %{content_type}", "-X", "POST",
         "-H", "Content-Type: application/json",
         "--data-binary", f"@{EXAMPLES.parent / 'requests' / 'add_sub.json'}",
         builtin_server.url + "/v2/models/add_sub/infer"],
        capture_output=True, text=True, timeout=10, check=True).stdout
    body, status = out.rsplit("\n", 1)
    assert status.split()[0] == "200"
    assert status.split()[1].startswith("application/json")
    outs = outputs_by_name(json.loads(body))
    assert outs["OUTPUT0"]["data"] == [i + 1 for i in range(1, 17)]
    assert outs["OUTPUT1"]["data"] == [i - 1 for i in range(1, 17)]


def test_curl_large_body_with_expect_100_continue(builtin_server, tmp_path):
    # curl sends "Expect: 100-continue" for large bodies (here: always, the header is explicit)
    # and stalls a second before sending the body unless the server answers "100 Continue".
    n = 20_000
    data = np.arange(n, dtype=np.float64) * 0.5
    f = tmp_path / "big.json"
    f.write_text(json.dumps({"inputs": [tensor("x", "FP64", [n], data.tolist())]}))
    start = time.monotonic()
    out = subprocess.run(
        ["curl", "-sS", "-H", "Expect: 100-continue", "-H", "Content-Type: application/json",
         "--data-binary", f"@{f}", "-w", "\n%{http_code}",
         builtin_server.url + "/v2/models/echo/infer"],
        capture_output=True, text=True, timeout=10, check=True).stdout
    elapsed = time.monotonic() - start
    body, status = out.rsplit("\n", 1)
    assert status == "200"
    np.testing.assert_array_equal(np.array(json.loads(body)["outputs"][0]["data"]), data)
    assert elapsed < 0.9, f"{elapsed:.2f}s: the server did not answer Expect: 100-continue"


# ---------------------------------------------------------------------------------------------
# add_sub and sleep


def test_add_sub_sum_and_difference(builtin_server):
    rng = np.random.default_rng(1)
    a = rng.integers(-1000, 1000, size=(3, 16), dtype=np.int32)
    b = rng.integers(-1000, 1000, size=(3, 16), dtype=np.int32)
    r = infer(builtin_server, "add_sub", add_sub_request(a, b))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_name"] == "add_sub"
    outs = outputs_by_name(body)
    assert set(outs) == {"OUTPUT0", "OUTPUT1"}
    for name, expected in (("OUTPUT0", a + b), ("OUTPUT1", a - b)):
        assert outs[name]["datatype"] == "INT32"
        assert outs[name]["shape"] == [3, 16]
        assert outs[name]["data"] == expected.flatten().tolist()


def test_add_sub_wraps_around_int32(builtin_server):
    a = np.full((1, 16), 2**31 - 1, dtype=np.int32)
    b = np.full((1, 16), 1, dtype=np.int32)
    b[0, 1] = -(2**31)
    a[0, 1] = 5
    r = infer(builtin_server, "add_sub", add_sub_request(a, b))
    assert r.status_code == 200, r.text
    outs = outputs_by_name(r.json())
    with np.errstate(over="ignore"):
        assert outs["OUTPUT0"]["data"] == (a + b).flatten().tolist()
        assert outs["OUTPUT1"]["data"] == (a - b).flatten().tolist()
    assert outs["OUTPUT0"]["data"][0] == -(2**31)


def test_add_sub_returns_only_the_requested_output(builtin_server):
    a = np.arange(16, dtype=np.int32).reshape(1, 16)
    b = np.ones((1, 16), dtype=np.int32)
    r = infer(builtin_server, "add_sub", add_sub_request(a, b, outputs=["OUTPUT1"]))
    assert r.status_code == 200, r.text
    outs = r.json()["outputs"]
    assert [o["name"] for o in outs] == ["OUTPUT1"]
    assert outs[0]["data"] == (a - b).flatten().tolist()


def test_add_sub_unknown_requested_output_is_400(builtin_server):
    body = add_sub_request([[1] * 16], [[1] * 16], outputs=["OUTPUT0", "OUTPUT9"])
    assert_error(infer(builtin_server, "add_sub", body), 400, "OUTPUT9")


def _add_sub_inputs(**override):
    inputs = {"INPUT0": tensor("INPUT0", "INT32", [1, 16], list(range(16))),
              "INPUT1": tensor("INPUT1", "INT32", [1, 16], [1] * 16)}
    for k, v in override.items():
        if v is None:
            del inputs[k]
        else:
            inputs[k] = v
    return {"inputs": list(inputs.values())}


@pytest.mark.parametrize("body,names", [
    (_add_sub_inputs(INPUT0=tensor("INPUT0", "FP32", [1, 16], [1.0] * 16)), ["INPUT0", "FP32"]),
    (_add_sub_inputs(INPUT1=tensor("INPUT1", "INT64", [1, 16], [1] * 16)), ["INPUT1", "INT64"]),
    (_add_sub_inputs(INPUT0=tensor("INPUT0", "INT32", [2, 8], list(range(16)))), ["INPUT0"]),
    (_add_sub_inputs(INPUT1=tensor("INPUT1", "INT32", [16], [1] * 16)), ["INPUT1"]),
    (_add_sub_inputs(INPUT1=None), ["INPUT1"]),
    (_add_sub_inputs(INPUT0=None), ["INPUT0"]),
    (_add_sub_inputs(INPUT2=tensor("INPUT2", "INT32", [1, 16], [1] * 16)), ["INPUT2"]),
    (_add_sub_inputs(INPUT1=tensor("INPUT1", "INT32", [2, 16], [1] * 32)), ["INPUT"]),
])
def test_add_sub_bad_inputs_are_400_naming_the_input(builtin_server, body, names):
    assert_error(infer(builtin_server, "add_sub", body), 400, *names)


def test_sleep_model_returns_its_input(builtin_server):
    data = [[1.5, -2.25, 3.0], [0.0, 1e-3, 7.5]]
    body = {"inputs": [tensor("INPUT0", "FP32", [2, 3], data)]}
    start = time.monotonic()
    r = infer(builtin_server, "sleep", body)
    elapsed = time.monotonic() - start
    assert r.status_code == 200, r.text
    out = r.json()["outputs"]
    assert [o["name"] for o in out] == ["OUTPUT0"]
    assert out[0]["datatype"] == "FP32" and out[0]["shape"] == [2, 3]
    np.testing.assert_array_equal(np.array(out[0]["data"], dtype=np.float32),
                                  np.array(data, dtype=np.float32).flatten())
    assert elapsed >= 0.001  # default sleep_us 1000


def test_sleep_model_rejects_wrong_input(builtin_server):
    assert_error(infer(builtin_server, "sleep", {"inputs": [tensor("INPUT0", "INT32", [1, 1],
                                                                   [1])]}), 400, "INPUT0")
    assert_error(infer(builtin_server, "sleep", {"inputs": []}), 400, "INPUT0")


# ---------------------------------------------------------------------------------------------
# Models that fail to load, and config.yaml versions

BROKEN = {
    # name: (config.yaml, files, words of which the reason must hold one)
    "torch": ("format: pytorch\n", {"model.pt": "not torchscript"}, ("torchscript", "pytorch")),
    "empty": (None, {"README.txt": "no model here"}, ("no model file",)),
    "zero": ("format: sleep\ninstance_count: 0\n", {}, ("instance_count",)),
    "corrupt": (None, {"model.json": "not a model"}, ("xgboost",)),
}


@pytest.fixture(scope="module")
def repo_server(tmp_path_factory):
    """Built-ins plus a repository holding broken models, a slow sleep model and a version 3."""
    repo = tmp_path_factory.mktemp("repo")
    for name, (config, files, _) in BROKEN.items():
        write_model(repo, name, config, files)
    write_model(repo, "slow", "format: sleep\nparameters:\n  sleep_us: 100000\n")
    write_model(repo, "v3", 'format: echo\nversion: "3"\n')
    s = QuiverServer(["--model-repository", str(repo)])
    try:
        wait_loaded(s, list(BROKEN) + ["slow", "v3", "echo"])
        yield s
    finally:
        s.stop()


@pytest.mark.parametrize("name", list(BROKEN))
@pytest.mark.parametrize("route", ["ready", "metadata", "infer", "versioned_ready"])
def test_failed_model_is_503_with_state_and_reason(repo_server, name, route):
    base = f"/v2/models/{name}"
    if route == "ready":
        r = repo_server.get(base + "/ready")
    elif route == "metadata":
        r = repo_server.get(base)
    elif route == "versioned_ready":
        r = repo_server.get(base + "/versions/1/ready")
    else:
        r = infer(repo_server, name, {"inputs": [tensor("x", "FP32", [1, 1], [1.0])]})
    body = assert_error(r, 503)
    assert body["state"] == "FAILED"
    assert isinstance(body["reason"], str) and body["reason"]
    assert any(w in body["reason"].lower() for w in BROKEN[name][2]), body["reason"]


@pytest.mark.parametrize("name", list(BROKEN))
def test_failed_model_reason_is_in_the_server_log(repo_server, name):
    reason = repo_server.get(f"/v2/models/{name}/ready").json()["reason"]
    lines = [l for l in repo_server.log_lines if name in l and reason in l]
    assert lines, f"reason {reason!r} for {name} not in the log:\n{repo_server.log}"


def test_other_models_keep_serving_next_to_failed_ones(repo_server):
    assert repo_server.get("/v2/health/live").status_code == 200
    for m in ("echo", "add_sub", "sleep", "slow", "v3"):
        assert repo_server.get(f"/v2/models/{m}/ready").status_code == 200, m
    r = infer(repo_server, "add_sub", add_sub_request([[2] * 16], [[1] * 16]))
    assert r.status_code == 200
    assert outputs_by_name(r.json())["OUTPUT1"]["data"] == [1] * 16
    r = infer(repo_server, "slow", {"inputs": [tensor("INPUT0", "FP32", [1, 1], [4.0])]})
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [4.0]


def test_server_not_ready_with_a_failed_model_under_strict_readiness(repo_server):
    r = repo_server.get("/v2/health/ready")
    assert r.status_code == 503
    assert repo_server.get("/v2/health/live").status_code == 200


def test_server_ready_once_loaded_without_strict_readiness(start_server, tmp_path):
    write_model(tmp_path, "zero", "format: sleep\ninstance_count: 0\n")
    s = start_server(["--model-repository", str(tmp_path), "--strict-readiness", "false"])
    r = s.get("/v2/health/ready")
    assert r.status_code == 200 and r.json() == {"ready": True}
    body = assert_error(s.get("/v2/models/zero/ready"), 503)
    assert body["state"] == "FAILED"
    assert s.get("/v2/models/echo/ready").status_code == 200


def test_configured_sleep_us_sets_the_delay(repo_server):
    start = time.monotonic()
    r = infer(repo_server, "slow", {"inputs": [tensor("INPUT0", "FP32", [1, 2], [1.0, 2.0])]})
    assert r.status_code == 200
    assert time.monotonic() - start >= 0.1


def test_version_from_config_yaml(repo_server):
    body = repo_server.get("/v2/models/v3").json()
    assert body["versions"] == ["3"]
    r = infer(repo_server, None, {"inputs": [tensor("x", "INT8", [1], [9])]},
              path="/v2/models/v3/versions/3/infer")
    assert r.status_code == 200, r.text
    assert r.json()["model_version"] == "3"
    assert r.json()["outputs"][0]["data"] == [9]
    assert repo_server.get("/v2/models/v3/versions/3/ready").json() == {"name": "v3",
                                                                       "ready": True}
    r = infer(repo_server, "v3", {"inputs": [tensor("x", "INT8", [1], [9])]})
    assert r.status_code == 200 and r.json()["model_version"] == "3"
    assert_error(repo_server.get("/v2/models/v3/versions/1/ready"), 404)
    assert_error(repo_server.get("/v2/models/v3/versions/1"), 404)


# ---------------------------------------------------------------------------------------------
# HTTP limits, timeouts and keep-alive

BODY_LIMIT = 1000
HEADER_LIMIT = 2000
READ_TIMEOUT = 0.5
KEEP_ALIVE = 0.5


@pytest.fixture(scope="module")
def limited_server():
    s = QuiverServer(["--max-body-bytes", str(BODY_LIMIT), "--max-header-bytes", str(HEADER_LIMIT),
                      "--read-timeout", str(READ_TIMEOUT), "--timeout-keep-alive", str(KEEP_ALIVE)])
    try:
        s.wait_ready()
        yield s
    finally:
        s.stop()


def echo_body_of_size(n):
    body = json.dumps({"inputs": [tensor("x", "INT8", [1], [5])]}).encode()
    assert len(body) <= n
    return body + b" " * (n - len(body))


def test_body_at_the_limit_is_accepted(limited_server):
    r = infer(limited_server, "echo", echo_body_of_size(BODY_LIMIT))
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == [5]


@pytest.mark.parametrize("size", [BODY_LIMIT + 1, 2_000_000])
def test_body_over_the_limit_is_413(limited_server, size):
    r = infer(limited_server, "echo", echo_body_of_size(size))
    assert_error(r, 413)


def test_chunked_body_over_the_limit_is_413(limited_server):
    body = echo_body_of_size(BODY_LIMIT + 500)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (body[:700], body[700:]))
    status, headers, payload, _ = raw_request(
        limited_server.port,
        b"POST /v2/models/echo/infer HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n")
    assert status == 413
    assert headers["content-type"].startswith("application/json")
    assert "error" in json.loads(payload)


def test_chunked_body_under_the_limit_is_served(limited_server):
    body = json.dumps({"inputs": [tensor("x", "INT16", [2], [3, -4])]}).encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (body[:10], body[10:]))
    status, _, payload, _ = raw_request(
        limited_server.port,
        b"POST /v2/models/echo/infer HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunks + b"0\r\n\r\n")
    assert status == 200, payload
    assert json.loads(payload)["outputs"][0]["data"] == [3, -4]


def test_headers_over_the_limit_are_431(limited_server):
    r = limited_server.get("/v2/health/live", headers={"X-Padding": "a" * (HEADER_LIMIT + 100)})
    assert_error(r, 431)
    r = limited_server.get("/v2/health/live", headers={"X-Padding": "a" * 500})
    assert r.status_code == 200


@pytest.mark.parametrize("data", [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost t\r\n\r\n",
    b"POST /v2/models/echo/infer HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
])
def test_malformed_http_is_400(limited_server, data):
    status, headers, payload, _ = raw_request(limited_server.port, data)
    assert status == 400, payload
    assert headers["content-type"].startswith("application/json")
    assert json.loads(payload)["error"]


def test_stalled_body_gets_408_within_the_read_timeout(limited_server):
    status, headers, payload, elapsed = raw_request(
        limited_server.port,
        b"POST /v2/models/echo/infer HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: 200\r\n\r\n{\"inputs\": [")
    assert status == 408, payload
    assert headers["content-type"].startswith("application/json")
    assert json.loads(payload)["error"]
    assert READ_TIMEOUT * 0.8 <= elapsed < READ_TIMEOUT + 1.0, elapsed


def test_trickled_headers_get_408_within_the_read_timeout(limited_server):
    # A client that keeps sending a byte now and then must not hold the connection forever.
    with socket.create_connection(("127.0.0.1", limited_server.port), timeout=5) as s:
        start = time.monotonic()
        s.sendall(b"POST /v2/models/echo/infer HTTP/1.1\r\n")
        for _ in range(60):  # one header line every 50 ms until the server answers
            if select.select([s], [], [], 0.05)[0]:
                break
            s.sendall(b"X-A: b\r\n")
        status, _, _, _ = read_http_response(s)
        assert status == 408
        closed_after = wait_until_closed(s, 3)
    assert closed_after is not None
    assert time.monotonic() - start < READ_TIMEOUT + 2.0


def test_idle_keep_alive_connection_is_closed(limited_server):
    with socket.create_connection(("127.0.0.1", limited_server.port), timeout=5) as s:
        s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\n\r\n")
        status, headers, _, _ = read_http_response(s)
        assert status == 200
        assert headers.get("connection", "").lower() != "close"
        closed_after = wait_until_closed(s, KEEP_ALIVE + 2.0)
    assert closed_after is not None, "idle connection still open after the keep-alive timeout"
    assert closed_after >= KEEP_ALIVE * 0.8


def test_connection_without_a_request_is_closed_after_keep_alive(limited_server):
    with socket.create_connection(("127.0.0.1", limited_server.port), timeout=5) as s:
        closed_after = wait_until_closed(s, KEEP_ALIVE + 2.0)
    assert closed_after is not None
    assert closed_after >= KEEP_ALIVE * 0.8


def test_default_keep_alive_outlasts_a_short_pause(builtin_server):
    with socket.create_connection(("127.0.0.1", builtin_server.port), timeout=5) as s:
        s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_http_response(s)[0] == 200
        time.sleep(KEEP_ALIVE + 0.3)
        s.sendall(b"GET /v2/health/ready HTTP/1.1\r\nHost: t\r\n\r\n")
        status, _, body, _ = read_http_response(s)
    assert status == 200 and json.loads(body) == {"ready": True}


def test_http_1_0_request_is_answered_and_closed(builtin_server):
    with socket.create_connection(("127.0.0.1", builtin_server.port), timeout=5) as s:
        s.sendall(b"GET /v2/health/live HTTP/1.0\r\n\r\n")
        status, _, body, _ = read_http_response(s)
        assert status == 200 and json.loads(body) == {"live": True}
        assert wait_until_closed(s, 2.0) is not None


def test_many_requests_on_one_socket(builtin_server):
    body = json.dumps(add_sub_request([[3] * 16], [[1] * 16])).encode()
    with socket.create_connection(("127.0.0.1", builtin_server.port), timeout=5) as s:
        for i in range(150):
            if i % 3 == 0:
                s.sendall(b"GET /v2/models/echo/ready HTTP/1.1\r\nHost: t\r\n\r\n")
                status, _, payload, left = read_http_response(s)
                assert status == 200 and json.loads(payload)["ready"] is True
            else:
                s.sendall(b"POST /v2/models/add_sub/infer HTTP/1.1\r\nHost: t\r\n"
                          b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                          % (len(body), body))
                status, headers, payload, left = read_http_response(s)
                assert status == 200, payload
                assert headers.get("connection", "").lower() != "close"
                assert outputs_by_name(json.loads(payload))["OUTPUT0"]["data"] == [4] * 16
            assert left == b""


def test_requests_session_reuses_one_connection(builtin_server):
    with requests.Session() as session:
        for i in range(100):
            r = session.post(builtin_server.url + "/v2/models/echo/infer", timeout=10,
                             json={"inputs": [tensor("x", "INT32", [1], [i])]})
            assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [i]
        pools = list(session.get_adapter(builtin_server.url).poolmanager.pools._container.values())
    assert len(pools) == 1
    assert pools[0].num_connections == 1, f"{pools[0].num_connections} connections for 100 requests"


def test_pipelined_requests_are_answered_in_order(builtin_server):
    slow = json.dumps({"inputs": [tensor("INPUT0", "FP32", [1, 1], [2.0])]}).encode()
    fast = json.dumps({"inputs": [tensor("x", "INT8", [1], [1])]}).encode()
    post = (b"POST /v2/models/%s/infer HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s")
    with socket.create_connection(("127.0.0.1", builtin_server.port), timeout=5) as s:
        s.sendall(post % (b"sleep", len(slow), slow) + post % (b"echo", len(fast), fast)
                  + b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\n\r\n")
        answers = []
        left = b""
        for _ in range(3):
            status, _, payload, left2 = read_http_response(_Prefixed(s, left))
            left = left2
            answers.append((status, json.loads(payload)))
    assert [a[0] for a in answers] == [200, 200, 200]
    assert answers[0][1]["model_name"] == "sleep"
    assert answers[1][1]["model_name"] == "echo"
    assert answers[2][1] == {"live": True}


class _Prefixed:
    """A socket whose first recv returns bytes already read past the previous response."""

    def __init__(self, sock, prefix):
        self.sock, self.prefix = sock, prefix

    def recv(self, n):
        if self.prefix:
            p, self.prefix = self.prefix, b""
            return p
        return self.sock.recv(n)


# ---------------------------------------------------------------------------------------------
# Concurrency


def _hammer(server, make_body, check, threads=32, per_thread=50):
    def worker(t):
        errors = []
        with requests.Session() as session:
            for i in range(per_thread):
                body, expect = make_body(t, i)
                r = session.post(server.url + body[0], json=body[1], timeout=30)
                if r.status_code != 200 or not check(r.json(), expect):
                    errors.append((t, i, r.status_code, r.text[:200]))
        return errors

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(worker, range(threads)))
    errors = [e for res in results for e in res]
    assert not errors, f"{len(errors)} wrong answers, first: {errors[:3]}"


def test_32_threads_x_50_requests_add_sub(builtin_server):
    def make(t, i):
        a = np.arange(16, dtype=np.int32) * (t + 1) + i
        b = np.full(16, t * 1000 + i, dtype=np.int32)
        return ("/v2/models/add_sub/infer", add_sub_request([a], [b])), (a + b, a - b)

    def check(resp, expect):
        outs = outputs_by_name(resp)
        return (outs["OUTPUT0"]["data"] == expect[0].tolist()
                and outs["OUTPUT1"]["data"] == expect[1].tolist())

    _hammer(builtin_server, make, check)


def test_32_threads_x_50_requests_sleep(builtin_server):
    def make(t, i):
        value = float(t * 100 + i)
        body = {"id": f"{t}-{i}", "inputs": [tensor("INPUT0", "FP32", [1, 2], [value, -value])]}
        return ("/v2/models/sleep/infer", body), (f"{t}-{i}", [value, -value])

    def check(resp, expect):
        return resp["id"] == expect[0] and resp["outputs"][0]["data"] == expect[1]

    _hammer(builtin_server, make, check)


def test_model_instances_run_in_parallel(start_server, tmp_path):
    write_model(tmp_path, "slow4", "format: sleep\ninstance_count: 4\nparameters:\n"
                                   "  sleep_us: 100000\n")
    s = start_server(["--model-repository", str(tmp_path), "--builtin-models", "none"])
    body = {"inputs": [tensor("INPUT0", "FP32", [1, 1], [1.0])]}
    infer(s, "slow4", body)  # warm-up
    barrier = threading.Barrier(8)

    def one(_):
        barrier.wait()
        return infer(s, "slow4", body).status_code

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(one, range(8)))
    elapsed = time.monotonic() - start
    assert codes == [200] * 8
    # 8 requests x 100 ms on 4 instances: two rounds, not eight.
    assert 0.19 <= elapsed < 0.5, f"8 concurrent requests took {elapsed:.3f}s"


# ---------------------------------------------------------------------------------------------
# SIGTERM


def test_sigterm_drains_in_flight_requests_then_exits_0(start_server, tmp_path):
    write_model(tmp_path, "slow", "format: sleep\nparameters:\n  sleep_us: 500000\n")
    s = start_server(["--model-repository", str(tmp_path)])
    idle = socket.create_connection(("127.0.0.1", s.port), timeout=5)  # an idle keep-alive client
    result = {}

    def call():
        try:
            result["r"] = infer(s, "slow", {"inputs": [tensor("INPUT0", "FP32", [1, 2],
                                                              [1.0, 2.0])]})
        except requests.RequestException as e:
            result["error"] = e

    t = threading.Thread(target=call)
    start = time.monotonic()
    t.start()
    time.sleep(0.15)
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.1)
    assert t.is_alive(), "the request finished before SIGTERM; cannot test draining"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", s.port), timeout=2).close()
    t.join(10)
    assert "error" not in result, f"in-flight request failed: {result.get('error')}\n{s.log}"
    r = result["r"]
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == [1.0, 2.0]
    assert time.monotonic() - start >= 0.5
    s.proc.wait(5)  # the idle keep-alive connection must not hold the process open
    idle.close()
    assert s.stop() == 0, s.log
