"""Open Inference Protocol over gRPC (GRPCInferenceService), against a real `quiver serve` with
real grpc channels and stubs generated from proto/grpc_predict_v2.proto at test time.

Covers health and metadata, typed and raw tensor contents for every datatype, parameters and ids,
the requested-outputs filter, the status codes of errors, XGBoost, message size limits, the
repository RPCs, concurrency, --enable-grpc false and the SIGTERM drain. Expected answers come
from KServe's gRPC protocol and tests (test_grpc_server.py; shared/reference/kserve.md 1.2, 4).
"""
import concurrent.futures
import importlib
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import EXAMPLES, ROOT, QuiverServer

grpc = pytest.importorskip("grpc")

UNLIMITED = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
MIB = 1 << 20


# ---------------------------------------------------------------------------------------------
# Fixtures and helpers


@pytest.fixture(scope="module")
def pb(tmp_path_factory):
    """The generated modules (grpc_predict_v2_pb2, grpc_predict_v2_pb2_grpc), built by protoc."""
    out = tmp_path_factory.mktemp("stubs")
    proto_dir = ROOT / "proto"
    subprocess.run(["protoc", f"--python_out={out}", f"--grpc_out={out}",
                    "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin",
                    f"-I{proto_dir}", str(proto_dir / "grpc_predict_v2.proto")],
                   check=True, capture_output=True, text=True)
    sys.path.insert(0, str(out))
    try:
        pb2 = importlib.import_module("grpc_predict_v2_pb2")
        pb2_grpc = importlib.import_module("grpc_predict_v2_pb2_grpc")
    finally:
        sys.path.remove(str(out))
    return pb2, pb2_grpc


def grpc_port(server, timeout=5.0):
    """The port from the server's "gRPC server listening" line (it may follow the HTTP line)."""
    deadline = time.time() + timeout
    while server.grpc_port is None and time.time() < deadline:
        time.sleep(0.01)
    assert server.grpc_port is not None, f"no gRPC listening line:\n{server.log}"
    return server.grpc_port


class Client:
    """A stub on one real channel to a server; closed by the fixture that made it."""

    def __init__(self, pb, server, options=UNLIMITED):
        self.pb2, pb2_grpc = pb
        self.channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port(server)}", options=options)
        self.stub = pb2_grpc.GRPCInferenceServiceStub(self.channel)

    def close(self):
        self.channel.close()

    def infer(self, request, timeout=10):
        return self.stub.ModelInfer(request, timeout=timeout)

    def request(self, model, inputs, raw=None, **kw):
        req = self.pb2.ModelInferRequest(model_name=model, inputs=inputs, **kw)
        if raw is not None:
            req.raw_input_contents.extend(raw)
        return req

    def tensor(self, name, datatype, shape, contents=None, **kw):
        """An InferInputTensor; `contents` is a dict such as {"int_contents": [1, 2]}."""
        t = self.pb2.ModelInferRequest.InferInputTensor(name=name, datatype=datatype,
                                                        shape=shape, **kw)
        if contents is not None:
            t.contents.CopyFrom(self.pb2.InferTensorContents(**contents))
        return t


@pytest.fixture(scope="module")
def client(pb, builtin_server):
    c = Client(pb, builtin_server)
    yield c
    c.close()


def assert_rpc_error(call, code, *fragments):
    """`call()` fails with `code` and details naming every fragment; returns the details."""
    with pytest.raises(grpc.RpcError) as info:
        call()
    err = info.value
    assert err.code() == code, f"expected {code}, got {err.code()}: {err.details()}"
    details = err.details() or ""
    for f in fragments:
        assert f in details, f"{f!r} not in details {details!r}"
    return details


def write_model(repo, name, config_yaml):
    d = repo / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.yaml").write_text(config_yaml)
    return d


def outputs_by_name(resp):
    return {o.name: o for o in resp.outputs}


def set_contents_fields(tensor):
    return [f.name for f, _ in tensor.contents.ListFields()]


def param_value(p):
    kind = p.WhichOneof("parameter_choice")
    return kind, getattr(p, kind) if kind else None


def listening_sockets(pid):
    """TCP sockets in LISTEN state that process `pid` holds open (from /proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                cols = line.split()
                if cols[3] == "0A" and cols[9] in inodes:  # 0A: TCP_LISTEN
                    found.append(int(cols[1].rsplit(":", 1)[1], 16))
    return sorted(found)


# ---------------------------------------------------------------------------------------------
# Health and metadata


def test_server_live_and_ready(client):
    assert client.stub.ServerLive(client.pb2.ServerLiveRequest(), timeout=5).live is True
    assert client.stub.ServerReady(client.pb2.ServerReadyRequest(), timeout=5).ready is True


def test_server_metadata(client):
    r = client.stub.ServerMetadata(client.pb2.ServerMetadataRequest(), timeout=5)
    assert r.name == "quiver"
    assert r.version, "empty server version"
    assert {"binary_tensor_data", "model_repository"} <= set(r.extensions), r.extensions


def test_model_ready(client):
    r = client.stub.ModelReady(client.pb2.ModelReadyRequest(name="echo"), timeout=5)
    assert r.ready is True
    r = client.stub.ModelReady(client.pb2.ModelReadyRequest(name="echo", version="1"), timeout=5)
    assert r.ready is True


def test_model_ready_of_unknown_model_is_not_found(client):
    assert_rpc_error(lambda: client.stub.ModelReady(client.pb2.ModelReadyRequest(name="nope"),
                                                    timeout=5),
                     grpc.StatusCode.NOT_FOUND, "nope")


def test_add_sub_metadata(client):
    r = client.stub.ModelMetadata(client.pb2.ModelMetadataRequest(name="add_sub"), timeout=5)
    assert r.name == "add_sub"
    assert list(r.versions) == ["1"]
    spec = lambda t: (t.name, t.datatype, list(t.shape))  # noqa: E731
    assert [spec(t) for t in r.inputs] == [("INPUT0", "INT32", [-1, 16]),
                                           ("INPUT1", "INT32", [-1, 16])]
    assert [spec(t) for t in r.outputs] == [("OUTPUT0", "INT32", [-1, 16]),
                                            ("OUTPUT1", "INT32", [-1, 16])]


@pytest.mark.parametrize("name,version", [("nope", ""), ("nope", "1"), ("add_sub", "2"),
                                          ("add_sub", "latest")])
def test_model_metadata_of_unknown_model_or_version_is_not_found(client, name, version):
    req = client.pb2.ModelMetadataRequest(name=name, version=version)
    assert_rpc_error(lambda: client.stub.ModelMetadata(req, timeout=5),
                     grpc.StatusCode.NOT_FOUND, name)


def test_wrong_version_is_not_found_for_ready_and_infer(client):
    req = client.pb2.ModelReadyRequest(name="echo", version="2")
    assert_rpc_error(lambda: client.stub.ModelReady(req, timeout=5), grpc.StatusCode.NOT_FOUND)
    req = client.request("echo", [client.tensor("x", "INT8", [1], {"int_contents": [1]})],
                         model_version="2")
    assert_rpc_error(lambda: client.infer(req), grpc.StatusCode.NOT_FOUND)


# ---------------------------------------------------------------------------------------------
# A repository with a model that fails to load, a 4-instance sleep model and XGBoost


@pytest.fixture(scope="module")
def repo_server(tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo")
    write_model(repo, "torch", "format: pytorch\n")  # no pytorch plugin, no model file: FAILED
    write_model(repo, "nap", "format: sleep\ninstance_count: 4\nparameters:\n  sleep_us: 100000\n")
    shutil.copytree(EXAMPLES / "xgboost-iris", repo / "iris")
    s = QuiverServer(["--model-repository", str(repo), "--strict-readiness", "false"])
    try:
        s.wait_ready()
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def repo_client(pb, repo_server):
    c = Client(pb, repo_server)
    yield c
    c.close()


def test_failed_model_is_not_ready_and_unavailable_with_the_reason(repo_client):
    c = repo_client
    r = c.stub.ModelReady(c.pb2.ModelReadyRequest(name="torch"), timeout=5)
    assert r.ready is False
    assert_rpc_error(lambda: c.stub.ModelMetadata(c.pb2.ModelMetadataRequest(name="torch"),
                                                  timeout=5),
                     grpc.StatusCode.UNAVAILABLE, "torch", "pytorch")
    req = c.request("torch", [c.tensor("x", "FP32", [1], {"fp32_contents": [1.0]})])
    assert_rpc_error(lambda: c.infer(req), grpc.StatusCode.UNAVAILABLE, "torch", "pytorch")


def test_xgboost_raw_fp32_matches_python_xgboost(repo_client):
    xgb = pytest.importorskip("xgboost")
    booster = xgb.Booster()
    booster.load_model(str(EXAMPLES / "xgboost-iris" / "model.json"))
    rng = np.random.default_rng(7)
    x = np.concatenate([np.array([[6.8, 2.8, 4.8, 1.4], [5.1, 3.5, 1.4, 0.2]], np.float32),
                        rng.uniform(0.1, 8.0, size=(30, 4)).astype(np.float32)])
    expected = booster.predict(xgb.DMatrix(x))
    c = repo_client
    resp = c.infer(c.request("iris", [c.tensor("input-0", "FP32", list(x.shape))],
                             raw=[x.tobytes()]))
    assert resp.model_name == "iris"
    assert [o.name for o in resp.outputs] == ["output-0"]
    out = resp.outputs[0]
    assert out.datatype == "FP32"
    assert list(out.shape) == list(expected.shape)
    assert len(resp.raw_output_contents) == 1
    got = np.frombuffer(resp.raw_output_contents[0], dtype="<f4").reshape(expected.shape)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_concurrent_calls_use_the_sleep_models_four_instances(repo_client):
    c = repo_client
    req = c.request("nap", [c.tensor("INPUT0", "FP32", [1, 2], {"fp32_contents": [1.0, 2.0]})])
    start = time.monotonic()
    futures = [c.stub.ModelInfer.future(req, timeout=10) for _ in range(8)]
    results = [f.result() for f in futures]
    elapsed = time.monotonic() - start
    for r in results:
        assert list(r.outputs[0].contents.fp32_contents) == [1.0, 2.0]
    # 8 calls x 100 ms on 4 instances: two rounds, not eight.
    assert 0.19 <= elapsed < 0.5, f"8 concurrent calls took {elapsed:.3f}s"


def test_deadline_exceeded_call_leaves_the_model_serving(repo_client):
    c = repo_client
    req = c.request("nap", [c.tensor("INPUT0", "FP32", [1, 1], {"fp32_contents": [3.0]})])
    assert_rpc_error(lambda: c.infer(req, timeout=0.02), grpc.StatusCode.DEADLINE_EXCEEDED)
    futures = [c.stub.ModelInfer.future(req, timeout=10) for _ in range(4)]
    assert [list(f.result().outputs[0].contents.fp32_contents) for f in futures] == [[3.0]] * 4


def test_server_not_ready_while_a_model_failed_under_strict_readiness(pb, start_server,
                                                                      tmp_path):
    write_model(tmp_path, "torch", "format: pytorch\n")
    s = start_server(["--model-repository", str(tmp_path)], wait_ready=False)
    c = Client(pb, s)
    try:
        deadline = time.time() + 10
        while c.stub.ModelReady(c.pb2.ModelReadyRequest(name="echo"), timeout=5).ready is False:
            assert time.time() < deadline, s.log
            time.sleep(0.02)
        while "FAILED" not in s.log:
            assert time.time() < deadline, s.log
            time.sleep(0.02)
        assert c.stub.ServerLive(c.pb2.ServerLiveRequest(), timeout=5).live is True
        assert c.stub.ServerReady(c.pb2.ServerReadyRequest(), timeout=5).ready is False
        assert s.get("/v2/health/ready").status_code == 503  # the same answer as REST
    finally:
        c.close()


# ---------------------------------------------------------------------------------------------
# Typed contents


def test_add_sub_typed_int_contents(client):
    a = np.arange(32, dtype=np.int32).reshape(2, 16) - 7
    b = np.arange(32, dtype=np.int32).reshape(2, 16) * 3
    req = client.request("add_sub", [
        client.tensor("INPUT0", "INT32", [2, 16], {"int_contents": a.flatten().tolist()}),
        client.tensor("INPUT1", "INT32", [2, 16], {"int_contents": b.flatten().tolist()})])
    resp = client.infer(req)
    assert resp.model_name == "add_sub"
    assert resp.model_version == "1"
    assert not resp.raw_output_contents, "typed request answered with raw contents"
    outs = outputs_by_name(resp)
    assert sorted(outs) == ["OUTPUT0", "OUTPUT1"]
    for name, expected in (("OUTPUT0", a + b), ("OUTPUT1", a - b)):
        o = outs[name]
        assert o.datatype == "INT32"
        assert list(o.shape) == [2, 16]
        assert set_contents_fields(o) == ["int_contents"]
        assert list(o.contents.int_contents) == expected.flatten().tolist()


TYPED = [
    # datatype, contents field, values (limits of the type included)
    ("BOOL", "bool_contents", [True, False, True]),
    ("INT8", "int_contents", [-128, 0, 127]),
    ("INT16", "int_contents", [-32768, 1, 32767]),
    ("INT32", "int_contents", [-2**31, 2, 2**31 - 1]),
    ("INT64", "int64_contents", [-2**63, 3, 2**63 - 1]),
    ("UINT8", "uint_contents", [0, 1, 255]),
    ("UINT16", "uint_contents", [0, 2, 65535]),
    ("UINT32", "uint_contents", [0, 3, 2**32 - 1]),
    ("UINT64", "uint64_contents", [0, 4, 2**64 - 1]),
    ("FP32", "fp32_contents", [-1.5, 0.0, float(np.float32(3.1415927)), 3.0e38]),
    ("FP64", "fp64_contents", [-1.5, 0.1, 1e300, 5e-324]),
    ("BYTES", "bytes_contents", [b"abc", b"\xff\x00", b"", "é".encode()]),
]


@pytest.mark.parametrize("datatype,field,values", TYPED, ids=[t[0] for t in TYPED])
def test_echo_typed_contents_round_trip(client, datatype, field, values):
    shape = [1, len(values)]
    req = client.request("echo", [client.tensor("x", datatype, shape, {field: values})])
    resp = client.infer(req)
    assert not resp.raw_output_contents
    assert len(resp.outputs) == 1
    o = resp.outputs[0]
    assert (o.name, o.datatype, list(o.shape)) == ("output-0", datatype, shape)
    assert set_contents_fields(o) == [field]
    got = list(getattr(o.contents, field))
    if datatype == "FP32":
        np.testing.assert_array_equal(np.array(got, np.float32), np.array(values, np.float32))
    else:
        assert got == values


def test_echo_returns_every_input_in_order_named_output_i(client):
    req = client.request("echo", [
        client.tensor("a", "FP64", [1, 2], {"fp64_contents": [1.5, 2.5]}),
        client.tensor("b", "BYTES", [1], {"bytes_contents": [b"text"]}),
        client.tensor("c", "BOOL", [2, 1], {"bool_contents": [False, True]}),
        client.tensor("d", "INT8", [3], {"int_contents": [-1, 0, 1]})])
    resp = client.infer(req)
    assert [o.name for o in resp.outputs] == ["output-0", "output-1", "output-2", "output-3"]
    assert [o.datatype for o in resp.outputs] == ["FP64", "BYTES", "BOOL", "INT8"]
    assert [list(o.shape) for o in resp.outputs] == [[1, 2], [1], [2, 1], [3]]
    assert list(resp.outputs[0].contents.fp64_contents) == [1.5, 2.5]
    assert list(resp.outputs[1].contents.bytes_contents) == [b"text"]
    assert list(resp.outputs[2].contents.bool_contents) == [False, True]
    assert list(resp.outputs[3].contents.int_contents) == [-1, 0, 1]


def test_request_id_is_echoed(client):
    req = client.request("echo", [client.tensor("x", "INT8", [1], {"int_contents": [1]})],
                         id="my-request-42")
    assert client.infer(req).id == "my-request-42"


def test_parameters_are_copied_with_their_types(client):
    P = client.pb2.InferParameter
    params = {"b": P(bool_param=True), "f": P(bool_param=False), "i": P(int64_param=-2**63),
              "s": P(string_param="text"), "empty": P(string_param=""),
              "d": P(double_param=0.25), "u": P(uint64_param=2**64 - 1)}
    req = client.request("echo", [
        client.tensor("a", "INT32", [1], {"int_contents": [1]},
                      parameters={"p": P(double_param=1.5), "q": P(string_param="x")}),
        client.tensor("b", "INT32", [1], {"int_contents": [2]}),
        client.tensor("c", "INT32", [1], {"int_contents": [3]},
                      parameters={"k": P(int64_param=7), "t": P(bool_param=True)})],
        parameters=params)
    resp = client.infer(req)
    got = {k: param_value(v) for k, v in resp.parameters.items()}
    assert got == {k: param_value(v) for k, v in params.items()}
    outs = outputs_by_name(resp)
    assert {k: param_value(v) for k, v in outs["output-0"].parameters.items()} == \
        {"p": ("double_param", 1.5), "q": ("string_param", "x")}
    assert not outs["output-1"].parameters
    assert {k: param_value(v) for k, v in outs["output-2"].parameters.items()} == \
        {"k": ("int64_param", 7), "t": ("bool_param", True)}


@pytest.mark.parametrize("datatype,field,value", [
    ("INT8", "int_contents", 300), ("INT8", "int_contents", -129),
    ("INT16", "int_contents", 32768), ("UINT8", "uint_contents", 256),
    ("UINT16", "uint_contents", 65536)])
def test_out_of_range_typed_value_is_invalid_argument(client, datatype, field, value):
    req = client.request("echo", [client.tensor("x", datatype, [2], {field: [1, value]})])
    assert_rpc_error(lambda: client.infer(req), grpc.StatusCode.INVALID_ARGUMENT, str(value))


@pytest.mark.parametrize("shape,values", [([3], [1, 2]), ([2], [1, 2, 3]), ([2, 2], [1, 2, 3]),
                                          ([0], [1])])
def test_typed_count_not_matching_the_shape_is_invalid_argument(client, shape, values):
    req = client.request("echo", [client.tensor("x", "INT32", shape, {"int_contents": values})])
    assert_rpc_error(lambda: client.infer(req), grpc.StatusCode.INVALID_ARGUMENT)


@pytest.mark.parametrize("datatype,field,values", [
    ("INT32", "fp32_contents", [1.0]), ("FP32", "int_contents", [1]),
    ("BOOL", "int_contents", [1]), ("BYTES", "int_contents", [1]),
    ("INT64", "int_contents", [1]), ("UINT8", "int_contents", [1]),
    ("FP64", "fp32_contents", [1.0]), ("INT8", "bytes_contents", [b"\x01"])])
def test_wrong_contents_field_for_the_datatype_is_invalid_argument(client, datatype, field,
                                                                   values):
    req = client.request("echo", [client.tensor("x", datatype, [1], {field: values})])
    assert_rpc_error(lambda: client.infer(req), grpc.StatusCode.INVALID_ARGUMENT)


@pytest.mark.parametrize("datatype", ["FP16", "BF16"])
def test_half_floats_with_typed_contents_are_invalid_argument(client, datatype):
    req = client.request("echo", [client.tensor("x", datatype, [2],
                                                {"fp32_contents": [1.0, 2.0]})])
    assert_rpc_error(lambda: client.infer(req), grpc.StatusCode.INVALID_ARGUMENT)


# ---------------------------------------------------------------------------------------------
# Raw contents


RAW = [("BOOL", np.array([True, False, True])),
       ("INT8", np.array([-128, 0, 127], np.int8)),
       ("INT16", np.array([-32768, 1, 32767], np.int16)),
       ("INT32", np.array([-2**31, 2, 2**31 - 1], np.int32)),
       ("INT64", np.array([-2**63, 3, 2**63 - 1], np.int64)),
       ("UINT8", np.array([0, 1, 255], np.uint8)),
       ("UINT16", np.array([0, 2, 65535], np.uint16)),
       ("UINT32", np.array([0, 3, 2**32 - 1], np.uint32)),
       ("UINT64", np.array([0, 4, 2**64 - 1], np.uint64)),
       ("FP16", np.array([-1.5, 0.0, 65504.0, 6e-8, np.inf], np.float16)),
       ("FP32", np.array([-1.5, 0.1, 3e38], np.float32)),
       ("FP64", np.array([-1.5, 0.1, 1e300], np.float64))]


@pytest.mark.parametrize("datatype,array", RAW, ids=[r[0] for r in RAW])
def test_echo_raw_round_trips_exactly(client, datatype, array):
    x = array.reshape(1, -1).astype(array.dtype.newbyteorder("<"))
    req = client.request("echo", [client.tensor("x", datatype, list(x.shape))],
                         raw=[x.tobytes()])
    resp = client.infer(req)
    assert len(resp.outputs) == 1 and len(resp.raw_output_contents) == 1
    o = resp.outputs[0]
    assert (o.name, o.datatype, list(o.shape)) == ("output-0", datatype, list(x.shape))
    assert set_contents_fields(o) == [], "raw request answered with typed contents"
    got = np.frombuffer(resp.raw_output_contents[0], dtype=x.dtype).reshape(x.shape)
    np.testing.assert_array_equal(got, x)


def test_bf16_raw_is_accepted_and_echoed(client):
    f32 = np.array([1.0, -2.5, 3.140625, 0.0], dtype="<f4")
    bf16 = (f32.view("<u4") >> 16).astype("<u2").tobytes()  # the top half of each float32
    req = client.request("echo", [client.tensor("x", "BF16", [4])], raw=[bf16])
    resp = client.infer(req)
    o = resp.outputs[0]
    assert (o.datatype, list(o.shape)) == ("BF16", [4])
    assert resp.raw_output_contents[0] == bf16


def test_bytes_raw_uses_length_prefixes(client):
    items = [b"abc", b"\xff\x00", b"", b"x" * 300]
    raw = b"".join(len(i).to_bytes(4, "little") + i for i in items)
    req = client.request("echo", [client.tensor("x", "BYTES", [2, 2])], raw=[raw])
    resp = client.infer(req)
    o = resp.outputs[0]
    assert (o.datatype, list(o.shape)) == ("BYTES", [2, 2])
    assert resp.raw_output_contents[0] == raw


def test_add_sub_raw_in_raw_out(client):
    rng = np.random.default_rng(1)
    a = rng.integers(-1000, 1000, size=(3, 16), dtype=np.int32)
    b = rng.integers(-1000, 1000, size=(3, 16), dtype=np.int32)
    req = client.request("add_sub", [client.tensor("INPUT0", "INT32", [3, 16]),
                                      client.tensor("INPUT1", "INT32", [3, 16])],
                         raw=[a.tobytes(), b.tobytes()])
    resp = client.infer(req)
    assert [o.name for o in resp.outputs] == ["OUTPUT0", "OUTPUT1"]
    assert len(resp.raw_output_contents) == 2
    for o, raw, expected in zip(resp.outputs, resp.raw_output_contents, (a + b, a - b)):
        assert set_contents_fields(o) == []
        got = np.frombuffer(raw, dtype="<i4").reshape(list(o.shape))
        np.testing.assert_array_equal(got, expected)


def test_echo_raw_several_inputs_one_raw_output_each(client):
    xs = [np.array([[1.5, 2.5]], "<f4"), np.array([7, 8, 9], "<i8"), np.array([True], "?")]
    req = client.request("echo", [client.tensor("a", "FP32", [1, 2]),
                                   client.tensor("b", "INT64", [3]),
                                   client.tensor("c", "BOOL", [1])],
                         raw=[x.tobytes() for x in xs])
    resp = client.infer(req)
    assert [o.name for o in resp.outputs] == ["output-0", "output-1", "output-2"]
    assert list(resp.raw_output_contents) == [x.tobytes() for x in xs]


@pytest.mark.parametrize("n_raw", [1, 3])
def test_raw_count_not_matching_inputs_is_invalid_argument(client, n_raw):
    # KServe's test_grpc_raw_inputs_with_missing_input_data, and one raw entry too many.
    x = np.array([1, 2], "<i4").tobytes()
    req = client.request("echo", [client.tensor("a", "INT32", [2]),
                                   client.tensor("b", "INT32", [2])], raw=[x] * n_raw)
    assert_rpc_error(lambda: client.infer(req), grpc.StatusCode.INVALID_ARGUMENT)


def test_raw_plus_typed_contents_is_invalid_argument(client):
    # KServe's test_grpc_raw_inputs_with_contents_specified.
    x = np.array([1, 2], "<i4").tobytes()
    req = client.request("echo", [client.tensor("a", "INT32", [2], {"int_contents": [1, 2]}),
                                   client.tensor("b", "INT32", [2])], raw=[x, x])
    assert_rpc_error(lambda: client.infer(req), grpc.StatusCode.INVALID_ARGUMENT)


@pytest.mark.parametrize("datatype,raw", [("INT32", b"\x01\x00\x00\x00" * 3),
                                          ("FP64", b"\x00" * 20),
                                          ("BYTES", b"\x05\x00\x00\x00ab")])
def test_raw_size_not_matching_the_shape_is_invalid_argument(client, datatype, raw):
    req = client.request("echo", [client.tensor("x", datatype, [2])], raw=[raw])
    assert_rpc_error(lambda: client.infer(req), grpc.StatusCode.INVALID_ARGUMENT)


@pytest.mark.parametrize("shape,values", [([0], []), ([2, 0], []), ([], [7])])
def test_empty_and_scalar_tensors_round_trip(client, shape, values):
    req = client.request("echo", [client.tensor("x", "INT32", shape, {"int_contents": values})])
    o = client.infer(req).outputs[0]
    assert list(o.shape) == shape
    assert list(o.contents.int_contents) == values


def test_malformed_inputs_are_invalid_argument(client):
    T = client.tensor
    one = {"int_contents": [1]}
    cases = {
        "unknown datatype": [T("x", "FOO", [1], one)],
        "lowercase datatype": [T("x", "int32", [1], one)],
        "empty datatype": [T("x", "", [1], one)],
        "negative dimension": [T("x", "INT32", [-1], one)],
        "no contents and no raw": [T("x", "INT32", [2])],
        "duplicate input names": [T("x", "INT32", [1], one), T("x", "INT32", [1], one)],
    }
    for what, inputs in cases.items():
        req = client.request("echo", inputs)
        details = assert_rpc_error(lambda: client.infer(req), grpc.StatusCode.INVALID_ARGUMENT)
        assert details, what


@pytest.mark.parametrize("shape", [[2**62, 2**62], [2**31, 2**31, 4], [2**63 - 1]])
def test_shape_whose_element_count_overflows_is_invalid_argument(client, shape):
    req = client.request("echo", [client.tensor("x", "INT8", shape)], raw=[b"\0" * 4])
    assert_rpc_error(lambda: client.infer(req), grpc.StatusCode.INVALID_ARGUMENT)
    assert client.stub.ServerLive(client.pb2.ServerLiveRequest(), timeout=5).live is True


# ---------------------------------------------------------------------------------------------
# Requested outputs and errors


def add_sub_typed(client, a, b, outputs=None):
    a, b = np.asarray(a, np.int32), np.asarray(b, np.int32)
    req = client.request("add_sub", [
        client.tensor("INPUT0", "INT32", list(a.shape), {"int_contents": a.flatten().tolist()}),
        client.tensor("INPUT1", "INT32", list(b.shape), {"int_contents": b.flatten().tolist()})])
    for name in outputs or []:
        req.outputs.add(name=name)
    return req


def test_requested_output_only(client):
    resp = client.infer(add_sub_typed(client, [[5] * 16], [[2] * 16], outputs=["OUTPUT1"]))
    assert [o.name for o in resp.outputs] == ["OUTPUT1"]
    assert list(resp.outputs[0].contents.int_contents) == [3] * 16


def test_unknown_requested_output_is_invalid_argument(client):
    req = add_sub_typed(client, [[5] * 16], [[2] * 16], outputs=["OUTPUT9"])
    assert_rpc_error(lambda: client.infer(req), grpc.StatusCode.INVALID_ARGUMENT, "OUTPUT9")


def test_infer_unknown_model_is_not_found_with_kserve_message(client):
    req = client.request("nope", [client.tensor("x", "INT8", [1], {"int_contents": [1]})])
    details = assert_rpc_error(lambda: client.infer(req), grpc.StatusCode.NOT_FOUND)
    assert details == "Model with name nope does not exist."


def test_add_sub_missing_input_is_invalid_argument_naming_it(client):
    req = client.request("add_sub", [
        client.tensor("INPUT0", "INT32", [1, 16], {"int_contents": [1] * 16})])
    assert_rpc_error(lambda: client.infer(req), grpc.StatusCode.INVALID_ARGUMENT, "INPUT1")


def test_add_sub_wrong_datatype_or_extra_input_is_invalid_argument(client):
    ones = [1] * 16
    req = client.request("add_sub", [
        client.tensor("INPUT0", "FP32", [1, 16], {"fp32_contents": ones}),
        client.tensor("INPUT1", "INT32", [1, 16], {"int_contents": ones})])
    assert_rpc_error(lambda: client.infer(req), grpc.StatusCode.INVALID_ARGUMENT, "INPUT0")
    req = add_sub_typed(client, [ones], [ones])
    req.inputs.append(client.tensor("EXTRA", "INT32", [1], {"int_contents": [1]}))
    assert_rpc_error(lambda: client.infer(req), grpc.StatusCode.INVALID_ARGUMENT, "EXTRA")


def test_add_sub_wrong_shape_is_invalid_argument_naming_the_input(client):
    req = client.request("add_sub", [
        client.tensor("INPUT0", "INT32", [1, 15], {"int_contents": [1] * 15}),
        client.tensor("INPUT1", "INT32", [1, 16], {"int_contents": [1] * 16})])
    assert_rpc_error(lambda: client.infer(req), grpc.StatusCode.INVALID_ARGUMENT, "INPUT0")


# ---------------------------------------------------------------------------------------------
# Concurrency on one channel


def test_many_threads_on_one_channel_all_correct(client):
    def worker(seed):
        rng = np.random.default_rng(seed)
        bad = []
        for _ in range(50):
            a = rng.integers(-10**6, 10**6, size=(1, 16), dtype=np.int32)
            b = rng.integers(-10**6, 10**6, size=(1, 16), dtype=np.int32)
            outs = outputs_by_name(client.infer(add_sub_typed(client, a, b)))
            if (list(outs["OUTPUT0"].contents.int_contents) != (a + b).flatten().tolist() or
                    list(outs["OUTPUT1"].contents.int_contents) != (a - b).flatten().tolist()):
                bad.append((a, b))
        return bad

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(worker, range(16)))
    assert sum(len(r) for r in results) == 0, "some answers did not match their request"


# ---------------------------------------------------------------------------------------------
# Message size limits


def big_echo_request(client, nbytes, name="big"):
    x = np.zeros(nbytes, np.uint8)
    return client.request("echo", [client.tensor(name, "UINT8", [nbytes])], raw=[x.tobytes()])


def test_default_receive_limit_is_8_mib(client):
    req = big_echo_request(client, 9 * MIB)
    assert_rpc_error(lambda: client.infer(req), grpc.StatusCode.RESOURCE_EXHAUSTED)
    # Just under the limit is fine (and the 7 MiB answer is within the default send limit).
    resp = client.infer(big_echo_request(client, 7 * MIB))
    assert len(resp.raw_output_contents[0]) == 7 * MIB


def test_message_length_flags(pb, start_server):
    s = start_server(["--grpc-max-receive-message-length", "20000000",
                      "--grpc_max_send_message_length", str(MIB)])
    c = Client(pb, s)
    try:
        # 9 MiB arrives; asking only for the small second output keeps the answer under 1 MiB.
        req = big_echo_request(c, 9 * MIB)
        req.inputs.append(c.tensor("small", "INT8", [1]))
        req.raw_input_contents.append(b"\x05")
        req.outputs.add(name="output-1")
        resp = c.infer(req)
        assert [o.name for o in resp.outputs] == ["output-1"]
        assert list(resp.raw_output_contents) == [b"\x05"]
        # A 2 MiB answer is over the 1 MiB send limit.
        req = big_echo_request(c, 2 * MIB)
        assert_rpc_error(lambda: c.infer(req), grpc.StatusCode.RESOURCE_EXHAUSTED)
        # Still serving after both.
        resp = c.infer(big_echo_request(c, 1000))
        assert len(resp.raw_output_contents[0]) == 1000
    finally:
        c.close()


# ---------------------------------------------------------------------------------------------
# Repository RPCs


def test_unload_and_load_echo(pb, start_server):
    s = start_server([])
    c = Client(pb, s)
    try:
        req = c.request("echo", [c.tensor("x", "INT8", [1], {"int_contents": [4]})])
        r = c.stub.RepositoryModelUnload(c.pb2.RepositoryModelUnloadRequest(model_name="echo"),
                                         timeout=10)
        assert r.isUnloaded is True
        assert r.model_name == "echo"
        assert_rpc_error(lambda: c.infer(req), grpc.StatusCode.UNAVAILABLE, "echo")
        assert c.stub.ModelReady(c.pb2.ModelReadyRequest(name="echo"), timeout=5).ready is False
        r = c.stub.RepositoryModelLoad(c.pb2.RepositoryModelLoadRequest(model_name="echo"),
                                       timeout=10)
        assert r.isLoaded is True
        assert r.model_name == "echo"
        assert list(c.infer(req).outputs[0].contents.int_contents) == [4]
        assert c.stub.ModelReady(c.pb2.ModelReadyRequest(name="echo"), timeout=5).ready is True
    finally:
        c.close()


def test_unload_and_load_of_unknown_model_are_not_found(client):
    assert_rpc_error(lambda: client.stub.RepositoryModelUnload(
        client.pb2.RepositoryModelUnloadRequest(model_name="nope"), timeout=10),
        grpc.StatusCode.NOT_FOUND, "nope")
    assert_rpc_error(lambda: client.stub.RepositoryModelLoad(
        client.pb2.RepositoryModelLoadRequest(model_name="nope"), timeout=10),
        grpc.StatusCode.NOT_FOUND, "nope")


# ---------------------------------------------------------------------------------------------
# --enable-grpc and SIGTERM


def test_enable_grpc_false_listens_on_http_only(start_server):
    on = start_server([])
    grpc_port(on)
    assert sorted(listening_sockets(on.proc.pid)) == sorted([on.port, on.grpc_port])
    off = start_server(["--enable-grpc", "false"])
    time.sleep(0.2)  # a gRPC line, if any, would be logged by now
    assert off.grpc_port is None
    assert "gRPC server listening" not in off.log
    assert listening_sockets(off.proc.pid) == [off.port]


def test_sigterm_drains_an_in_flight_call_then_exits_0(pb, start_server, tmp_path):
    write_model(tmp_path, "slow", "format: sleep\nparameters:\n  sleep_us: 500000\n")
    s = start_server(["--model-repository", str(tmp_path)])
    c = Client(pb, s)
    try:
        req = c.request("slow", [c.tensor("INPUT0", "FP32", [1, 2],
                                          {"fp32_contents": [1.0, 2.0]})])
        start = time.monotonic()
        future = c.stub.ModelInfer.future(req, timeout=10)
        time.sleep(0.15)
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(0.1)
        assert not future.done(), "the call finished before SIGTERM; cannot test draining"
        resp = future.result()
        assert list(resp.outputs[0].contents.fp32_contents) == [1.0, 2.0]
        assert time.monotonic() - start >= 0.5
        s.proc.wait(5)
    finally:
        c.close()
    assert s.stop() == 0, s.log
