#!/usr/bin/python3
"""Makes the example TorchScript model and the fixtures the TorchScript runtime is tested with.

Run with Debian's Python (python3-torch 1.13, python3-numpy):

    /usr/bin/python3 scripts/make_torchscript_models.py

Writes, all deterministic (fixed seeds, one thread), so re-running reproduces the same tensors:
  examples/models/torchscript-mlp/model.pt          MLP 4 -> 16 -> 3 (torch.jit.script); its
                                                    config.yaml is written by hand, not here
  src/runtimes/torchscript/testdata/cnn.pt          small CNN, [N, 1, 28, 28] -> conv 3x3 (4
                                                    channels) -> ReLU -> max-pool 2 -> fc -> 10
                                                    (torch.jit.trace)
  src/runtimes/torchscript/testdata/tuple.pt        returns (x.sum(1), x.argmax(1)): FP32, INT64
  src/runtimes/torchscript/testdata/list.pt         returns [x.min(1), x.max(1)] as List[Tensor]
  src/runtimes/torchscript/testdata/dict.pt         returns {"doubled": 2x, "total": x.sum(1)}
  src/runtimes/torchscript/testdata/two_inputs.pt   forward(a, b) = a - 2 b (order matters)
  src/runtimes/torchscript/testdata/optional.pt     forward(x, bias: Optional[Tensor] = None)
  src/runtimes/torchscript/testdata/identity.pt     returns its input (datatype round trips)
  src/runtimes/torchscript/testdata/int_argument.pt forward(x, k: int): not servable (k is
                                                    required and not a tensor)
  src/runtimes/torchscript/testdata/scalars.pt      returns (x.sum(), x.size(0), 2.5, True)
  src/runtimes/torchscript/testdata/raises.pt       raises ValueError on a negative input
  src/runtimes/torchscript/testdata/expected.json   for each model: fixed inputs and what
                                                    torch.jit.load(file)(*inputs) returns, with
                                                    the output names Quiver gives them

Expected outputs are computed from the saved files (torch.jit.load), not the in-memory modules,
since the files are what Quiver loads.
"""
import json
import pathlib
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor, nn

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "models" / "torchscript-mlp"
TESTDATA = ROOT / "src" / "runtimes" / "torchscript" / "testdata"


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 16)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, kernel_size=3)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * 13 * 13, 10)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(torch.relu(self.conv(x)))
        return self.fc(torch.flatten(x, 1))


class TupleOut(nn.Module):
    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        return x.sum(1), x.argmax(1)


class ListOut(nn.Module):
    def forward(self, x: Tensor) -> List[Tensor]:
        return [x.min(1).values, x.max(1).values]


class DictOut(nn.Module):
    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        return {"doubled": x * 2, "total": x.sum(1)}


class TwoInputs(nn.Module):
    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return a - 2 * b


class OptionalInput(nn.Module):
    def forward(self, x: Tensor, bias: Optional[Tensor] = None) -> Tensor:
        if bias is None:
            return x
        return x + bias


class Identity(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x


class IntArgument(nn.Module):
    def forward(self, x: Tensor, k: int) -> Tensor:
        return x * k


class Scalars(nn.Module):
    def forward(self, x: Tensor) -> Tuple[Tensor, int, float, bool]:
        return x.sum(), x.size(0), 2.5, True


class Raises(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        if bool((x < 0).any()):
            raise ValueError("negative input")
        return x * 2


def as_json_float(v):
    """A float32 as the shortest decimal that reads back (as a double, then cast) to itself."""
    d = float(np.format_float_positional(np.float32(v), unique=True))
    assert np.float32(d) == np.float32(v), v
    return d


DATATYPES = {torch.float32: "FP32", torch.int64: "INT64", torch.float64: "FP64"}


def tensor_json(t, name=None):
    t = t.detach().contiguous()
    if t.dtype == torch.float32:
        data = [as_json_float(v) for v in t.flatten().tolist()]
    elif t.dtype == torch.int64:
        data = [int(v) for v in t.flatten().tolist()]
    else:
        raise TypeError(t.dtype)
    out = {"datatype": DATATYPES[t.dtype], "shape": list(t.shape), "data": data}
    if name is not None:
        out = {"name": name, **out}
    return out


def named_outputs(result):
    """Quiver's names: OUTPUT__0 for a tensor, OUTPUT__i for tuple/list items, keys of a dict."""
    if isinstance(result, torch.Tensor):
        return [("OUTPUT__0", result)]
    if isinstance(result, (tuple, list)):
        return [(f"OUTPUT__{i}", t) for i, t in enumerate(result)]
    if isinstance(result, dict):
        return list(result.items())
    raise TypeError(type(result))


def save(module, path, example=None):
    module.eval()
    if example is None:
        scripted = torch.jit.script(module)
    else:
        with torch.no_grad():
            scripted = torch.jit.trace(module, example)
    path.parent.mkdir(parents=True, exist_ok=True)
    scripted.save(str(path))


def expected(path, inputs):
    model = torch.jit.load(str(path))
    model.eval()
    with torch.inference_mode():
        result = model(*inputs)
    return {
        "file": str(path.relative_to(ROOT)),
        "inputs": [tensor_json(t) for t in inputs],
        "outputs": [tensor_json(t, name) for name, t in named_outputs(result)],
    }


def main():
    torch.manual_seed(20240601)
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(7)

    def randn(*shape):
        # Rounded to float32's shortest decimals, so the JSON inputs are exactly these tensors.
        return torch.randn(*shape, generator=gen, dtype=torch.float32)

    fixtures = {}

    mlp = EXAMPLE / "model.pt"
    save(Mlp(), mlp)
    fixtures["mlp"] = expected(mlp, [randn(5, 4)])

    cnn = TESTDATA / "cnn.pt"
    save(Cnn(), cnn, example=randn(1, 1, 28, 28))
    fixtures["cnn"] = expected(cnn, [randn(2, 1, 28, 28)])

    for name, module in (("tuple", TupleOut()), ("list", ListOut()), ("dict", DictOut())):
        save(module, TESTDATA / f"{name}.pt")
        fixtures[name] = expected(TESTDATA / f"{name}.pt", [randn(3, 4)])

    save(TwoInputs(), TESTDATA / "two_inputs.pt")
    fixtures["two_inputs"] = expected(TESTDATA / "two_inputs.pt", [randn(2, 3), randn(2, 3)])

    save(OptionalInput(), TESTDATA / "optional.pt")
    fixtures["optional"] = expected(TESTDATA / "optional.pt", [randn(2, 3), randn(2, 3)])
    fixtures["optional_default"] = expected(TESTDATA / "optional.pt", [randn(2, 3)])

    save(Identity(), TESTDATA / "identity.pt")
    save(IntArgument(), TESTDATA / "int_argument.pt")
    save(Scalars(), TESTDATA / "scalars.pt")
    save(Raises(), TESTDATA / "raises.pt")
    fixtures["raises"] = expected(TESTDATA / "raises.pt", [torch.tensor([[1.0, 2.5]])])

    with open(TESTDATA / "expected.json", "w") as f:
        json.dump(fixtures, f, indent=1)
        f.write("\n")
    total = sum(p.stat().st_size for p in [mlp, *TESTDATA.iterdir()])
    print(f"wrote {mlp.relative_to(ROOT)} and {len(list(TESTDATA.iterdir()))} files in "
          f"{TESTDATA.relative_to(ROOT)} ({total} bytes in all)")


if __name__ == "__main__":
    main()
