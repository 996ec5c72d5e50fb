"""`quiver serve` with the Python runtime (formats sklearn and custom).

Expected answers come from the frameworks themselves on the same files and inputs: Debian's
python3-sklearn (joblib.load(file).predict / predict_proba, which is what KServe's sklearnserver
returns) and, for the custom example, its own class run in this process. Models are made by the
committed scripts/make_python_models.py. Broken inputs (a model raising in load or predict, a
corrupt or missing file, a worker killed with SIGKILL) must each give a clear error while the
server stays up, and a dead worker must be replaced.
"""
import asyncio
import concurrent.futures
import importlib.util
import os
import pathlib
import shutil
import signal
import sys
import time

import joblib
import numpy as np
import pytest

from conftest import EXAMPLES, ROOT

PYLIB = ROOT / "src" / "runtimes" / "python" / "pylib"


def _import_file(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_models = _import_file("make_python_models", ROOT / "scripts" / "make_python_models.py")


# --------------------------------------------------------------------------------------------
# Helpers


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def custom_model(repo, name, source, config_extra=""):
    write(repo / name / "model.py", source)
    write(repo / name / "config.yaml", "format: custom\nmodel_file: model.py\n" + config_extra)


def index(server):
    r = server.post("/v2/repository/index")
    assert r.status_code == 200, r.text
    return {e["name"]: e for e in r.json()}


def wait_settled(server, names, timeout=180.0):
    """Waits until none of `names` is LOADING; returns the index."""
    deadline = time.monotonic() + timeout
    while True:
        entries = index(server)
        if all(n in entries and entries[n]["state"] not in ("LOADING", "UNLOADING")
               for n in names):
            return entries
        assert time.monotonic() < deadline, f"still loading: {entries}\n{server.log}"
        time.sleep(0.05)


def serve(start_server, repo, names):
    server = start_server(["--model-repository", str(repo), "--strict-readiness", "false"],
                          wait_ready=False)
    # Generous: importing scikit-learn takes tens of seconds on a machine busy with other work.
    server.wait_ready(timeout=180)
    entries = wait_settled(server, names)
    return server, entries


def v2(server, model, x, datatype, name="input-0", timeout=30, **extra):
    body = {"inputs": [{"name": name, "shape": list(x.shape), "datatype": datatype,
                        "data": x.ravel().tolist()}], **extra}
    return server.post(f"/v2/models/{model}/infer", json=body, timeout=timeout)


def v1(server, model, body, timeout=30):
    return server.post(f"/v1/models/{model}:predict", json=body, timeout=timeout)


def workers_of(server):
    """Process ids of the server's live python workers (its children)."""
    pids = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == server.proc.pid and fields[0] != "Z" and \
                "quiver-python" in stat[:stat.rindex(")")]:
            pids.append(int(entry.name))
    return sorted(pids)


def iris_rows(n, seed):
    rng = np.random.default_rng(seed)
    low = np.array([4.3, 2.0, 1.0, 0.1])
    high = np.array([7.9, 4.4, 6.9, 2.5])
    return rng.uniform(low, high, size=(n, 4))


# --------------------------------------------------------------------------------------------
# scikit-learn


@pytest.fixture
def sklearn_repo(tmp_path):
    """The committed iris classifier (predict and predict_proba), one with string labels saved
    as a pickle, and a regressor."""
    shutil.copytree(EXAMPLES / "sklearn-iris", tmp_path / "iris")
    shutil.copytree(EXAMPLES / "sklearn-iris", tmp_path / "iris-proba")
    write(tmp_path / "iris-proba" / "config.yaml",
          "format: sklearn\nparameters:\n  method: predict_proba\n")
    make_models.make_iris_classifier(tmp_path / "iris-names" / "model.pkl", string_labels=True)
    make_models.make_regressor(tmp_path / "regressor" / "model.pickle", features=5)
    return tmp_path


SKLEARN_MODELS = {
    # name: (file, method)
    "iris": ("model.joblib", "predict"),
    "iris-proba": ("model.joblib", "predict_proba"),
    "iris-names": ("model.pkl", "predict"),
    "regressor": ("model.pickle", "predict"),
}


def test_sklearn_answers_equal_sklearn_own(start_server, sklearn_repo):
    server, entries = serve(start_server, sklearn_repo, list(SKLEARN_MODELS))
    for name in SKLEARN_MODELS:
        assert entries[name]["state"] == "READY", entries[name]
    seed = 0
    for name, (file, method) in SKLEARN_MODELS.items():
        estimator = joblib.load(sklearn_repo / name / file)
        features = estimator.n_features_in_
        for rows in (1, 7):
            for datatype, dtype in (("FP64", np.float64), ("FP32", np.float32)):
                seed += 1
                x = (iris_rows(rows, seed) if features == 4
                     else np.random.default_rng(seed).normal(size=(rows, features))).astype(dtype)
                expected = getattr(estimator, method)(x)
                case = f"{name}, {rows} rows of {datatype}"
                # V2, the one input under any name.
                r = v2(server, name, x, datatype, name="input-0" if seed % 2 else "features")
                assert r.status_code == 200, f"{case}: {r.status_code} {r.text}"
                body = r.json()
                assert body["model_name"] == name
                [out] = body["outputs"]
                assert out["name"] == "output-0", case
                assert out["shape"] == list(expected.shape), case
                if expected.dtype.kind in "US":
                    assert out["datatype"] == "BYTES", case
                    assert out["data"] == expected.tolist(), case
                elif expected.dtype == np.int64:
                    assert out["datatype"] == "INT64", case
                    assert out["data"] == expected.ravel().tolist(), case
                else:
                    assert out["datatype"] == "FP64", case
                    np.testing.assert_array_equal(
                        np.asarray(out["data"]).reshape(expected.shape), expected, err_msg=case)
                # V1, as sklearnserver: {"predictions": result.tolist()}.
                r = v1(server, name, {"instances": x.tolist()})
                assert r.status_code == 200, f"{case} (V1): {r.status_code} {r.text}"
                expected_v1 = getattr(estimator, method)(np.array(x.tolist()))
                assert r.json() == {"predictions": expected_v1.tolist()}, case


def test_sklearn_v1_accepts_inputs_as_kserve(start_server, sklearn_repo):
    server, _ = serve(start_server, sklearn_repo, ["iris"])
    x = iris_rows(3, 99)
    expected = joblib.load(sklearn_repo / "iris" / "model.joblib").predict(x).tolist()
    r = v1(server, "iris", {"inputs": x.tolist()})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": expected}


def test_sklearn_metadata(start_server, sklearn_repo):
    server, _ = serve(start_server, sklearn_repo, ["iris", "iris-proba"])
    meta = server.get("/v2/models/iris").json()
    assert meta["platform"] == "sklearn"
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
    assert meta["outputs"] == [{"name": "output-0", "datatype": "INT64", "shape": [-1]}]
    meta = server.get("/v2/models/iris-proba").json()
    assert meta["outputs"] == [{"name": "output-0", "datatype": "FP64", "shape": [-1, 3]}]


def test_sklearn_bad_requests_are_400_with_the_reason(start_server, sklearn_repo):
    server, _ = serve(start_server, sklearn_repo, ["iris"])
    r = v2(server, "iris", np.zeros((2, 3)), "FP64", name="x")
    assert r.status_code == 400, r.text
    assert "expects 4 features per row" in r.json()["error"], r.text
    body = {"inputs": [{"name": n, "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}
                       for n in ("a", "b")]}
    r = server.post("/v2/models/iris/infer", json=body)
    assert r.status_code == 400, r.text
    assert "exactly one input" in r.json()["error"]
    r = v1(server, "iris", {"instances": [[1, 2, 3]]})
    assert r.status_code == 400, r.text
    assert "expects 4 features per row" in r.json()["error"]
    r = v1(server, "iris", {"nothing": 1})
    assert r.status_code == 400, r.text
    r = server.post("/v1/models/iris:predict", data=b"{not json",
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    # And the model still answers.
    assert v2(server, "iris", iris_rows(1, 1), "FP64").status_code == 200


def test_corrupt_and_missing_model_files_fail_clearly_while_others_serve(start_server, tmp_path):
    shutil.copytree(EXAMPLES / "sklearn-iris", tmp_path / "good")
    write(tmp_path / "corrupt" / "model.joblib", "this is not a pickle\n")
    write(tmp_path / "truncated" / "model.pkl", "")
    (tmp_path / "truncated" / "model.pkl").write_bytes(
        (EXAMPLES / "sklearn-iris" / "model.joblib").read_bytes()[:200])
    write(tmp_path / "missing" / "config.yaml", "format: sklearn\nmodel_file: model.joblib\n")
    write(tmp_path / "missing-py" / "config.yaml", "format: custom\nmodel_file: model.py\n")
    names = ["good", "corrupt", "truncated", "missing", "missing-py"]
    server, entries = serve(start_server, tmp_path, names)
    assert entries["good"]["state"] == "READY"
    for name, words in (("corrupt", ["model.joblib", "cannot load sklearn model file"]),
                        ("truncated", ["model.pkl", "cannot load sklearn model file"]),
                        ("missing", ["model.joblib", "does not exist"]),
                        ("missing-py", ["model.py", "does not exist"])):
        assert entries[name]["state"] == "FAILED", entries[name]
        for word in words:
            assert word in entries[name]["reason"], entries[name]
        r = v1(server, name, {"instances": [[1, 2, 3, 4]]})
        assert r.status_code == 503, r.text
    assert v2(server, "good", iris_rows(2, 5), "FP64").status_code == 200
    assert server.get("/v2/models/echo/ready").status_code == 200


# --------------------------------------------------------------------------------------------
# Custom models


def run_example_in_process(payload):
    """The custom example's own answer: its class, run here on the same payload."""
    sys.path.insert(0, str(PYLIB))
    cwd = os.getcwd()
    try:
        os.chdir(EXAMPLES / "custom-example")
        module = _import_file("custom_example_model", EXAMPLES / "custom-example" / "model.py")
        model = module.IrisCentroids("custom-example")
        model.load()
        x = model.preprocess(payload, {})
        y = asyncio.run(model.predict(x, {}))
        return model.postprocess(y, {})
    finally:
        os.chdir(cwd)
        sys.path.remove(str(PYLIB))


def test_custom_example_answers_as_its_own_class(start_server, tmp_path):
    shutil.copytree(EXAMPLES / "custom-example", tmp_path / "custom-example")
    server, entries = serve(start_server, tmp_path, ["custom-example"])
    assert entries["custom-example"]["state"] == "READY", entries
    x = iris_rows(9, 3)
    expected = run_example_in_process({"instances": x.tolist()})
    assert expected["labels"] and len(set(expected["predictions"])) > 1

    r = v1(server, "custom-example", {"instances": x.tolist()})
    assert r.status_code == 200, r.text
    assert r.json() == expected

    for datatype, dtype in (("FP64", np.float64), ("FP32", np.float32)):
        r = v2(server, "custom-example", x.astype(dtype), datatype, id="req-7")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["id"] == "req-7"
        outputs = {o["name"]: o for o in body["outputs"]}
        expected_classes = run_example_in_process({"instances": x.astype(dtype).tolist()})
        assert outputs["output-0"] == {"name": "output-0", "datatype": "INT64", "shape": [9],
                                       "data": expected_classes["predictions"]}
        assert outputs["label"] == {"name": "label", "datatype": "BYTES", "shape": [9],
                                    "data": expected_classes["labels"]}

    r = v1(server, "custom-example", {"instances": [[1, 2]]})
    assert r.status_code == 400, r.text
    assert "expected rows of 4 measurements" in r.json()["error"]


ASYNC_MODEL = '''
import asyncio
import numpy as np
from kserve import Model, InferRequest, InferResponse, InferOutput


class AsyncModel(Model):
    def __init__(self, name, scale="1"):
        super().__init__(name)
        self.scale = float(scale)

    async def load(self):
        await asyncio.sleep(0.01)
        self.ready = True

    async def preprocess(self, payload, headers=None):
        await asyncio.sleep(0)
        if isinstance(payload, InferRequest):
            return payload.inputs[0].as_numpy(), payload.id
        return np.asarray(payload["instances"], dtype=np.float64), None

    async def predict(self, payload, headers=None):
        x, request_id = payload
        await asyncio.sleep(0.001)
        return x * self.scale, request_id

    async def postprocess(self, result, headers=None):
        y, request_id = result
        if request_id is None:
            return {"predictions": y.tolist()}
        return InferResponse(request_id, self.name,
                             [InferOutput("scaled", list(y.shape), "FP64", y.astype(np.float64))])
'''


def test_async_methods_and_constructor_parameters(start_server, tmp_path):
    custom_model(tmp_path, "async", ASYNC_MODEL, "parameters:\n  scale: \"3\"\n")
    server, entries = serve(start_server, tmp_path, ["async"])
    assert entries["async"]["state"] == "READY", entries
    r = v1(server, "async", {"instances": [[1, 2], [3, 4]]})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": [[3.0, 6.0], [9.0, 12.0]]}
    r = v2(server, "async", np.array([[1.5, -1]], dtype=np.float32), "FP32", id="a1")
    assert r.status_code == 200, r.text
    assert r.json()["outputs"] == [{"name": "scaled", "datatype": "FP64", "shape": [1, 2],
                                    "data": [4.5, -3.0]}]


KSERVE_SAMPLE = '''
# Written for KServe's model server; only served by Quiver instead.
import argparse
from typing import Dict

from kserve import Model, ModelServer, model_server


class SampleModel(Model):
    def __init__(self, name: str):
        super().__init__(name)
        self.name = name
        self.ready = False
        self.load()

    def load(self):
        self.offset = 10
        self.ready = True

    def predict(self, payload: Dict, headers: Dict[str, str] = None) -> Dict:
        return {"predictions": [sum(row) + self.offset for row in payload["instances"]]}


parser = argparse.ArgumentParser(parents=[model_server.parser])
args, _ = parser.parse_known_args()

if __name__ == "__main__":
    model = SampleModel(args.model_name)
    ModelServer().start([model])
'''


def test_kserve_model_file_runs_unchanged(start_server, tmp_path):
    custom_model(tmp_path, "sample", KSERVE_SAMPLE)
    server, entries = serve(start_server, tmp_path, ["sample"])
    assert entries["sample"]["state"] == "READY", entries
    r = v1(server, "sample", {"instances": [[1, 2], [3, 4]]})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": [13, 17]}


FAILING_LOAD = '''
from kserve import Model


class Broken(Model):
    def load(self):
        raise RuntimeError("weights.bin is missing")
'''

FAILING_PREDICT = '''
import os
from kserve import Model
from kserve.errors import InferenceError


class Flaky(Model):
    def load(self):
        self.ready = True

    def predict(self, payload, headers=None):
        what = payload.get("do") if isinstance(payload, dict) else None
        if what == "raise":
            raise ValueError("cannot handle this row")
        if what == "inference-error":
            raise InferenceError("the model refused")
        if what == "exit":
            os._exit(3)
        return {"predictions": [os.getpid()]}
'''


def test_load_raising_fails_with_the_message_while_echo_serves(start_server, tmp_path):
    custom_model(tmp_path, "broken", FAILING_LOAD)
    server, entries = serve(start_server, tmp_path, ["broken"])
    entry = entries["broken"]
    assert entry["state"] == "FAILED", entry
    assert "RuntimeError: weights.bin is missing" in entry["reason"], entry
    assert "model.py, line 7, in load" in entry["reason"], entry
    r = server.post("/v2/models/echo/infer", json={"inputs": [
        {"name": "x", "shape": [1], "datatype": "INT32", "data": [5]}]})
    assert r.status_code == 200, r.text
    assert v1(server, "broken", {"instances": []}).status_code == 503
    assert workers_of(server) == []  # the failed load left no process behind


def test_predict_raising_is_500_with_the_message_and_the_worker_serves_on(start_server,
                                                                          tmp_path):
    custom_model(tmp_path, "flaky", FAILING_PREDICT)
    server, _ = serve(start_server, tmp_path, ["flaky"])
    [pid] = workers_of(server)
    r = v1(server, "flaky", {"instances": [], "do": "raise"})
    assert r.status_code == 500, r.text
    assert r.json() == {"error": "ValueError : cannot handle this row"}
    r = v1(server, "flaky", {"instances": [], "do": "inference-error"})
    assert r.status_code == 500, r.text
    assert r.json() == {"error": "the model refused"}
    r = v1(server, "flaky", {"instances": []})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": [pid]}
    assert "cannot handle this row" in server.log  # with its traceback


def test_worker_exiting_in_predict_fails_that_request_and_is_replaced(start_server, tmp_path):
    custom_model(tmp_path, "flaky", FAILING_PREDICT)
    server, _ = serve(start_server, tmp_path, ["flaky"])
    [old] = workers_of(server)
    r = v1(server, "flaky", {"instances": [], "do": "exit"})
    assert r.status_code == 500, r.text
    error = r.json()["error"]
    assert f"python worker for model 'flaky' (pid {old}) died (exit status 3)" in error, error
    r = v1(server, "flaky", {"instances": []})
    assert r.status_code == 200, r.text
    [new] = r.json()["predictions"]
    assert new != old
    assert workers_of(server) == [new]


SLOW_MODEL = '''
import os
import time
from kserve import Model


class Slow(Model):
    def load(self):
        self.ready = True

    def predict(self, payload, headers=None):
        time.sleep(float(payload.get("sleep", 0)))
        return {"predictions": [os.getpid()]}
'''


def test_killed_worker_fails_its_request_clearly_and_is_replaced(start_server, tmp_path):
    custom_model(tmp_path, "slow", SLOW_MODEL)
    server, _ = serve(start_server, tmp_path, ["slow"])
    [old] = workers_of(server)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(v1, server, "slow", {"instances": [], "sleep": 30})
        time.sleep(0.5)
        os.kill(old, signal.SIGKILL)
        r = in_flight.result(timeout=20)
    assert r.status_code == 500, r.text
    error = r.json()["error"]
    assert f"python worker for model 'slow' (pid {old}) died (signal 9: Killed)" in error, error
    for _ in range(3):
        r = v1(server, "slow", {"instances": []})
        assert r.status_code == 200, r.text
    [new] = r.json()["predictions"]
    assert new != old and workers_of(server) == [new]

    # Killed while idle: replaced in the background, and the next request succeeds.
    os.kill(new, signal.SIGKILL)
    time.sleep(0.2)
    r = v1(server, "slow", {"instances": []})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"][0] not in (old, new)
    assert server.proc.poll() is None


def test_two_instances_are_two_processes_serving_at_once(start_server, tmp_path):
    custom_model(tmp_path, "slow", SLOW_MODEL, "instance_count: 2\n")
    server, _ = serve(start_server, tmp_path, ["slow"])
    workers = workers_of(server)
    assert len(workers) == 2
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: v1(server, "slow", {"instances": [], "sleep": 1.0}),
                                range(2)))
    pids = sorted(a.json()["predictions"][0] for a in answers)
    assert pids == workers  # each request held one worker: both served


def test_workers_stop_with_the_server(start_server, tmp_path):
    custom_model(tmp_path, "slow", SLOW_MODEL, "instance_count: 2\n")
    server, _ = serve(start_server, tmp_path, ["slow"])
    workers = workers_of(server)
    assert len(workers) == 2
    assert server.stop() == 0
    deadline = time.monotonic() + 10
    while any(pathlib.Path(f"/proc/{p}").exists() for p in workers):
        assert time.monotonic() < deadline, "python workers outlived the server"
        time.sleep(0.05)


def test_workers_exit_when_the_server_is_killed(start_server, tmp_path):
    custom_model(tmp_path, "slow", SLOW_MODEL)
    server, _ = serve(start_server, tmp_path, ["slow"])
    [worker] = workers_of(server)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(v1, server, "slow", {"instances": [], "sleep": 60}, 5)
        time.sleep(0.3)
        server.proc.kill()
        server.proc.wait()
    deadline = time.monotonic() + 10
    while True:
        try:
            state = pathlib.Path(f"/proc/{worker}/stat").read_text().split(")")[-1].split()[0]
        except OSError:
            break
        if state == "Z":  # exited; its new parent (init) reaps it
            break
        assert time.monotonic() < deadline, "a busy python worker outlived a killed server"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def grpc_pb(tmp_path_factory):
    """grpc and the stubs generated from proto/grpc_predict_v2.proto: (grpc, pb2, pb2_grpc)."""
    grpc = pytest.importorskip("grpc")
    import importlib
    import subprocess

    out = tmp_path_factory.mktemp("stubs")
    subprocess.run(["protoc", f"--python_out={out}", f"--grpc_out={out}",
                    "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin",
                    f"-I{ROOT / 'proto'}", str(ROOT / "proto" / "grpc_predict_v2.proto")],
                   check=True, capture_output=True, text=True)
    sys.path.insert(0, str(out))
    try:
        pb2 = importlib.import_module("grpc_predict_v2_pb2")
        pb2_grpc = importlib.import_module("grpc_predict_v2_pb2_grpc")
    finally:
        sys.path.remove(str(out))
    return grpc, pb2, pb2_grpc


def grpc_stub(grpc_pb, server):
    """A channel to the server's gRPC port and a stub on it."""
    grpc, _, pb2_grpc = grpc_pb
    deadline = time.time() + 5
    while server.grpc_port is None and time.time() < deadline:
        time.sleep(0.01)
    assert server.grpc_port is not None, server.log
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    return channel, pb2_grpc.GRPCInferenceServiceStub(channel)


def test_sklearn_over_grpc_with_raw_contents(start_server, sklearn_repo, grpc_pb):
    _, pb2, _ = grpc_pb
    server, _ = serve(start_server, sklearn_repo, ["iris-proba", "iris-names"])
    channel, stub = grpc_stub(grpc_pb, server)
    x = iris_rows(5, 11)
    for name, file in (("iris-proba", "model.joblib"), ("iris-names", "model.pkl")):
        estimator = joblib.load(sklearn_repo / name / file)
        expected = (estimator.predict_proba(x) if name == "iris-proba" else estimator.predict(x))
        request = pb2.ModelInferRequest(model_name=name, id="g1")
        request.inputs.add(name="anything", datatype="FP64", shape=[5, 4])
        request.raw_input_contents.append(x.astype("<f8").tobytes())
        response = stub.ModelInfer(request, timeout=30)
        assert response.id == "g1"
        [output] = response.outputs
        assert output.name == "output-0"
        assert list(output.shape) == list(expected.shape)
        raw = response.raw_output_contents[0]
        if name == "iris-proba":
            assert output.datatype == "FP64"
            np.testing.assert_array_equal(
                np.frombuffer(raw, dtype="<f8").reshape(expected.shape), expected)
        else:
            assert output.datatype == "BYTES"
            labels, offset = [], 0
            while offset < len(raw):
                length = int.from_bytes(raw[offset:offset + 4], "little")
                labels.append(raw[offset + 4:offset + 4 + length].decode())
                offset += 4 + length
            assert labels == expected.tolist()
    channel.close()


ENVIRONMENT_MODEL = '''
import os
import sys

import sklearn
from kserve import Model


class Environment(Model):
    def predict(self, payload, headers=None):
        return {"executable": sys.executable, "version": list(sys.version_info[:2]),
                "path": sys.path, "sklearn": sklearn.__file__, "cwd": os.getcwd(),
                "omp": os.environ.get("OMP_NUM_THREADS")}
'''


def test_workers_are_debians_python_3_11(start_server, tmp_path):
    custom_model(tmp_path, "env", ENVIRONMENT_MODEL)
    server, entries = serve(start_server, tmp_path, ["env"])
    assert entries["env"]["state"] == "READY", entries
    r = v1(server, "env", {"instances": []})
    assert r.status_code == 200, r.text
    env = r.json()
    assert env["executable"] == "/usr/bin/python3"
    assert env["version"] == [3, 11]
    assert "/usr/lib/python3/dist-packages" in env["path"]
    assert env["sklearn"].startswith("/usr/lib/python3/dist-packages/")
    assert env["cwd"] == str(tmp_path / "env")  # the model's folder
    assert env["omp"] == os.environ.get("OMP_NUM_THREADS", "1")


# --------------------------------------------------------------------------------------------
# Request headers, :explain, load timeout


HEADER_MODEL = '''
import numpy as np
from kserve import InferOutput, InferRequest, InferResponse, Model


class HeaderEcho(Model):
    """Answers with the x-tenant header as preprocess, predict and postprocess saw it."""

    def load(self):
        self.ready = True

    def preprocess(self, payload, headers=None):
        return payload, {"pre": headers.get("x-tenant")}

    async def predict(self, payload, headers=None):
        payload, seen = payload
        seen["predict"] = headers.get("x-tenant")
        seen["names_lower_case"] = all(k == k.lower() for k in headers)
        seen["content_type"] = headers.get("content-type")
        if isinstance(payload, InferRequest):
            tenant = np.array([(headers.get("x-tenant") or "").encode()], dtype=object)
            return InferResponse(payload.id, self.name,
                                 [InferOutput("tenant", [1], "BYTES", tenant)], parameters=seen)
        return {"predictions": [headers.get("x-tenant")], "seen": seen}

    def postprocess(self, result, headers=None):
        if isinstance(result, InferResponse):
            result.parameters["post"] = headers.get("x-tenant")
        else:
            result["seen"]["post"] = headers.get("x-tenant")
        return result
'''


def test_request_headers_reach_the_model_over_v1_and_v2_rest(start_server, tmp_path):
    custom_model(tmp_path, "headers", HEADER_MODEL)
    server, entries = serve(start_server, tmp_path, ["headers"])
    assert entries["headers"]["state"] == "READY", entries
    # Names arrive lower-cased, as KServe's dict(request.headers.items()).
    r = server.post("/v1/models/headers:predict", json={"instances": [[1]]},
                    headers={"X-Tenant": "acme"})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": ["acme"],
                        "seen": {"pre": "acme", "predict": "acme", "names_lower_case": True,
                                 "content_type": "application/json", "post": "acme"}}

    r = server.post("/v2/models/headers/infer", headers={"x-TENANT": "globex"},
                    json={"id": "h1", "inputs": [{"name": "x", "shape": [1], "datatype": "FP32",
                                                  "data": [1.0]}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == "h1"
    assert body["outputs"] == [{"name": "tenant", "datatype": "BYTES", "shape": [1],
                                "data": ["globex"]}]
    assert body["parameters"] == {"pre": "globex", "predict": "globex",
                                  "names_lower_case": True,
                                  "content_type": "application/json", "post": "globex"}

    # A request without the header: the model sees None, never another request's value.
    r = server.post("/v1/models/headers:predict", json={"instances": [[1]]})
    assert r.status_code == 200, r.text
    assert r.json()["seen"]["predict"] is None


def test_grpc_metadata_reaches_the_model_as_headers(start_server, tmp_path, grpc_pb):
    _, pb2, _ = grpc_pb
    custom_model(tmp_path, "headers", HEADER_MODEL)
    server, entries = serve(start_server, tmp_path, ["headers"])
    assert entries["headers"]["state"] == "READY", entries
    channel, stub = grpc_stub(grpc_pb, server)
    try:
        request = pb2.ModelInferRequest(model_name="headers", id="g1")
        request.inputs.add(name="x", datatype="FP32", shape=[1]).contents.fp32_contents.append(2)
        response = stub.ModelInfer(request, timeout=30, metadata=(("x-tenant", "initech"),))
        assert response.id == "g1"
        [output] = response.outputs
        assert output.name == "tenant"
        assert list(output.contents.bytes_contents) == [b"initech"]
        params = {k: v.string_param for k, v in response.parameters.items()
                  if v.WhichOneof("parameter_choice") == "string_param"}
        assert params["pre"] == params["predict"] == params["post"] == "initech", params
        assert response.parameters["names_lower_case"].bool_param
        # Without the metadata the model sees none.
        response = stub.ModelInfer(request, timeout=30)
        assert list(response.outputs[0].contents.bytes_contents) == [b""]
    finally:
        channel.close()


EXPLAIN_MODEL = '''
from kserve import Model


class Explained(Model):
    def load(self):
        self.ready = True

    def preprocess(self, payload, headers=None):
        payload["instances"] = [x * 10 for x in payload["instances"]]
        return payload

    def predict(self, payload, headers=None):
        return {"predictions": payload["instances"]}

    def explain(self, payload, headers=None):
        return {"explanations": [{"feature": i, "weight": x}
                                 for i, x in enumerate(payload["instances"])],
                "tenant": headers.get("x-tenant")}

    def postprocess(self, result, headers=None):
        result["post"] = True
        return result
'''

ASYNC_EXPLAIN_MODEL = '''
import asyncio
import numpy as np
from kserve import Model


class AsyncExplained(Model):
    def load(self):
        self.ready = True

    def predict(self, payload, headers=None):
        return {"predictions": [0]}

    async def explain(self, payload, headers=None):
        await asyncio.sleep(0.01)
        return np.asarray(payload["instances"], dtype=np.float64) / 2
'''


def test_explain_calls_the_models_explainer_sync_and_async(start_server, tmp_path):
    custom_model(tmp_path, "explained", EXPLAIN_MODEL)
    custom_model(tmp_path, "async-explained", ASYNC_EXPLAIN_MODEL)
    server, entries = serve(start_server, tmp_path, ["explained", "async-explained"])
    for name in ("explained", "async-explained"):
        assert entries[name]["state"] == "READY", entries

    # preprocess -> explain -> postprocess, as KServe's EXPLAIN verb, with the headers.
    r = server.post("/v1/models/explained:explain", json={"instances": [1, 2]},
                    headers={"X-Tenant": "acme"})
    assert r.status_code == 200, r.text
    assert r.json() == {"explanations": [{"feature": 0, "weight": 10},
                                         {"feature": 1, "weight": 20}],
                        "tenant": "acme", "post": True}
    r = v1(server, "explained", {"instances": [3]})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": [30], "post": True}

    # An async explain returning an array: the body is the array (not wrapped).
    r = server.post("/v1/models/async-explained:explain", json={"instances": [[1, 3]]})
    assert r.status_code == 200, r.text
    assert r.json() == [[0.5, 1.5]]

    # The explainer's errors are the model's: a bad body is 400.
    r = server.post("/v1/models/async-explained:explain", data=b"{not json",
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text


def test_explain_without_an_explainer_is_501(start_server, tmp_path):
    custom_model(tmp_path, "plain", SLOW_MODEL)
    shutil.copytree(EXAMPLES / "sklearn-iris", tmp_path / "iris")
    server, _ = serve(start_server, tmp_path, ["plain", "iris"])
    for name in ("plain", "iris", "echo"):
        r = server.post(f"/v1/models/{name}:explain", json={"instances": [[1, 2, 3, 4]]})
        assert r.status_code == 501, f"{name}: {r.status_code} {r.text}"
        assert r.json() == {"error": f"model {name} has no explainer: :explain is not "
                                     "available for it"}, r.text
    assert v1(server, "plain", {"instances": []}).status_code == 200
    # KServe has no V2 explain: no route.
    r = server.post("/v2/models/plain/explain", json={})
    assert r.status_code == 404, r.text


HANGING_LOAD = '''
import time
from kserve import Model


class Hanging(Model):
    def load(self):
        time.sleep(3600)  # a download that never finishes
        self.ready = True

    def predict(self, payload, headers=None):
        return {"predictions": []}
'''


def test_a_load_that_hangs_fails_after_the_load_timeout_while_others_serve(start_server,
                                                                           tmp_path):
    custom_model(tmp_path, "hang", HANGING_LOAD, "parameters:\n  load_timeout_ms: \"1500\"\n")
    custom_model(tmp_path, "slow", SLOW_MODEL)
    start = time.monotonic()
    server, entries = serve(start_server, tmp_path, ["hang", "slow"])
    assert time.monotonic() - start < 120  # the timeout, not the hour load() would take
    entry = entries["hang"]
    assert entry["state"] == "FAILED", entry
    assert ("did not finish loading within 1500 ms (parameters.load_timeout_ms) and was killed"
            in entry["reason"]), entry
    assert "model 'hang'" in entry["reason"], entry
    assert entries["slow"]["state"] == "READY", entries
    [slow_worker] = workers_of(server)  # the hanging worker was killed
    assert v1(server, "hang", {"instances": []}).status_code == 503

    # Loading it again through the repository API holds the control thread for the timeout
    # only; meanwhile the other models serve.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        load = pool.submit(server.post, "/v2/repository/models/hang/load", timeout=60)
        time.sleep(0.3)
        for _ in range(3):
            r = v1(server, "slow", {"instances": []})
            assert r.status_code == 200, r.text
            assert r.json() == {"predictions": [slow_worker]}
        r = server.post("/v2/models/echo/infer", json={"inputs": [
            {"name": "x", "shape": [1], "datatype": "INT32", "data": [5]}]})
        assert r.status_code == 200, r.text
        r = load.result(timeout=60)
    assert r.status_code == 503, r.text
    assert "did not finish loading within 1500 ms" in r.json()["error"], r.text
    assert workers_of(server) == [slow_worker]
    # The control thread is free again.
    r = server.post("/v2/repository/models/slow/unload", timeout=30)
    assert r.status_code == 200, r.text
    assert workers_of(server) == []
