#!/usr/bin/python3
"""Trains the example XGBoost models and the fixture the runtime's unit test checks against.

Run with Debian's Python (python3-xgboost 1.7, python3-sklearn, python3-numpy):

    /usr/bin/python3 scripts/train_xgboost_models.py

Writes, all deterministic (fixed seeds, one thread), so re-running reproduces the same bytes:
  examples/models/xgboost-iris/model.json       multi:softprob on iris, 20 rounds x 3 classes
  examples/models/xgboost-regressor/model.json  reg:squarederror, 20 features, 100 trees
  src/runtimes/xgboost/testdata/expected.json   a few input rows per model and what
                                                booster.predict(xgb.DMatrix(x)) returns for them,
                                                which is what KServe's xgbserver answers
  src/runtimes/xgboost/testdata/iris.ubj, iris.bst  the iris model in XGBoost's other two formats
  src/runtimes/xgboost/testdata/linear.json     a tiny gblinear model (no inplace prediction in
                                                XGBoost 1.7, so the runtime takes its other path)
"""
import json
import pathlib

import numpy as np
import xgboost as xgb
from sklearn.datasets import load_iris

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODELS = ROOT / "examples" / "models"
TESTDATA = ROOT / "src" / "runtimes" / "xgboost" / "testdata"
FIXTURE = TESTDATA / "expected.json"

# One thread and fixed seeds: multi-threaded histogram building can change float sums, and the
# committed files should not change when nothing else did.
COMMON_PARAMS = {"nthread": 1, "seed": 0}


def train_iris(path):
    # As KServe's xgboost-iris example: the whole iris set, one model predicting class
    # probabilities (multi:softprob, so predictions are [n, 3]).
    x, y = load_iris(return_X_y=True)
    params = {**COMMON_PARAMS, "objective": "multi:softprob", "num_class": 3, "max_depth": 3,
              "eta": 0.3}
    booster = xgb.train(params, xgb.DMatrix(x, label=y), num_boost_round=20)
    booster.save_model(str(path))
    return x.astype(np.float32)


def train_regressor(path):
    # Synthetic data with a little of everything trees like (linear, smooth, interaction) so the
    # 100 depth-6 trees are full-sized: this model stands in for a "real" tabular model in
    # batching benchmarks.
    rng = np.random.default_rng(20240601)
    x = rng.normal(size=(4000, 20)).astype(np.float32)
    y = (2.0 * x[:, 0] + np.sin(x[:, 1]) + x[:, 2] * x[:, 3] + np.abs(x[:, 4])
         + 0.1 * rng.normal(size=x.shape[0]))
    params = {**COMMON_PARAMS, "objective": "reg:squarederror", "max_depth": 6, "eta": 0.1}
    booster = xgb.train(params, xgb.DMatrix(x, label=y), num_boost_round=100)
    booster.save_model(str(path))
    return x


def train_linear(path):
    rng = np.random.default_rng(11)
    x = rng.normal(size=(200, 3)).astype(np.float32)
    y = (x[:, 0] - 0.5 * x[:, 2] > 0).astype(np.float32)
    params = {**COMMON_PARAMS, "booster": "gblinear", "objective": "binary:logistic"}
    booster = xgb.train(params, xgb.DMatrix(x, label=y), num_boost_round=10)
    booster.save_model(str(path))
    return x


def as_json_float(v):
    """A float32 as the shortest decimal that reads back (as a double, then cast) to itself."""
    d = float(np.format_float_positional(np.float32(v), unique=True))
    assert np.float32(d) == np.float32(v), v
    return d


def expected_for(model_path, rows):
    # Predict from the saved file, not the in-memory booster: the file is what Quiver loads.
    booster = xgb.Booster(model_file=str(model_path))
    rows = np.asarray(rows, dtype=np.float32)
    predictions = booster.predict(xgb.DMatrix(rows))
    return {
        "num_features": int(booster.num_features()),
        "inputs": [[as_json_float(v) for v in row] for row in rows],
        "output_shape": list(predictions.shape),
        "outputs": [as_json_float(v) for v in predictions.ravel()],
    }


def format_fixture(fixture):
    """JSON with one line per input row, so a diff of the fixture reads like the data."""
    def dump(value, indent):
        pad = " " * indent
        if isinstance(value, dict):
            items = [f'{pad}  {json.dumps(k)}: {dump(v, indent + 2).lstrip()}'
                     for k, v in value.items()]
            return pad + "{\n" + ",\n".join(items) + "\n" + pad + "}"
        if isinstance(value, list) and value and isinstance(value[0], list):
            rows = [pad + "  " + json.dumps(row) for row in value]
            return pad + "[\n" + ",\n".join(rows) + "\n" + pad + "]"
        return pad + json.dumps(value)
    return dump(fixture, 0) + "\n"


def main():
    iris_path = MODELS / "xgboost-iris" / "model.json"
    regressor_path = MODELS / "xgboost-regressor" / "model.json"
    for p in (iris_path, regressor_path, FIXTURE):
        p.parent.mkdir(parents=True, exist_ok=True)

    iris_x = train_iris(iris_path)
    regressor_x = train_regressor(regressor_path)
    linear_path = TESTDATA / "linear.json"
    linear_x = train_linear(linear_path)
    iris = xgb.Booster(model_file=str(iris_path))
    for other_format in ("iris.ubj", "iris.bst"):
        iris.save_model(str(TESTDATA / other_format))

    rng = np.random.default_rng(7)
    # Rows from the training data (one of each class) and a few outside it.
    iris_rows = np.concatenate([iris_x[[0, 60, 120]],
                                rng.uniform(0.0, 8.0, size=(2, 4)).astype(np.float32)])
    regressor_rows = np.concatenate([regressor_x[:2],
                                     rng.normal(size=(2, 20)).astype(np.float32)])
    fixture = {
        "generated_by": "scripts/train_xgboost_models.py with xgboost " + xgb.__version__,
        "xgboost-iris": expected_for(iris_path, iris_rows),
        "xgboost-regressor": expected_for(regressor_path, regressor_rows),
        "linear": expected_for(linear_path, linear_x[:3]),
    }
    FIXTURE.write_text(format_fixture(fixture))
    written = (iris_path, regressor_path, linear_path, TESTDATA / "iris.ubj",
               TESTDATA / "iris.bst", FIXTURE)
    for p in written:
        print(f"wrote {p.relative_to(ROOT)} ({p.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
