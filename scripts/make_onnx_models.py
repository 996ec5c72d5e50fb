#!/usr/bin/python3
"""Exports the example ONNX models and the fixtures the ONNX runtime's tests check against.

Run with Debian's Python (python3-torch 1.13, python3-numpy):

    /usr/bin/python3 scripts/make_onnx_models.py

Writes (fixed seeds, so re-running gives the same weights and outputs):
  examples/models/onnx-mlp/model.onnx        an MLP, input "features" [batch, 16], outputs
                                             "logits" and "probabilities" [batch, 4]
  src/runtimes/onnx/testdata/cnn.onnx        a small CNN, input "image" [batch, 1, 16, 16], output
                                             "logits" [batch, 10]
  src/runtimes/onnx/testdata/two_inputs.onnx inputs "a", "b" [batch, 4]; outputs "sum", "product"
                                             [batch, 4] and "total" [batch] (OpenCV computes the
                                             last as [batch, 1])
  src/runtimes/onnx/testdata/argmax.onnx     input "x" [batch, 4]; outputs "index" (INT64 [batch],
                                             ArgMax) and "rounded" (INT32 [batch, 4])
  src/runtimes/onnx/testdata/topk.onnx       uses TopK, which OpenCV dnn 4.6 has no layer for
  src/runtimes/onnx/testdata/reduce_sum_opset13.onnx
                                             ReduceSum as opset 13 writes it (axes as an input),
                                             which OpenCV dnn 4.6 refuses
  src/runtimes/onnx/testdata/expected.json   for each served model: a few inputs and what the
                                             torch module returns for them

The tests import this file for the model definitions (tests/integration/test_onnx.py exports
fresh copies and compares against torch on random inputs).

Every model has a dynamic batch dimension: OpenCV dnn 4.6 runs these graphs at any batch size
(it re-plans the network when the input shape changes). Opset 11: the newest OpenCV 4.6 imports
for all of these operators (its ReduceSum, for one, only understands opset 11's form).
"""
import json
import pathlib
import re

import numpy as np
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLE_MLP = ROOT / "examples" / "models" / "onnx-mlp" / "model.onnx"
TESTDATA = ROOT / "src" / "runtimes" / "onnx" / "testdata"
OPSET = 11


class Mlp(torch.nn.Module):
    """16 features -> 32 -> 32 -> 4 classes; returns the logits and their softmax."""

    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Sequential(
            torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32), torch.nn.ReLU())
        self.head = torch.nn.Linear(32, 4)

    def forward(self, features):
        logits = self.head(self.hidden(features))
        return logits, torch.softmax(logits, dim=1)


class Cnn(torch.nn.Module):
    """A 16x16 single-channel image -> 10 logits: conv-bn-relu-pool, conv-relu-pool, linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(4)
        self.conv2 = torch.nn.Conv2d(4, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8 * 4 * 4, 10)

    def forward(self, image):
        x = torch.max_pool2d(torch.relu(self.bn1(self.conv1(image))), 2)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc(torch.flatten(x, 1))  # Flatten, not view(): no Shape op for OpenCV


class TwoInputs(torch.nn.Module):
    def forward(self, a, b):
        total = a + b
        return total, a * b, total.sum(dim=1)


class ArgMax(torch.nn.Module):
    """Integer outputs: OpenCV computes them in FP32, the runtime converts them back."""

    def forward(self, x):
        return torch.argmax(x, dim=1), (x * 2).round().to(torch.int32)


class TopK(torch.nn.Module):
    def forward(self, x):
        return torch.topk(x, 2, dim=1).values


class RowSum(torch.nn.Module):
    def forward(self, x):
        return x.sum(dim=1)


def build_mlp():
    torch.manual_seed(1)
    return Mlp().eval()


def build_cnn():
    torch.manual_seed(2)
    model = Cnn()
    # Non-trivial batch-norm statistics, so that folding them into the convolution matters.
    with torch.no_grad():
        model.bn1.running_mean.uniform_(-0.5, 0.5)
        model.bn1.running_var.uniform_(0.5, 2.0)
        model.bn1.weight.uniform_(0.5, 1.5)
        model.bn1.bias.uniform_(-0.2, 0.2)
    return model.eval()


# name -> (build, input names and per-row shapes, output names, opset)
MODELS = {
    "mlp": (build_mlp, {"features": (16,)}, ["logits", "probabilities"], OPSET),
    "cnn": (build_cnn, {"image": (1, 16, 16)}, ["logits"], OPSET),
    "two_inputs": (TwoInputs, {"a": (4,), "b": (4,)}, ["sum", "product", "total"], OPSET),
    "argmax": (ArgMax, {"x": (4,)}, ["index", "rounded"], OPSET),
    "topk": (TopK, {"x": (8,)}, ["top"], OPSET),
    "reduce_sum_opset13": (RowSum, {"x": (8,)}, ["total"], 13),
}


def export(name, path):
    """Exports MODELS[name] to `path` with a dynamic batch dimension; returns the module."""
    build, inputs, outputs, opset = MODELS[name]
    module = build()
    example = tuple(torch.zeros((2,) + shape) for shape in inputs.values())
    dynamic = {n: {0: "batch"} for n in list(inputs) + outputs}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(module, example, str(path), input_names=list(inputs),
                      output_names=outputs, dynamic_axes=dynamic, opset_version=opset)
    return module


def run_torch(name, module, inputs):
    """{input name: float32 array} -> {output name: float32 array}, as MODELS[name] computes."""
    outputs = MODELS[name][2]
    with torch.no_grad():
        result = module(*(torch.from_numpy(np.ascontiguousarray(x)) for x in inputs.values()))
    if not isinstance(result, tuple):
        result = (result,)
    return {n: r.numpy() for n, r in zip(outputs, result)}


def random_inputs(name, rows, seed):
    rng = np.random.default_rng(seed)
    shapes = MODELS[name][1]
    return {n: rng.normal(size=(rows,) + s).astype(np.float32) for n, s in shapes.items()}


DATATYPES = {"float32": "FP32", "int32": "INT32", "int64": "INT64"}


def as_json_float(v):
    """A float32 as the shortest decimal that reads back (as a double, then cast) to itself."""
    d = float(np.format_float_positional(np.float32(v), unique=True))
    assert np.float32(d) == np.float32(v), v
    return d


def fixture(module, name, rows, seed):
    inputs = random_inputs(name, rows, seed)
    outputs = run_torch(name, module, inputs)
    return {
        "inputs": {n: {"shape": list(x.shape), "data": [as_json_float(v) for v in x.ravel()]}
                   for n, x in inputs.items()},
        "outputs": {n: {"shape": list(y.shape), "datatype": DATATYPES[y.dtype.name],
                        "data": [as_json_float(v) if y.dtype.kind == "f" else int(v)
                                 for v in y.ravel()]}
                    for n, y in outputs.items()},
    }


def main():
    expected = {}
    paths = {"mlp": EXAMPLE_MLP, "cnn": TESTDATA / "cnn.onnx",
             "two_inputs": TESTDATA / "two_inputs.onnx", "argmax": TESTDATA / "argmax.onnx",
             "topk": TESTDATA / "topk.onnx",
             "reduce_sum_opset13": TESTDATA / "reduce_sum_opset13.onnx"}
    for seed, (name, path) in enumerate(paths.items()):
        module = export(name, path)
        if name in ("mlp", "cnn", "two_inputs", "argmax"):
            expected[name] = fixture(module, name, rows=3, seed=100 + seed)
        print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")
    out = TESTDATA / "expected.json"
    # One line per array of numbers keeps the file short and its diffs readable.
    text = re.sub(r"\[\s+([-0-9.e,\s]+?)\s+\]",
                  lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]",
                  json.dumps(expected, indent=1))
    out.write_text(text + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
