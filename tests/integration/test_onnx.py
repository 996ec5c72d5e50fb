"""`quiver serve` with ONNX models (format onnx, run by OpenCV's dnn module).

Expected outputs come from the framework that made the model: each test exports its models with
Debian's python3-torch (the definitions in scripts/make_onnx_models.py) into a temporary
repository and compares Quiver's answers with what the torch module computes for the same inputs.
OpenCV and torch both compute in FP32 but in different orders (and OpenCV folds batch norm into
the convolution), hence a relative tolerance of 1e-4.
"""
import concurrent.futures
import json
import pathlib
import shutil
import sys
import time

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "models"
TESTDATA = ROOT / "src" / "runtimes" / "onnx" / "testdata"
sys.path.insert(0, str(ROOT / "scripts"))
import make_onnx_models as models  # noqa: E402  (after the path is set)

BINARY_HEADER = "Inference-Header-Content-Length"


def wait_settled(server, names, timeout=30.0):
    """Waits until none of `names` is LOADING; returns {name: index entry}."""
    deadline = time.monotonic() + timeout
    while True:
        r = server.post("/v2/repository/index")
        assert r.status_code == 200, r.text
        entries = {e["name"]: e for e in r.json()}
        if all(n in entries and entries[n]["state"] not in ("LOADING", "UNLOADING")
               for n in names):
            return entries
        assert time.monotonic() < deadline, f"still loading: {entries}\n{server.log}"
        time.sleep(0.05)


def infer(server, model, inputs, outputs=None):
    """inputs: {name: numpy array}; JSON request. Returns the response."""
    datatypes = {np.dtype(np.float32): "FP32", np.dtype(np.float64): "FP64",
                 np.dtype(np.int32): "INT32", np.dtype(np.int64): "INT64"}
    body = {"inputs": [{"name": n, "shape": list(x.shape), "datatype": datatypes[x.dtype],
                        "data": x.ravel().tolist()} for n, x in inputs.items()]}
    if outputs is not None:
        body["outputs"] = [{"name": n} for n in outputs]
    return server.post(f"/v2/models/{model}/infer", json=body)


def output_arrays(response):
    assert response.status_code == 200, response.text
    return {o["name"]: np.asarray(o["data"], dtype=np.float64).reshape(o["shape"])
            for o in response.json()["outputs"]}


def assert_close(got, want, case):
    assert set(got) == set(want), f"{case}: outputs {sorted(got)}, expected {sorted(want)}"
    for name, expected in want.items():
        assert got[name].shape == expected.shape, f"{case}: {name} shape"
        np.testing.assert_allclose(got[name], expected, rtol=1e-4, atol=1e-5,
                                   err_msg=f"{case}: {name}")


@pytest.fixture
def torch_repository(tmp_path):
    """A repository with a freshly exported MLP and CNN; returns (path, {model: torch module})."""
    modules = {
        "onnx-mlp": models.export("mlp", tmp_path / "onnx-mlp" / "model.onnx"),
        "onnx-cnn": models.export("cnn", tmp_path / "onnx-cnn" / "model.onnx"),
    }
    return tmp_path, modules


def test_outputs_match_torch(start_server, torch_repository):
    repository, modules = torch_repository
    server = start_server(["--model-repository", str(repository)])
    seed = 0
    for model, fixture in (("onnx-mlp", "mlp"), ("onnx-cnn", "cnn")):
        for rows in (1, 7, 1, 32):
            seed += 1
            x = models.random_inputs(fixture, rows, seed)
            want = models.run_torch(fixture, modules[model], x)
            got = output_arrays(infer(server, model, x))
            assert_close(got, want, f"{model}, batch {rows}")


def test_metadata_from_the_graph(start_server, torch_repository):
    repository, _ = torch_repository
    shutil.copytree(EXAMPLES / "onnx-mlp", repository / "example-mlp")
    server = start_server(["--model-repository", str(repository)])
    for name in ("onnx-mlp", "example-mlp"):
        r = server.get(f"/v2/models/{name}")
        assert r.status_code == 200, r.text
        meta = r.json()
        assert meta["name"] == name
        assert meta["platform"] == "onnx"
        assert meta["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 16]}]
        assert meta["outputs"] == [
            {"name": "logits", "datatype": "FP32", "shape": [-1, 4]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 4]},
        ]
    meta = server.get("/v2/models/onnx-cnn").json()
    assert meta["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 1, 16, 16]}]
    assert meta["outputs"] == [{"name": "logits", "datatype": "FP32", "shape": [-1, 10]}]


def test_requested_outputs_fp64_and_binary_inputs(start_server, torch_repository):
    repository, modules = torch_repository
    server = start_server(["--model-repository", str(repository)])
    x = models.random_inputs("mlp", 5, seed=42)
    want = models.run_torch("mlp", modules["onnx-mlp"], x)

    # Only the output asked for.
    got = output_arrays(infer(server, "onnx-mlp", x, outputs=["probabilities"]))
    assert_close(got, {"probabilities": want["probabilities"]}, "requested output")

    # FP64 inputs are converted to FP32, which OpenCV computes in.
    got = output_arrays(infer(server, "onnx-mlp", {"features": x["features"].astype(np.float64)}))
    assert_close(got, want, "FP64 input")

    # Binary extension: the tensor's bytes follow a JSON header of odd length, so they are not
    # 4-byte aligned in the request buffer.
    image = models.random_inputs("cnn", 3, seed=43)
    want = models.run_torch("cnn", modules["onnx-cnn"], image)
    raw = image["image"].astype("<f4").tobytes()
    header = {"inputs": [{"name": "image", "datatype": "FP32", "shape": [3, 1, 16, 16],
                          "parameters": {"binary_data_size": len(raw)}}]}
    head = json.dumps(header).encode()
    if len(head) % 4 == 0:
        head += b" "
    r = server.post("/v2/models/onnx-cnn/infer", data=head + raw,
                    headers={"Content-Type": "application/octet-stream",
                             BINARY_HEADER: str(len(head))})
    assert_close(output_arrays(r), want, "binary input")


def test_bad_inputs_are_400_naming_the_input(start_server, torch_repository):
    repository, _ = torch_repository
    server = start_server(["--model-repository", str(repository)])
    r = infer(server, "onnx-mlp", {"features": np.ones((2, 15), dtype=np.float32)})
    assert r.status_code == 400, r.text
    assert "features" in r.json()["error"] and "[-1, 16]" in r.json()["error"], r.text

    r = infer(server, "onnx-mlp", {"x": np.ones((2, 16), dtype=np.float32)})
    assert r.status_code == 400, r.text
    assert "'x'" in r.json()["error"] and "features" in r.json()["error"], r.text

    r = infer(server, "onnx-cnn", {"image": np.ones((1, 1, 16, 16), dtype=np.float32)},
              outputs=["nope"])
    assert r.status_code == 400, r.text
    assert "nope" in r.json()["error"], r.text

    # Still serving.
    assert infer(server, "onnx-mlp", {"features": np.ones((2, 16), dtype=np.float32)}).ok


def test_broken_models_fail_with_a_reason_while_others_serve(start_server, torch_repository):
    repository, modules = torch_repository
    good = (repository / "onnx-mlp" / "model.onnx").read_bytes()

    def model_dir(name, model_bytes=None, config=None):
        d = repository / name
        d.mkdir()
        if model_bytes is not None:
            (d / "model.onnx").write_bytes(model_bytes)
        if config is not None:
            (d / "config.yaml").write_text(config)

    model_dir("corrupt", good[: len(good) // 2])
    model_dir("garbage", b"this is not an ONNX model\n" * 10)
    model_dir("empty", b"")
    # The folder says it is ONNX but the file is not there.
    model_dir("missing", config="format: onnx\nmodel_file: model.onnx\n")
    model_dir("no-file", config="format: onnx\n")
    model_dir("unsupported", (TESTDATA / "topk.onnx").read_bytes())
    model_dir("opset13", (TESTDATA / "reduce_sum_opset13.onnx").read_bytes())

    server = start_server(["--model-repository", str(repository), "--strict-readiness", "false"])
    broken = ["corrupt", "garbage", "empty", "missing", "no-file", "unsupported", "opset13"]
    entries = wait_settled(server, broken + ["onnx-mlp", "onnx-cnn", "echo"])
    reasons = {}
    for name in broken:
        assert entries[name]["state"] == "FAILED", entries[name]
        reasons[name] = entries[name]["reason"]
    assert "not an ONNX model" in reasons["corrupt"], reasons["corrupt"]
    assert "model.onnx" in reasons["corrupt"], reasons["corrupt"]
    assert "not an ONNX model" in reasons["garbage"], reasons["garbage"]
    assert "empty" in reasons["empty"], reasons["empty"]
    assert "does not exist" in reasons["missing"], reasons["missing"]
    assert "no onnx model file" in reasons["no-file"].lower(), reasons["no-file"]
    assert "operator 'TopK'" in reasons["unsupported"], reasons["unsupported"]
    assert "cannot run" in reasons["unsupported"], reasons["unsupported"]
    assert "operator 'ReduceSum'" in reasons["opset13"], reasons["opset13"]

    # A request for a failed model is refused; the others answer.
    r = infer(server, "unsupported", {"x": np.ones((1, 8), dtype=np.float32)})
    assert r.status_code in (400, 404, 503), r.text
    for name in ("onnx-mlp", "onnx-cnn"):
        assert entries[name]["state"] == "READY", entries[name]
    x = models.random_inputs("mlp", 2, seed=7)
    assert_close(output_arrays(infer(server, "onnx-mlp", x)),
                 models.run_torch("mlp", modules["onnx-mlp"], x), "after failures")
    r = server.post("/v2/models/echo/infer", json={
        "inputs": [{"name": "in", "shape": [2], "datatype": "INT32", "data": [1, 2]}]})
    assert r.status_code == 200, r.text
    assert server.proc.poll() is None, server.log


def test_fixing_a_broken_model_and_reloading_it(start_server, torch_repository):
    repository, modules = torch_repository
    d = repository / "later"
    d.mkdir()
    (d / "model.onnx").write_bytes(b"\x08\x07garbage")
    server = start_server(["--model-repository", str(repository), "--strict-readiness", "false"])
    assert wait_settled(server, ["later"])["later"]["state"] == "FAILED"
    shutil.copy(repository / "onnx-cnn" / "model.onnx", d / "model.onnx")
    r = server.post("/v2/repository/models/later/load")
    assert r.status_code == 200, r.text
    x = models.random_inputs("cnn", 2, seed=9)
    assert_close(output_arrays(infer(server, "later", x)),
                 models.run_torch("cnn", modules["onnx-cnn"], x), "reloaded")


def test_dynamic_batching_answers_each_request(start_server, torch_repository):
    """Concurrent requests batched together (different batch sizes on one network) each get
    torch's answer for their own rows."""
    repository, modules = torch_repository
    (repository / "onnx-cnn" / "config.yaml").write_text(
        "max_batch_size: 8\ndynamic_batching: {max_queue_delay_microseconds: 20000}\n")
    server = start_server(["--model-repository", str(repository)])
    cases = [models.random_inputs("cnn", 1 + i % 3, seed=200 + i) for i in range(12)]

    def one(x):
        return output_arrays(infer(server, "onnx-cnn", x))

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(one, cases))
    for i, (x, got) in enumerate(zip(cases, answers)):
        assert_close(got, models.run_torch("cnn", modules["onnx-cnn"], x), f"request {i}")
