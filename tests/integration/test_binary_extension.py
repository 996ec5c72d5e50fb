"""Binary tensor data extension on POST /v2/models/{m}/infer, against a real `quiver serve`.

A request or response body is a JSON header followed by raw little-endian tensor bytes; the header
`Inference-Header-Content-Length` gives the JSON length. Inputs and outputs with
`parameters.binary_data_size` take their bytes from the binary section in order. Expected answers
come from the extension's text and KServe's tests (test_fp16_input_as_binary_data,
test_fp16_output_not_binary_data, test_binary_data_parameter_precedence; shared/reference/kserve.md
1.1, 4). Responses are checked byte for byte where the protocol fixes the bytes.
"""
import concurrent.futures
import json
import re
import socket
import struct
import subprocess

import numpy as np
import pytest
import requests

HEADER = "Inference-Header-Content-Length"


# ---------------------------------------------------------------------------------------------
# Helpers


def bytes_tensor(elements):
    """BYTES elements in the binary encoding: a 4-byte little-endian length, then the bytes."""
    return b"".join(struct.pack("<I", len(e)) + e for e in elements)


def binary_input(name, datatype, shape, raw, **params):
    return {"name": name, "datatype": datatype, "shape": list(shape),
            "parameters": {"binary_data_size": len(raw), **params}}


def json_input(name, datatype, shape, data):
    return {"name": name, "datatype": datatype, "shape": list(shape), "data": data}


def post_binary(server, model, header, binary=b"", header_name=HEADER, header_len=None,
                content_type="application/octet-stream"):
    """POSTs JSON `header` (dict or bytes) followed by `binary` with the length header set."""
    head = header if isinstance(header, bytes) else json.dumps(header).encode()
    headers = {"Content-Type": content_type,
               header_name: str(len(head)) if header_len is None else header_len}
    return requests.post(f"{server.url}/v2/models/{model}/infer", data=head + binary,
                         headers=headers, timeout=10)


def split_binary_response(r):
    """Checks the framing of a response carrying binary outputs; returns (json, binary tail)."""
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/octet-stream", r.headers
    assert HEADER in r.headers, f"no {HEADER} in {dict(r.headers)}"
    n = int(r.headers[HEADER])
    assert 0 < n <= len(r.content)
    head = json.loads(r.content[:n])
    return head, r.content[n:]


def outputs_by_name(head):
    return {o["name"]: o for o in head["outputs"]}


def assert_error(r, status, *fragments):
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text}"
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    body = r.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    for f in fragments:
        assert f.lower() in body["error"].lower(), f"{f!r} not in error {body['error']!r}"
    return body


def le(array, dtype):
    """The little-endian bytes of `array` as `dtype`."""
    return np.asarray(array, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()


A = np.arange(32, dtype=np.int32).reshape(2, 16) * 1000 - 7
B = np.array([[-(2**31)] + list(range(15))] * 2, dtype=np.int32)


def add_sub_binary_header(**request_params):
    header = {"inputs": [binary_input("INPUT0", "INT32", A.shape, le(A, "i4")),
                         binary_input("INPUT1", "INT32", B.shape, le(B, "i4"))]}
    if request_params:
        header["parameters"] = request_params
    return header


# ---------------------------------------------------------------------------------------------
# Server metadata


def test_server_metadata_lists_the_extensions(builtin_server):
    extensions = builtin_server.get("/v2").json()["extensions"]
    assert "binary_tensor_data" in extensions
    assert "model_repository" in extensions


# ---------------------------------------------------------------------------------------------
# Binary inputs, JSON outputs


def test_binary_inputs_json_outputs(builtin_server):
    r = post_binary(builtin_server, "add_sub", add_sub_binary_header(),
                    le(A, "i4") + le(B, "i4"))
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert HEADER not in r.headers
    outs = outputs_by_name(r.json())
    with np.errstate(over="ignore"):
        assert outs["OUTPUT0"]["data"] == (A + B).flatten().tolist()
        assert outs["OUTPUT1"]["data"] == (A - B).flatten().tolist()
    assert outs["OUTPUT0"]["shape"] == [2, 16]
    assert "binary_data_size" not in (outs["OUTPUT0"].get("parameters") or {})


@pytest.mark.parametrize("name", ["inference-header-content-length",
                                  "INFERENCE-HEADER-CONTENT-LENGTH",
                                  "Inference-header-content-Length"])
def test_length_header_name_is_case_insensitive(builtin_server, name):
    raw = le([1.5, -2.0], "f4")
    r = post_binary(builtin_server, "echo", {"inputs": [binary_input("x", "FP32", [2], raw)]},
                    raw, header_name=name)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == [1.5, -2.0]


@pytest.mark.parametrize("datatype,values", [
    ("BOOL", [True, False, True]),
    ("UINT8", [0, 200, 255]), ("INT8", [-128, 5, 127]),
    ("UINT16", [1, 65535]), ("INT16", [-32768, 258]),
    ("UINT32", [2**32 - 1, 1]), ("INT32", [-(2**31), 16909060]),
    ("UINT64", [2**64 - 1, 2**40 + 3]), ("INT64", [-(2**63), 2**62 + 1]),
    ("FP32", [0.5, -3.25, 1e-3]), ("FP64", [0.1, -2.5e-300]),
])
def test_binary_input_is_read_little_endian(builtin_server, datatype, values):
    np_type = {"BOOL": "?", "UINT8": "u1", "INT8": "i1", "UINT16": "u2", "INT16": "i2",
               "UINT32": "u4", "INT32": "i4", "UINT64": "u8", "INT64": "i8", "FP32": "f4",
               "FP64": "f8"}[datatype]
    raw = le(values, np_type)
    r = post_binary(builtin_server, "echo",
                    {"inputs": [binary_input("x", datatype, [len(values)], raw)]}, raw)
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    assert out["datatype"] == datatype and out["shape"] == [len(values)]
    if datatype == "FP32":
        assert np.array(out["data"], dtype=np.float32).tolist() == \
            np.array(values, dtype=np.float32).tolist()
    else:
        assert out["data"] == values


def test_utf8_bytes_input_comes_back_as_json_strings(builtin_server):
    elements = ["héllo".encode(), b"", b'q"\\', "☃".encode()]
    raw = bytes_tensor(elements)
    r = post_binary(builtin_server, "echo", {"inputs": [binary_input("s", "BYTES", [2, 2], raw)]},
                    raw)
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    assert out["datatype"] == "BYTES" and out["shape"] == [2, 2]
    assert out["data"] == ["héllo", "", 'q"\\', "☃"]


def test_mixed_json_and_binary_inputs(builtin_server):
    f32 = np.array([[1.25, -8.0, 3.5]], dtype=np.float32)
    i64 = np.array([2**40, -1], dtype=np.int64)
    header = {"inputs": [json_input("a", "INT8", [2], [-3, 4]),
                         binary_input("b", "FP32", f32.shape, le(f32, "f4")),
                         json_input("c", "BYTES", [1], ["json string"]),
                         binary_input("d", "INT64", i64.shape, le(i64, "i8")),
                         json_input("e", "BOOL", [1], [True])]}
    r = post_binary(builtin_server, "echo", header, le(f32, "f4") + le(i64, "i8"))
    assert r.status_code == 200, r.text
    outs = r.json()["outputs"]
    assert [o["name"] for o in outs] == [f"output-{i}" for i in range(5)]
    assert [o["data"] for o in outs] == [[-3, 4], [1.25, -8.0, 3.5], ["json string"],
                                        [2**40, -1], [True]]
    assert outs[1]["shape"] == [1, 3]


def test_binary_inputs_are_consumed_in_input_order(builtin_server):
    # Two inputs of one size: swapped bytes would give swapped answers.
    a = np.full((1, 16), 100, dtype=np.int32)
    b = np.arange(16, dtype=np.int32).reshape(1, 16)
    header = {"inputs": [binary_input("INPUT1", "INT32", b.shape, le(b, "i4")),
                         binary_input("INPUT0", "INT32", a.shape, le(a, "i4"))]}
    r = post_binary(builtin_server, "add_sub", header, le(b, "i4") + le(a, "i4"))
    assert r.status_code == 200, r.text
    outs = outputs_by_name(r.json())
    assert outs["OUTPUT1"]["data"] == (a - b).flatten().tolist()


def test_json_only_body_with_the_length_header(builtin_server):
    # Clients such as tritonclient send the header even when nothing is binary.
    header = {"inputs": [json_input("x", "UINT16", [2], [9, 65535])]}
    r = post_binary(builtin_server, "echo", header, b"")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json()["outputs"][0]["data"] == [9, 65535]


def test_chunked_binary_body(builtin_server):
    raw = le([1, -2, 3, -4], "i4")
    head = json.dumps({"inputs": [binary_input("x", "INT32", [4], raw)],
                       "parameters": {"binary_data_output": True}}).encode()
    body = head + raw
    cut = len(head) + 3  # one chunk boundary inside the JSON, one inside the tensor
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (body[:5], body[5:cut], body[cut:]))
    with socket.create_connection(("127.0.0.1", builtin_server.port), timeout=5) as s:
        s.sendall(b"POST /v2/models/echo/infer HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                  b"Transfer-Encoding: chunked\r\n%s: %d\r\n\r\n" % (HEADER.encode(), len(head))
                  + chunks + b"0\r\n\r\n")
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    top, payload = answer.split(b"\r\n\r\n", 1)
    assert top.startswith(b"HTTP/1.1 200"), answer
    n = int(re.search(rb"(?i)inference-header-content-length: *(\d+)", top).group(1))
    assert json.loads(payload[:n])["outputs"][0]["parameters"]["binary_data_size"] == 16
    assert payload[n:] == raw


def test_curl_sends_a_binary_request(builtin_server, tmp_path):
    raw = le([7, -7, 65536], "i4")
    head = json.dumps({"inputs": [binary_input("x", "INT32", [3], raw)]}).encode()
    f = tmp_path / "body.bin"
    f.write_bytes(head + raw)
    out = subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code}", "-H", "Content-Type: application/octet-stream",
         "-H", f"{HEADER}: {len(head)}", "--data-binary", f"@{f}",
         builtin_server.url + "/v2/models/echo/infer"],
        capture_output=True, text=True, timeout=10, check=True).stdout
    body, status = out.rsplit("\n", 1)
    assert status == "200", body
    assert json.loads(body)["outputs"][0]["data"] == [7, -7, 65536]


# ---------------------------------------------------------------------------------------------
# Binary outputs


def test_all_outputs_binary_exact_bytes(builtin_server):
    r = post_binary(builtin_server, "add_sub", add_sub_binary_header(binary_data_output=True),
                    le(A, "i4") + le(B, "i4"))
    head, tail = split_binary_response(r)
    assert int(r.headers["Content-Length"]) == len(r.content)
    assert [o["name"] for o in head["outputs"]] == ["OUTPUT0", "OUTPUT1"]
    for o in head["outputs"]:
        assert "data" not in o, o
        assert o["parameters"]["binary_data_size"] == 2 * 16 * 4
        assert o["datatype"] == "INT32" and o["shape"] == [2, 16]
    with np.errstate(over="ignore"):
        assert tail == le(A + B, "i4") + le(A - B, "i4")


def test_binary_output_order_follows_requested_outputs(builtin_server):
    header = add_sub_binary_header(binary_data_output=True)
    header["outputs"] = [{"name": "OUTPUT1"}, {"name": "OUTPUT0"}]
    r = post_binary(builtin_server, "add_sub", header, le(A, "i4") + le(B, "i4"))
    head, tail = split_binary_response(r)
    names = [o["name"] for o in head["outputs"]]
    expected = {"OUTPUT0": le(A + B, "i4"), "OUTPUT1": le(A - B, "i4")}
    # The binary section follows the order of the outputs in the JSON header, whatever it is.
    assert sorted(names) == ["OUTPUT0", "OUTPUT1"]
    assert tail == b"".join(expected[n] for n in names)


def test_only_requested_output_in_binary(builtin_server):
    header = add_sub_binary_header()
    header["outputs"] = [{"name": "OUTPUT1", "parameters": {"binary_data": True}}]
    r = post_binary(builtin_server, "add_sub", header, le(A, "i4") + le(B, "i4"))
    head, tail = split_binary_response(r)
    assert [o["name"] for o in head["outputs"]] == ["OUTPUT1"]
    assert head["outputs"][0]["parameters"]["binary_data_size"] == 128
    with np.errstate(over="ignore"):
        assert tail == le(A - B, "i4")


@pytest.mark.parametrize("request_level,per_output,expect_binary", [
    # KServe test_binary_data_parameter_precedence: a per-output binary_data beats the request's
    # binary_data_output, in both directions.
    (True, {"OUTPUT0": False}, {"OUTPUT0": False, "OUTPUT1": True}),
    (False, {"OUTPUT1": True}, {"OUTPUT0": False, "OUTPUT1": True}),
    (None, {"OUTPUT0": True, "OUTPUT1": False}, {"OUTPUT0": True, "OUTPUT1": False}),
    (True, {"OUTPUT0": True, "OUTPUT1": False}, {"OUTPUT0": True, "OUTPUT1": False}),
    (True, {}, {"OUTPUT0": True, "OUTPUT1": True}),
    (False, {"OUTPUT0": True, "OUTPUT1": True}, {"OUTPUT0": True, "OUTPUT1": True}),
])
def test_binary_data_parameter_precedence(builtin_server, request_level, per_output,
                                          expect_binary):
    header = (add_sub_binary_header() if request_level is None
              else add_sub_binary_header(binary_data_output=request_level))
    # Both outputs are requested (a list of outputs limits the answer to those listed).
    header["outputs"] = [{"name": n, "parameters": {"binary_data": per_output[n]}}
                         if n in per_output else {"name": n} for n in ("OUTPUT0", "OUTPUT1")]
    r = post_binary(builtin_server, "add_sub", header, le(A, "i4") + le(B, "i4"))
    head, tail = split_binary_response(r)
    outs = outputs_by_name(head)
    with np.errstate(over="ignore"):
        values = {"OUTPUT0": A + B, "OUTPUT1": A - B}
    expected_tail = b""
    for o in head["outputs"]:
        name = o["name"]
        if expect_binary[name]:
            assert "data" not in o, o
            assert o["parameters"]["binary_data_size"] == 128
            expected_tail += le(values[name], "i4")
        else:
            assert o["data"] == values[name].flatten().tolist()
            assert "binary_data_size" not in (o.get("parameters") or {})
    assert set(outs) == set(expect_binary)
    assert tail == expected_tail


def test_binary_output_for_a_json_request(builtin_server):
    # A plain JSON request may ask for binary outputs; the answer is then binary.
    body = {"inputs": [json_input("x", "INT16", [3], [1, -2, 300])],
            "outputs": [{"name": "output-0", "parameters": {"binary_data": True}}]}
    r = requests.post(builtin_server.url + "/v2/models/echo/infer", json=body, timeout=10)
    head, tail = split_binary_response(r)
    assert head["outputs"][0]["parameters"]["binary_data_size"] == 6
    assert tail == b"\x01\x00\xfe\xff\x2c\x01"


def test_bool_binary_output_is_one_byte_per_element(builtin_server):
    body = {"inputs": [json_input("b", "BOOL", [2, 2], [[True, False], [False, True]])],
            "parameters": {"binary_data_output": True}}
    r = requests.post(builtin_server.url + "/v2/models/echo/infer", json=body, timeout=10)
    head, tail = split_binary_response(r)
    assert head["outputs"][0]["parameters"]["binary_data_size"] == 4
    assert tail == b"\x01\x00\x00\x01"


@pytest.mark.parametrize("datatype,shape", [("INT32", [0]), ("BYTES", [0])])
def test_empty_binary_output_still_makes_a_binary_response(builtin_server, datatype, shape):
    # An output announced with binary_data_size (here 0) is a binary response: a client finds
    # the JSON through Inference-Header-Content-Length, whatever the size of the binary part.
    header = {"inputs": [binary_input("e", datatype, shape, b"")],
              "parameters": {"binary_data_output": True}}
    head, tail = split_binary_response(post_binary(builtin_server, "echo", header, b""))
    out = head["outputs"][0]
    assert out["shape"] == shape and "data" not in out
    assert out["parameters"]["binary_data_size"] == 0
    assert tail == b""


def test_binary_data_false_everywhere_gives_json(builtin_server):
    header = add_sub_binary_header(binary_data_output=False)
    r = post_binary(builtin_server, "add_sub", header, le(A, "i4") + le(B, "i4"))
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert HEADER not in r.headers
    assert all("data" in o for o in r.json()["outputs"])


def test_fp16_round_trip_through_echo(builtin_server):
    # KServe test_fp16_input_as_binary_data: FP16 travels only in binary.
    values = np.array([[0.0, -0.0, 1.0, -2.5], [65504.0, 6.1e-05, 5.96e-08, np.inf]],
                      dtype=np.float16)
    raw = le(values, "f2")
    header = {"inputs": [binary_input("h", "FP16", values.shape, raw)],
              "parameters": {"binary_data_output": True}}
    head, tail = split_binary_response(post_binary(builtin_server, "echo", header, raw))
    out = head["outputs"][0]
    assert out["datatype"] == "FP16" and out["shape"] == [2, 4]
    assert out["parameters"]["binary_data_size"] == 16
    assert tail == raw
    np.testing.assert_array_equal(np.frombuffer(tail, dtype="<f2").reshape(2, 4), values)


def test_bf16_round_trip_through_echo(builtin_server):
    raw = struct.pack("<4H", 0x3F80, 0xC020, 0x7F80, 0x0001)  # 1.0, -2.5, inf, tiny
    header = {"inputs": [binary_input("h", "BF16", [4], raw)],
              "parameters": {"binary_data_output": True}}
    head, tail = split_binary_response(post_binary(builtin_server, "echo", header, raw))
    assert head["outputs"][0]["datatype"] == "BF16"
    assert tail == raw


@pytest.mark.parametrize("datatype", ["FP16", "BF16"])
def test_half_precision_output_as_json_is_400(builtin_server, datatype):
    # KServe test_fp16_output_not_binary_data: half floats cannot be written as JSON.
    raw = struct.pack("<2H", 0x3C00, 0x4000)
    r = post_binary(builtin_server, "echo", {"inputs": [binary_input("h", datatype, [2], raw)]},
                    raw)
    assert_error(r, 400, datatype)


@pytest.mark.parametrize("datatype", ["FP16", "BF16"])
def test_half_precision_json_data_in_a_binary_request_is_400(builtin_server, datatype):
    raw = le([1.0], "f4")
    header = {"inputs": [binary_input("f", "FP32", [1], raw),
                         json_input("h", datatype, [2], [1.0, 2.0])],
              "parameters": {"binary_data_output": True}}
    assert_error(post_binary(builtin_server, "echo", header, raw), 400, datatype)


def test_non_utf8_bytes_round_trip_in_binary(builtin_server):
    elements = [b"\xff\x00", b"", b"\x00\x00\x00", bytes(range(256)), b"plain"]
    raw = bytes_tensor(elements)
    header = {"inputs": [binary_input("s", "BYTES", [5], raw)],
              "outputs": [{"name": "output-0", "parameters": {"binary_data": True}}]}
    head, tail = split_binary_response(post_binary(builtin_server, "echo", header, raw))
    out = head["outputs"][0]
    assert out["datatype"] == "BYTES" and out["shape"] == [5]
    assert out["parameters"]["binary_data_size"] == len(raw)
    assert tail == raw


def test_non_utf8_bytes_output_as_json_is_400_mentioning_binary(builtin_server):
    raw = bytes_tensor([b"ok", b"\xff\x00"])
    r = post_binary(builtin_server, "echo", {"inputs": [binary_input("s", "BYTES", [2], raw)]},
                    raw)
    assert_error(r, 400, "binary")


def test_large_fp32_tensor_round_trip(builtin_server):
    values = np.random.default_rng(7).standard_normal((64, 1000)).astype(np.float32)
    raw = le(values, "f4")
    header = {"inputs": [binary_input("big", "FP32", values.shape, raw)],
              "parameters": {"binary_data_output": True}}
    head, tail = split_binary_response(post_binary(builtin_server, "echo", header, raw))
    out = head["outputs"][0]
    assert out["shape"] == [64, 1000]
    assert out["parameters"]["binary_data_size"] == 256000
    assert tail == raw


def test_echo_copies_request_parameters_next_to_binary_outputs(builtin_server):
    raw = le([3], "u1")
    header = {"inputs": [binary_input("x", "UINT8", [1], raw)],
              "parameters": {"binary_data_output": True, "tag": "t-1", "n": 4}}
    head, tail = split_binary_response(post_binary(builtin_server, "echo", header, raw))
    assert head["parameters"]["tag"] == "t-1" and head["parameters"]["n"] == 4
    assert tail == b"\x03"


def test_binary_response_framing_on_a_raw_socket(builtin_server):
    # Two binary requests on one keep-alive connection: the framing (Content-Length, header
    # length) must let a client find each response exactly.
    raw = le([1, 2, 3, 4], "i8")
    head = json.dumps({"inputs": [binary_input("x", "INT64", [2, 2], raw)],
                       "parameters": {"binary_data_output": True}}).encode()
    request = (b"POST /v2/models/echo/infer HTTP/1.1\r\nHost: t\r\n"
               b"Content-Type: application/octet-stream\r\n"
               b"inference-header-content-length: %d\r\nContent-Length: %d\r\n\r\n"
               % (len(head), len(head) + len(raw))) + head + raw
    with socket.create_connection(("127.0.0.1", builtin_server.port), timeout=5) as s:
        s.sendall(request + request)
        buf = b""
        responses = []
        while len(responses) < 2:
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(65536)
                assert chunk, f"connection closed: {buf!r}"
                buf += chunk
            top, buf = buf.split(b"\r\n\r\n", 1)
            lines = top.decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip()
                       for k, v in (l.split(":", 1) for l in lines[1:])}
            length = int(headers["content-length"])
            while len(buf) < length:
                chunk = s.recv(65536)
                assert chunk
                buf += chunk
            responses.append((lines[0], headers, buf[:length]))
            buf = buf[length:]
    assert buf == b""
    for status_line, headers, body in responses:
        assert status_line.startswith("HTTP/1.1 200"), (status_line, body)
        assert headers["content-type"] == "application/octet-stream"
        n = int(headers["inference-header-content-length"])
        out = json.loads(body[:n])["outputs"][0]
        assert out["parameters"]["binary_data_size"] == 32 and "data" not in out
        assert body[n:] == raw


def test_concurrent_binary_requests_get_their_own_bytes(builtin_server):
    # Many clients with tensors of different sizes at once: every answer carries exactly the
    # bytes its own request sent.
    def worker(t):
        rng = np.random.default_rng(t)
        wrong = []
        with requests.Session() as session:
            for i in range(25):
                values = rng.standard_normal(int(rng.integers(1, 5000))).astype(np.float64)
                raw = le(values, "f8")
                head = json.dumps({"id": f"{t}-{i}",
                                   "inputs": [binary_input("v", "FP64", values.shape, raw)],
                                   "parameters": {"binary_data_output": True}}).encode()
                r = session.post(builtin_server.url + "/v2/models/echo/infer", data=head + raw,
                                 headers={HEADER: str(len(head))}, timeout=10)
                n = int(r.headers.get(HEADER, "0"))
                if (r.status_code != 200 or json.loads(r.content[:n])["id"] != f"{t}-{i}"
                        or r.content[n:] != raw):
                    wrong.append((t, i, r.status_code))
        return wrong

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        wrong = [w for ws in pool.map(worker, range(8)) for w in ws]
    assert not wrong, f"{len(wrong)} wrong answers, first: {wrong[:3]}"


# ---------------------------------------------------------------------------------------------
# Malformed binary requests


def test_binary_section_shorter_than_declared_is_400(builtin_server):
    raw = le([1, 2, 3, 4], "i4")
    r = post_binary(builtin_server, "echo", {"inputs": [binary_input("x", "INT32", [4], raw)]},
                    raw[:12])
    assert_error(r, 400, "inputs[0]", "binary", "16", "12")


def test_binary_section_longer_than_declared_is_400(builtin_server):
    raw = le([1, 2, 3, 4], "i4")
    r = post_binary(builtin_server, "echo", {"inputs": [binary_input("x", "INT32", [4], raw)]},
                    raw + b"\x00\x00")
    assert_error(r, 400, "binary", "2 bytes")


def test_second_input_running_past_the_end_is_400_naming_it(builtin_server):
    a, b = le([1, 2], "i4"), le([3, 4], "i4")
    header = {"inputs": [binary_input("first", "INT32", [2], a),
                         binary_input("second", "INT32", [2], b)]}
    r = post_binary(builtin_server, "echo", header, a + b[:4])
    assert_error(r, 400, "inputs[1]", "binary_data_size")


@pytest.mark.parametrize("datatype,shape,size", [
    ("INT32", [4], 12), ("INT32", [4], 20), ("FP64", [2, 2], 16), ("FP16", [3], 4),
    ("BOOL", [3], 2),
])
def test_binary_size_not_matching_shape_is_400(builtin_server, datatype, shape, size):
    raw = bytes(range(size))
    header = {"inputs": [{"name": "x", "datatype": datatype, "shape": shape,
                          "parameters": {"binary_data_size": size}}]}
    assert_error(post_binary(builtin_server, "echo", header, raw), 400, "inputs[0]")


@pytest.mark.parametrize("raw,shape", [
    (struct.pack("<I", 10) + b"abc", [1]),                   # element runs past the tensor
    (bytes_tensor([b"a", b"b"]), [3]),                        # fewer elements than the shape
    (bytes_tensor([b"a", b"b", b"c"]), [2]),                  # more elements than the shape
    (bytes_tensor([b"a"]) + b"\x01\x00", [1]),                # a truncated length prefix
])
def test_malformed_binary_bytes_tensor_is_400(builtin_server, raw, shape):
    header = {"inputs": [binary_input("s", "BYTES", shape, raw)]}
    assert_error(post_binary(builtin_server, "echo", header, raw), 400, "inputs[0]")


def test_input_with_both_data_and_binary_size_is_400(builtin_server):
    raw = le([1, 2], "i4")
    header = {"inputs": [{"name": "x", "datatype": "INT32", "shape": [2], "data": [1, 2],
                          "parameters": {"binary_data_size": 8}}]}
    assert_error(post_binary(builtin_server, "echo", header, raw), 400, "inputs[0]", "data",
                 "binary_data_size")


def test_input_with_neither_data_nor_binary_size_is_400(builtin_server):
    raw = le([1, 2], "i4")
    header = {"inputs": [binary_input("a", "INT32", [2], raw),
                         {"name": "b", "datatype": "INT32", "shape": [2]}]}
    assert_error(post_binary(builtin_server, "echo", header, raw), 400, "inputs[1]", "data")


def test_binary_size_declared_in_a_json_only_request_is_400(builtin_server):
    body = {"inputs": [{"name": "x", "datatype": "INT32", "shape": [2],
                        "parameters": {"binary_data_size": 8}}]}
    r = requests.post(builtin_server.url + "/v2/models/echo/infer", json=body, timeout=10)
    assert_error(r, 400, "inputs[0]", "binary_data_size")


@pytest.mark.parametrize("size", [-8, 8.5, "8", True, 2**64 - 8])
def test_binary_data_size_must_be_a_non_negative_integer(builtin_server, size):
    raw = le([1, 2], "i4")
    header = {"inputs": [{"name": "x", "datatype": "INT32", "shape": [2],
                          "parameters": {"binary_data_size": size}}]}
    assert_error(post_binary(builtin_server, "echo", header, raw), 400, "binary_data_size")


def test_header_length_larger_than_body_is_400(builtin_server):
    raw = le([1, 2], "i4")
    head = json.dumps({"inputs": [binary_input("x", "INT32", [2], raw)]}).encode()
    r = post_binary(builtin_server, "echo", head, raw,
                    header_len=str(len(head) + len(raw) + 1))
    assert_error(r, 400, HEADER)


@pytest.mark.parametrize("value", ["abc", "", "12abc", "-5", "0x10", "1e2",
                                   "99999999999999999999999"])
def test_non_numeric_header_length_is_400(builtin_server, value):
    raw = le([1, 2], "i4")
    head = json.dumps({"inputs": [binary_input("x", "INT32", [2], raw)]}).encode()
    r = post_binary(builtin_server, "echo", head, raw, header_len=value)
    assert_error(r, 400, HEADER)


def test_header_length_cutting_the_json_short_is_400(builtin_server):
    raw = le([1, 2], "i4")
    head = json.dumps({"inputs": [binary_input("x", "INT32", [2], raw)]}).encode()
    r = post_binary(builtin_server, "echo", head, raw, header_len=str(len(head) - 3))
    assert_error(r, 400)


def test_binary_body_without_the_length_header_is_400(builtin_server):
    raw = le([1, 2], "i4")
    head = json.dumps({"inputs": [binary_input("x", "INT32", [2], raw)]}).encode()
    r = requests.post(builtin_server.url + "/v2/models/echo/infer", data=head + raw,
                      headers={"Content-Type": "application/octet-stream"}, timeout=10)
    assert_error(r, 400)


def test_server_still_serves_after_malformed_binary_requests(builtin_server):
    raw = le([5], "i4")
    with requests.Session() as session:
        for header_len in ("abc", "100000", "3"):
            head = json.dumps({"inputs": [binary_input("x", "INT32", [1], raw)]}).encode()
            r = session.post(builtin_server.url + "/v2/models/echo/infer", data=head + raw,
                             headers={HEADER: header_len}, timeout=10)
            assert r.status_code == 400
        head = json.dumps({"inputs": [binary_input("x", "INT32", [1], raw)]}).encode()
        r = session.post(builtin_server.url + "/v2/models/echo/infer", data=head + raw,
                         headers={HEADER: str(len(head))}, timeout=10)
        assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [5]
