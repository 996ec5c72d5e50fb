#!/usr/bin/python3
"""Makes the scikit-learn models of the Python runtime's examples and tests with Debian's
python3-sklearn (run with /usr/bin/python3):

    scripts/make_python_models.py            # examples/models/sklearn-iris/model.joblib and
                                             # examples/models/custom-example/centroids.json
    scripts/make_python_models.py --out DIR  # the same files under DIR/

The tests (tests/integration/test_python_runtime.py) import this file and call the make_*
functions to build their own variants (string labels, a regressor, a pickle) in temporary
repositories; their expected answers come from the same estimator objects.
"""
import argparse
import json
import pathlib
import pickle

import joblib
import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression

ROOT = pathlib.Path(__file__).resolve().parents[1]


def iris():
    data = load_iris()
    return data.data, data.target, data.target_names


def make_iris_classifier(path, string_labels=False):
    """A LogisticRegression on iris, saved with joblib (or pickle for *.pkl / *.pickle).
    With string_labels, the classes are the species names, so predict returns strings."""
    x, y, names = iris()
    if string_labels:
        y = names[y]
    model = LogisticRegression(max_iter=1000, random_state=0)
    model.fit(x, y)
    _save(model, path)
    return model


def make_regressor(path, features=5, seed=0):
    """A LinearRegression on random data: predict returns FP64 values."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, features))
    y = x @ rng.normal(size=features) + 0.1 * rng.normal(size=200)
    model = LinearRegression().fit(x, y)
    _save(model, path)
    return model


def make_iris_centroids(path):
    """The custom example's data: the mean measurements of each iris species."""
    x, y, names = iris()
    centroids = [x[y == k].mean(axis=0).round(4).tolist() for k in range(len(names))]
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"labels": names.tolist(), "centroids": centroids}, indent=2)
                    + "\n")


def _save(model, path):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix in (".pkl", ".pickle"):
        with open(path, "wb") as f:
            pickle.dump(model, f)
    else:
        joblib.dump(model, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "examples" / "models",
                        help="the model repository to write into (default: examples/models)")
    args = parser.parse_args()
    target = args.out / "sklearn-iris" / "model.joblib"
    make_iris_classifier(target)
    print(f"wrote {target}")
    target = args.out / "custom-example" / "centroids.json"
    make_iris_centroids(target)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
