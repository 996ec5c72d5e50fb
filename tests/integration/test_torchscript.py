"""`quiver serve` with TorchScript models (format `pytorch`) answers what libtorch computes.

Expected outputs come from Debian's python3-torch on the same .pt files, computed here:
torch.jit.load(file)(*inputs) under torch.inference_mode(). The models are the example MLP and
the fixtures of src/runtimes/torchscript/testdata (made by scripts/make_torchscript_models.py).
"""
import concurrent.futures
import pathlib
import shutil
import time

import numpy as np
import pytest
import torch

from conftest import EXAMPLES, QuiverServer

TESTDATA = (pathlib.Path(__file__).resolve().parents[2] / "src" / "runtimes" / "torchscript"
            / "testdata")
MLP = EXAMPLES / "torchscript-mlp"
DATATYPES = {torch.float32: "FP32", torch.int64: "INT64", torch.float64: "FP64"}


def add_model(repo, name, pt, config=None):
    d = repo / name
    d.mkdir(parents=True)
    shutil.copy(pt, d / "model.pt")
    if config is not None:
        (d / "config.yaml").write_text(config)
    return d


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for the module: the example MLP (with its config.yaml), the same file without
    one, the CNN, models returning a tuple, a list and a dict, and the MLP on two instances, on
    the I/O threads and behind the dynamic batcher."""
    repo = tmp_path_factory.mktemp("repo")
    shutil.copytree(MLP, repo / "mlp")
    add_model(repo, "mlp-plain", MLP / "model.pt")
    for name in ("cnn", "tuple", "list", "dict"):
        add_model(repo, name, TESTDATA / f"{name}.pt")
    add_model(repo, "mlp-parallel", MLP / "model.pt", "instance_count: 2\n")
    add_model(repo, "mlp-inline", MLP / "model.pt", "inline_execution: true\n")
    add_model(repo, "mlp-batched", MLP / "model.pt",
              "max_batch_size: 16\ndynamic_batching: {max_queue_delay_microseconds: 2000}\n")
    s = QuiverServer(["--model-repository", str(repo)])
    try:
        wait_models(s, [p.name for p in repo.iterdir()])
        yield s
    finally:
        s.stop()


def wait_models(server, names, timeout=60):
    deadline = time.time() + timeout
    for name in names:
        while server.get(f"/v2/models/{name}/ready").status_code != 200:
            assert time.time() < deadline, f"{name} not ready:\n{server.log}"
            time.sleep(0.05)


def torch_outputs(pt, *inputs):
    model = torch.jit.load(str(pt))
    model.eval()
    with torch.inference_mode():
        return model(*[torch.from_numpy(x) for x in inputs])


def infer(server, model, inputs, outputs=None):
    body = {"inputs": [{"name": name, "shape": list(x.shape), "datatype": "FP32",
                        "data": x.ravel().tolist()} for name, x in inputs]}
    if outputs is not None:
        body["outputs"] = [{"name": n} for n in outputs]
    return server.post(f"/v2/models/{model}/infer", json=body)


def assert_output(out, name, expected, case):
    """One v2 output against a torch tensor: name, datatype, shape and values (1e-5)."""
    assert out["name"] == name, case
    assert out["datatype"] == DATATYPES[expected.dtype], case
    assert out["shape"] == list(expected.shape), case
    got = np.asarray(out["data"], dtype=np.float64).reshape(tuple(expected.shape))
    np.testing.assert_allclose(got, expected.numpy().astype(np.float64), rtol=1e-5, atol=1e-5,
                               err_msg=case)


def test_predictions_match_python_torch(server):
    rng = np.random.default_rng(0)
    cases = [("mlp", "features", MLP / "model.pt", (4,)),
             ("mlp-plain", "INPUT__0", MLP / "model.pt", (4,)),
             ("cnn", "INPUT__0", TESTDATA / "cnn.pt", (1, 28, 28))]
    for model, input_name, pt, row_shape in cases:
        output_name = "scores" if model == "mlp" else "OUTPUT__0"
        for batch in (1, 7):
            x = rng.normal(size=(batch, *row_shape)).astype(np.float32)
            case = f"{model}, batch {batch}"
            r = infer(server, model, [(input_name, x)])
            assert r.status_code == 200, f"{case}: {r.status_code} {r.text}"
            body = r.json()
            assert body["model_name"] == model
            assert len(body["outputs"]) == 1, case
            assert_output(body["outputs"][0], output_name, torch_outputs(pt, x), case)


def test_metadata(server):
    meta = server.get("/v2/models/mlp").json()
    assert meta["name"] == "mlp"
    assert meta["platform"] == "pytorch_libtorch"
    assert meta["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 4]}]
    assert meta["outputs"] == [{"name": "scores", "datatype": "FP32", "shape": [-1, 3]}]

    # Without config.yaml: Triton's positional names; a .pt file records no datatypes or ranks.
    meta = server.get("/v2/models/mlp-plain").json()
    assert meta["platform"] == "pytorch_libtorch"
    assert meta["inputs"] == [{"name": "INPUT__0", "datatype": "FP32", "shape": [-1]}]
    assert meta["outputs"] == [{"name": "OUTPUT__0", "datatype": "FP32", "shape": [-1]}]
    meta = server.get("/v2/models/tuple").json()
    assert [o["name"] for o in meta["outputs"]] == ["OUTPUT__0", "OUTPUT__1"]
    # A dict's keys are known only when the model runs.
    assert server.get("/v2/models/dict").json()["outputs"] == []


def test_tuple_list_and_dict_outputs_are_named(server):
    x = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)

    r = infer(server, "tuple", [("INPUT__0", x)])
    assert r.status_code == 200, r.text
    sums, argmax = torch_outputs(TESTDATA / "tuple.pt", x)
    out = r.json()["outputs"]
    assert len(out) == 2
    assert_output(out[0], "OUTPUT__0", sums, "tuple[0]")
    assert_output(out[1], "OUTPUT__1", argmax, "tuple[1]")  # INT64

    r = infer(server, "list", [("INPUT__0", x)])
    assert r.status_code == 200, r.text
    expected = torch_outputs(TESTDATA / "list.pt", x)
    out = r.json()["outputs"]
    assert [o["name"] for o in out] == ["OUTPUT__0", "OUTPUT__1"]
    for o, e in zip(out, expected):
        assert_output(o, o["name"], e, "list")

    r = infer(server, "dict", [("INPUT__0", x)])
    assert r.status_code == 200, r.text
    expected = torch_outputs(TESTDATA / "dict.pt", x)
    out = r.json()["outputs"]
    assert [o["name"] for o in out] == list(expected) == ["doubled", "total"]
    for o in out:
        assert_output(o, o["name"], expected[o["name"]], "dict")

    # A client may ask for one of them.
    r = infer(server, "dict", [("INPUT__0", x)], outputs=["total"])
    assert r.status_code == 200, r.text
    out = r.json()["outputs"]
    assert [o["name"] for o in out] == ["total"]
    assert_output(out[0], "total", expected["total"], "dict, total only")


@pytest.mark.parametrize("model", ["mlp", "mlp-plain"])
def test_v1_predict(server, model):
    x = np.random.default_rng(2).normal(size=(2, 4)).astype(np.float32)
    r = server.post(f"/v1/models/{model}:predict", json={"instances": x.tolist()})
    assert r.status_code == 200, r.text
    expected = torch_outputs(MLP / "model.pt", x).numpy()
    np.testing.assert_allclose(np.asarray(r.json()["predictions"]), expected, rtol=1e-5,
                               atol=1e-5)


def test_bad_requests(server):
    # The declared input is checked by the server: 400 naming it.
    r = infer(server, "mlp", [("x", np.ones((1, 4), dtype=np.float32))])
    assert r.status_code == 400, r.text
    assert "features" in r.json()["error"]
    # Without a config, a wrong shape reaches libtorch: 500 with its reason, one line.
    r = infer(server, "mlp-plain", [("INPUT__0", np.ones((2, 5), dtype=np.float32))])
    assert r.status_code == 500, r.text
    error = r.json()["error"]
    assert "mat1 and mat2 shapes cannot be multiplied (2x5 and 4x16)" in error, error
    assert "Traceback" not in error, error
    # Still serving.
    x = np.ones((1, 4), dtype=np.float32)
    r = infer(server, "mlp-plain", [("INPUT__0", x)])
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("model", ["mlp-parallel", "mlp-inline", "mlp-batched"])
def test_concurrent_requests(server, model):
    """Two instances running forward at once, I/O threads running it, or requests batched
    together: each client gets the answer to its own rows."""
    rng = np.random.default_rng(3)
    xs = [rng.normal(size=(1 + i % 5, 4)).astype(np.float32) for i in range(64)]

    def one(x):
        r = infer(server, model, [("INPUT__0", x)])
        assert r.status_code == 200, r.text
        return r.json()["outputs"][0]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(one, xs))
    for x, out in zip(xs, outs):
        assert_output(out, "OUTPUT__0", torch_outputs(MLP / "model.pt", x), model)


def mapped_libraries(pid):
    with open(f"/proc/{pid}/maps") as f:
        return {line.split()[-1] for line in f if "/" in line}


def test_corrupt_and_missing_files_fail_the_model_not_the_server(start_server, tmp_path):
    good = (MLP / "model.pt").read_bytes()
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "model.pt").write_bytes(b"not torchscript")
    (tmp_path / "truncated").mkdir()
    (tmp_path / "truncated" / "model.pt").write_bytes(good[: len(good) // 2])
    (tmp_path / "missing").mkdir()
    (tmp_path / "missing" / "config.yaml").write_text("format: pytorch\nmodel_file: gone.pt\n")
    s = start_server(["--model-repository", str(tmp_path), "--strict-readiness", "false"])
    names = ["garbage", "truncated", "missing"]
    deadline = time.time() + 30
    while True:
        index = {e["name"]: e for e in s.post("/v2/repository/index").json()}
        if all(index[n]["state"] not in ("LOADING", "UNLOADED") for n in names):
            break
        assert time.time() < deadline, index
        time.sleep(0.05)
    reasons = {
        "garbage": ["TorchScript", str(tmp_path / "garbage" / "model.pt"), "not a ZIP archive"],
        "truncated": ["TorchScript", str(tmp_path / "truncated" / "model.pt"),
                      "central directory"],
        "missing": ["gone.pt"],
    }
    for name, words in reasons.items():
        assert index[name]["state"] == "FAILED", index[name]
        for w in words:
            assert w in index[name]["reason"], (w, index[name]["reason"])
        r = infer(s, name, [("INPUT__0", np.ones((1, 4), dtype=np.float32))])
        assert r.status_code == 503, r.text

    # The server is up and serves the other models.
    assert s.get("/v2/health/live").status_code == 200
    r = s.post("/v2/models/echo/infer", json={"inputs": [
        {"name": "x", "datatype": "INT32", "shape": [2], "data": [1, 2]}]})
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == [1, 2]

    # Fixed on disk, the model loads.
    (tmp_path / "garbage" / "model.pt").write_bytes(good)
    r = s.post("/v2/repository/models/garbage/load", timeout=60)
    assert r.status_code == 200, r.text
    x = np.ones((1, 4), dtype=np.float32)
    r = infer(s, "garbage", [("INPUT__0", x)])
    assert r.status_code == 200, r.text
    assert_output(r.json()["outputs"][0], "OUTPUT__0", torch_outputs(MLP / "model.pt", x),
                  "reloaded")


def test_libtorch_is_mapped_only_when_a_torchscript_model_is_served(start_server, tmp_path):
    plain = start_server([])
    assert not any("libtorch" in lib for lib in mapped_libraries(plain.proc.pid))
    shutil.copytree(MLP, tmp_path / "mlp")
    # Loading libtorch (and the ~280 libraries Debian links it with) takes seconds on a busy
    # machine: wait for the model rather than for the server's readiness.
    with_torch = start_server(["--model-repository", str(tmp_path)], wait_ready=False)
    wait_models(with_torch, ["mlp"])
    libs = mapped_libraries(with_torch.proc.pid)
    assert any("libtorch_cpu" in lib for lib in libs), sorted(libs)
    assert any(lib.endswith("quiver-torchscript.so") for lib in libs), sorted(libs)
