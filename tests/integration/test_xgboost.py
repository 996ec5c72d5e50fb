"""`quiver serve` with the example XGBoost models answers as KServe's xgbserver does.

Expected predictions come from Debian's python3-xgboost on the same model files:
booster.predict(xgb.DMatrix(x)), which is what xgbserver returns.
"""
import pathlib
import re
import shutil
import time

import numpy as np
import pytest
import xgboost as xgb

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples" / "models"
FEATURES = {"xgboost-iris": 4, "xgboost-regressor": 20}


@pytest.fixture
def repository(tmp_path):
    """A model repository holding only the two XGBoost examples."""
    for name in FEATURES:
        shutil.copytree(EXAMPLES / name, tmp_path / name)
    return tmp_path


def serve(start_server, repository):
    server = start_server(["--model-repository", str(repository)])
    deadline = time.time() + 30
    for name in FEATURES:
        while server.get(f"/v2/models/{name}/ready").status_code != 200:
            assert time.time() < deadline, f"{name} not ready:\n{server.log}"
            time.sleep(0.05)
    return server


def random_rows(model, rows, seed):
    rng = np.random.default_rng(seed)
    if model == "xgboost-iris":  # the iris measurements are a few centimetres
        return rng.uniform(0.0, 8.0, size=(rows, 4))
    return rng.normal(size=(rows, FEATURES[model]))


def infer(server, model, x, datatype, name="input-0"):
    body = {"inputs": [{"name": name, "shape": list(x.shape), "datatype": datatype,
                        "data": x.ravel().tolist()}]}
    return server.post(f"/v2/models/{model}/infer", json=body)


def test_predictions_match_python_xgboost(start_server, repository):
    server = serve(start_server, repository)
    seed = 0
    for model in FEATURES:
        booster = xgb.Booster(model_file=str(repository / model / "model.json"))
        for rows in (1, 50):
            for datatype, dtype in (("FP32", np.float32), ("FP64", np.float64)):
                seed += 1
                x = random_rows(model, rows, seed).astype(dtype)
                # xgbserver takes its one input under any name.
                name = "input-0" if seed % 2 else "features"
                r = infer(server, model, x, datatype, name)
                case = f"{model}, {rows} rows of {datatype}"
                assert r.status_code == 200, f"{case}: {r.status_code} {r.text}"
                body = r.json()
                assert body["model_name"] == model
                assert len(body["outputs"]) == 1, case
                out = body["outputs"][0]
                expected = booster.predict(xgb.DMatrix(x))
                assert out["name"] == "output-0", case
                assert out["datatype"] == "FP32", case
                assert out["shape"] == list(expected.shape), case
                got = np.asarray(out["data"], dtype=np.float64).reshape(expected.shape)
                np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6, err_msg=case)


def test_metadata(start_server, repository):
    server = serve(start_server, repository)
    r = server.get("/v2/models/xgboost-iris")
    assert r.status_code == 200, r.text
    meta = r.json()
    assert meta["name"] == "xgboost-iris"
    assert meta["platform"] == "xgboost"
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP32", "shape": [-1, 4]}]
    assert meta["outputs"] == [{"name": "output-0", "datatype": "FP32", "shape": [-1, 3]}]

    r = server.get("/v2/models/xgboost-regressor")
    assert r.status_code == 200, r.text
    meta = r.json()
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP32", "shape": [-1, 20]}]
    assert meta["outputs"] == [{"name": "output-0", "datatype": "FP32", "shape": [-1]}]


def test_wrong_feature_count_is_400_naming_the_count(start_server, repository):
    server = serve(start_server, repository)
    r = infer(server, "xgboost-iris", np.ones((2, 5), dtype=np.float32), "FP32")
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert re.search(r"\b4 features\b", error), error
    assert re.search(r"\bgot 5\b", error), error
    # The server still answers well-formed requests afterwards.
    assert infer(server, "xgboost-iris", np.ones((2, 4), dtype=np.float32), "FP32").ok
