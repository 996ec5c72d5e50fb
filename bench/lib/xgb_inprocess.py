#!/usr/bin/python3
"""In-process XGBoost baseline for bench/batching_bench.py: predictions on one model in a loop,
one thread, through python3-xgboost's libxgboost and the same C call Quiver's XGBoost runtime
makes (XGBoosterPredictFromDense on a dense float32 array with a reused proxy DMatrix; values,
all trees, NaN missing; nthread set on the booster). Called through ctypes rather than
Booster.inplace_predict: in XGBoost 1.7 that method spends ~0.5 ms per call probing for
optional array libraries (failed imports of cupy/cudf on every call), which would make the
baseline measure Python, not XGBoost.

  xgb_inprocess.py run --model M --batch B --seconds S [--nthread 1]
      prints JSON: calls, rows, seconds (wall), cpu (process CPU seconds), first output
  xgb_inprocess.py describe --model M
      prints JSON: trees, features
  xgb_inprocess.py make --out FILE [--trees 100] [--features 20]
      trains a depth-6 regressor on synthetic data and saves it (JSON model)

Each call gets one of 256 distinct inputs (XGBoost caches nothing for inplace prediction, but
varying inputs keeps branch predictors honest). Input values ~ N(2, 2), as
xgboost_predict_bench uses.
"""
import argparse
import ctypes
import json
import sys
import time

import numpy as np
import xgboost as xgb
from xgboost.core import _LIB, _check_call, c_bst_ulong

PREDICT_CONFIG = (b'{"type":0,"training":false,"iteration_begin":0,"iteration_end":0,'
                  b'"strict_shape":false,"cache_id":0,"missing":NaN}')


def load(path, nthread):
    booster = xgb.Booster()
    booster.load_model(path)
    booster.set_param({"nthread": nthread})
    return booster


def run(a):
    booster = load(a.model, a.nthread)
    features = booster.num_features()
    proxy = ctypes.c_void_p()
    _check_call(_LIB.XGProxyDMatrixCreate(ctypes.byref(proxy)))
    rng = np.random.default_rng(1)
    inputs = [rng.normal(2, 2, (a.batch, features)).astype(np.float32) for _ in range(256)]
    ifaces = [json.dumps({"data": [x.ctypes.data, True], "shape": [a.batch, features],
                          "typestr": "<f4", "version": 3}).encode() for x in inputs]
    shape = ctypes.POINTER(c_bst_ulong)()
    dims = c_bst_ulong()
    out = ctypes.POINTER(ctypes.c_float)()

    def call(i):
        _check_call(_LIB.XGBoosterPredictFromDense(
            booster.handle, ifaces[i % 256], PREDICT_CONFIG, proxy, ctypes.byref(shape),
            ctypes.byref(dims), ctypes.byref(out)))

    for i in range(50):  # warm-up
        call(i)
    # The result must be what Booster.predict gives (checked once, outside the timing).
    want = booster.inplace_predict(inputs[0])
    call(0)
    got = np.ctypeslib.as_array(out, shape=(a.batch,))
    if not np.allclose(got, want, rtol=1e-6):
        sys.exit("xgb_inprocess: C API result differs from inplace_predict")
    n = 0
    t0, c0 = time.perf_counter(), time.process_time()
    deadline = t0 + a.seconds
    while True:
        for _ in range(16):
            call(n)
            n += 1
        if time.perf_counter() >= deadline:
            break
    t1, c1 = time.perf_counter(), time.process_time()
    print(json.dumps({"calls": n, "rows": n * a.batch, "seconds": t1 - t0, "cpu": c1 - c0,
                      "batch": a.batch, "nthread": a.nthread, "first": float(got[0])}))


def describe(a):
    booster = load(a.model, 1)
    print(json.dumps({"trees": booster.num_boosted_rounds(), "features": booster.num_features(),
                      "xgboost": xgb.__version__}))


def make(a):
    rng = np.random.default_rng(0)
    x = rng.normal(2, 2, (5000, a.features)).astype(np.float32)
    y = x @ rng.normal(size=a.features) + np.sin(x[:, 0]) + rng.normal(0, 0.1, 5000)
    booster = xgb.train({"max_depth": 6, "eta": 0.1, "objective": "reg:squarederror",
                         "nthread": 1}, xgb.DMatrix(x, label=y), num_boost_round=a.trees)
    booster.save_model(a.out)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--model", required=True)
    r.add_argument("--batch", type=int, required=True)
    r.add_argument("--seconds", type=float, default=3)
    r.add_argument("--nthread", type=int, default=1)
    d = sub.add_parser("describe")
    d.add_argument("--model", required=True)
    m = sub.add_parser("make")
    m.add_argument("--out", required=True)
    m.add_argument("--trees", type=int, default=100)
    m.add_argument("--features", type=int, default=20)
    a = ap.parse_args()
    {"run": run, "describe": describe, "make": make}[a.cmd](a)


if __name__ == "__main__":
    main()
