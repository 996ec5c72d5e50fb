"""Dynamic batching end to end: real `quiver serve`, real clients (requests, grpcio)."""
import concurrent.futures as cf
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import requests

from conftest import EXAMPLES, ROOT


def sleep_repo(tmp_path, name, config):
    d = tmp_path / "repo" / name
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(config)
    return tmp_path / "repo"


def infer(server, model, rows, start=0.0, **kw):
    data = (np.arange(rows * 2, dtype=np.float32) + start).reshape(rows, 2)
    body = {"inputs": [{"name": "INPUT0", "shape": [rows, 2], "datatype": "FP32",
                        "data": data.ravel().tolist()}]}
    body.update(kw)
    return requests.post(f"{server.url}/v2/models/{model}/infer", json=body, timeout=30), data


def concurrent(n, fn):
    with cf.ThreadPoolExecutor(n) as ex:
        return list(ex.map(fn, range(n)))


def test_batching_multiplies_throughput_and_answers_each_request(start_server, tmp_path):
    repo = sleep_repo(tmp_path, "slow", """
format: sleep
max_batch_size: 32
dynamic_batching: {max_queue_delay_microseconds: 5000}
parameters: {sleep_us: 50000}
""")
    s = start_server(["--model-repository", str(repo), "--builtin-models", "none"])

    def one(i):
        r, data = infer(s, "slow", 1, start=i * 10)
        assert r.status_code == 200, r.text
        out = r.json()["outputs"][0]
        assert out["shape"] == [1, 2]
        np.testing.assert_array_equal(np.array(out["data"], dtype=np.float32), data.ravel())
        return r.json()["id"]

    t = time.time()
    ids = concurrent(64, one)
    took = time.time() - t
    assert len(set(ids)) == 64
    # One instance, 50 ms per execution: unbatched 64 requests take 3.2 s; batched, a few
    # executions of up to 32 items (the bound leaves room for a busy machine).
    assert took < 2.0, took


def test_requests_of_several_items_share_a_batch_up_to_the_maximum(start_server, tmp_path):
    repo = sleep_repo(tmp_path, "slow", """
format: sleep
max_batch_size: 8
dynamic_batching: {max_queue_delay_microseconds: 20000}
parameters: {sleep_us: 200000}
""")
    s = start_server(["--model-repository", str(repo), "--builtin-models", "none"])
    # 8 requests of 3 rows: at most 2 fit a batch of 8 items -> 4 executions of 200 ms (0.8 s);
    # unbatched it would be 8 (1.6 s).
    t = time.time()
    results = concurrent(8, lambda i: infer(s, "slow", 3, start=i * 100))
    took = time.time() - t
    for r, data in results:
        assert r.status_code == 200, r.text
        assert r.json()["outputs"][0]["shape"] == [3, 2]
        np.testing.assert_array_equal(
            np.array(r.json()["outputs"][0]["data"], dtype=np.float32), data.ravel())
    assert 0.75 < took < 1.4, took
    r, _ = infer(s, "slow", 9)
    assert r.status_code == 400
    assert "more than the model's max_batch_size of 8" in r.json()["error"]


def test_full_queue_and_queue_timeout_are_503_with_a_reason(start_server, tmp_path):
    repo = sleep_repo(tmp_path, "slow", """
format: sleep
max_batch_size: 1
dynamic_batching:
  default_queue_policy: {max_queue_size: 2}
parameters: {sleep_us: 300000}
""")
    (repo / "timed").mkdir()
    (repo / "timed" / "config.yaml").write_text("""
format: sleep
max_batch_size: 1
dynamic_batching:
  default_queue_policy: {default_timeout_microseconds: 100000, timeout_action: REJECT}
parameters: {sleep_us: 400000}
""")
    s = start_server(["--model-repository", str(repo), "--builtin-models", "none"])
    results = concurrent(6, lambda i: infer(s, "slow", 1)[0])
    codes = sorted(r.status_code for r in results)
    # One executes, two wait in the queue, the rest are turned away at once.
    assert codes.count(200) == 3, codes
    assert codes.count(503) == 3, codes
    full = [r for r in results if r.status_code == 503]
    assert all("is full" in r.json()["error"] for r in full)

    results = concurrent(3, lambda i: infer(s, "timed", 1)[0])
    codes = sorted(r.status_code for r in results)
    assert codes.count(200) >= 1 and codes.count(503) >= 1, codes
    assert any("timed out in the queue" in r.json()["error"]
               for r in results if r.status_code == 503)


def test_batching_flags_apply_to_models_without_their_own(start_server, tmp_path):
    repo = sleep_repo(tmp_path, "slow", "format: sleep\nparameters: {sleep_us: 100000}\n")
    s = start_server(["--model-repository", str(repo), "--builtin-models", "none",
                      "--max-batch-size", "16", "--max-latency", "5"])
    t = time.time()
    results = concurrent(32, lambda i: infer(s, "slow", 1, start=i)[0])
    assert all(r.status_code == 200 for r in results)
    # Unbatched: 32 executions of 100 ms (3.2 s); batched: a few.
    assert time.time() - t < 2.0


def test_kserve_batcher_block_and_v1_instances(start_server, tmp_path):
    repo = sleep_repo(tmp_path, "slow", """
format: sleep
batcher: {maxBatchSize: 16, maxLatency: 5}
parameters: {sleep_us: 100000}
""")
    s = start_server(["--model-repository", str(repo), "--builtin-models", "none"])

    def one(i):
        body = {"instances": [[i, i + 0.5]]}
        r = requests.post(f"{s.url}/v1/models/slow:predict", json=body, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json() == {"predictions": [[i, i + 0.5]]}

    t = time.time()
    concurrent(32, one)
    assert time.time() - t < 2.0  # unbatched: 32 × 100 ms


def test_xgboost_batched_predictions_equal_unbatched(start_server, tmp_path):
    xgb = pytest.importorskip("xgboost")
    src = EXAMPLES / "xgboost-iris"
    repo = tmp_path / "repo"
    shutil.copytree(src, repo / "iris-batched")
    (repo / "iris-batched" / "config.yaml").write_text(
        "max_batch_size: 64\ndynamic_batching: {max_queue_delay_microseconds: 2000}\n")
    s = start_server(["--model-repository", str(repo), "--builtin-models", "none"])
    booster = xgb.Booster()
    booster.load_model(str(next(src.glob("model.*"))))
    rng = np.random.default_rng(7)

    def one(i):
        x = rng.uniform(0, 8, size=(1 + i % 3, 4)).astype(np.float32)
        body = {"inputs": [{"name": "input-0", "shape": list(x.shape), "datatype": "FP32",
                            "data": x.ravel().tolist()}]}
        r = requests.post(f"{s.url}/v2/models/iris-batched/infer", json=body, timeout=30)
        assert r.status_code == 200, r.text
        got = np.array(r.json()["outputs"][0]["data"]).reshape(r.json()["outputs"][0]["shape"])
        np.testing.assert_allclose(got, booster.predict(xgb.DMatrix(x)), atol=1e-6)

    concurrent(48, one)


def test_binary_inputs_and_outputs_are_batched(start_server, tmp_path):
    repo = sleep_repo(tmp_path, "slow", """
format: sleep
max_batch_size: 32
dynamic_batching: {max_queue_delay_microseconds: 5000}
parameters: {sleep_us: 50000}
""")
    s = start_server(["--model-repository", str(repo), "--builtin-models", "none"])
    import json

    def one(i):
        x = np.full((2, 3), i, dtype=np.float32)
        header = json.dumps({"inputs": [{"name": "INPUT0", "shape": [2, 3], "datatype": "FP32",
                                         "parameters": {"binary_data_size": x.nbytes}}],
                             "parameters": {"binary_data_output": True}}).encode()
        r = requests.post(f"{s.url}/v2/models/slow/infer", data=header + x.tobytes(),
                          headers={"Inference-Header-Content-Length": str(len(header))},
                          timeout=30)
        assert r.status_code == 200, r.text
        n = int(r.headers["Inference-Header-Content-Length"])
        out = np.frombuffer(r.content[n:], dtype=np.float32).reshape(2, 3)
        np.testing.assert_array_equal(out, x)

    t = time.time()
    concurrent(32, one)
    assert time.time() - t < 2.0  # unbatched: 32 × 100 ms


def test_bad_batching_config_fails_the_model_with_the_field(start_server, tmp_path):
    repo = sleep_repo(tmp_path, "bad", """
format: sleep
max_batch_size: 4
dynamic_batching: {preferred_batch_sizes: [8]}
""")
    s = start_server(["--model-repository", str(repo), "--builtin-models", "none"],
                     wait_ready=False)
    deadline = time.time() + 10
    while time.time() < deadline:
        r = s.get("/v2/models/bad/ready")
        if r.status_code == 503 and r.json().get("state") == "FAILED":
            break
        time.sleep(0.05)
    assert "dynamic_batching.preferred_batch_sizes[0]: must be between 1 and max_batch_size (4)" \
        in r.json()["reason"], r.text
