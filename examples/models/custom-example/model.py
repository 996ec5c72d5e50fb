"""Nearest-centroid iris classifier: a custom Quiver model written as for KServe.

It shows the whole request path of a KServe Model:
- load() reads the model's data once (centroids.json; the worker's working directory is this
  folder);
- preprocess() checks the request and turns it into a float64 array, for both protocols;
- predict() finds each row's nearest centroid (an async method, to show that works too);
- postprocess() adds the species names.

V1  POST /v1/models/custom-example:predict  {"instances": [[6.8, 2.8, 4.8, 1.4]]}
    -> {"predictions": [1], "labels": ["versicolor"]}
V2  POST /v2/models/custom-example/infer     one FP32/FP64 input [n, 4] under any name
    -> outputs "output-0" (INT64 [n], the class) and "label" (BYTES [n], its name)

The only line that differs from a KServe model server file is none: `from kserve import ...`
resolves to Quiver's compatible classes inside a Quiver worker.
"""
import json

import numpy as np
from kserve import InferOutput, InferRequest, InferResponse, Model
from kserve.errors import InvalidInput


class IrisCentroids(Model):
    def __init__(self, name: str):
        super().__init__(name)
        self.centroids = None
        self.labels = None

    def load(self):
        with open("centroids.json", encoding="utf-8") as f:
            spec = json.load(f)
        self.centroids = np.asarray(spec["centroids"], dtype=np.float64)
        self.labels = spec["labels"]
        self.ready = True

    def preprocess(self, payload, headers=None):
        """Decodes and checks the request, in either protocol, into a float64 array [n, 4]."""
        if isinstance(payload, InferRequest):  # V2: numpy arrays
            if len(payload.inputs) != 1:
                raise InvalidInput("expected one input of shape [n, 4]")
            rows = payload.inputs[0].as_numpy()  # a view of shared memory: no copy
        else:  # V1: the JSON body as a dict
            rows = payload.get("instances")
        x = np.asarray(rows, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.centroids.shape[1]:
            raise InvalidInput(f"expected rows of {self.centroids.shape[1]} measurements, "
                               f"got shape {list(x.shape)}")
        return {"x": x, "request": payload}

    async def predict(self, inputs, headers=None):
        """The nearest centroid of each row (an async method works as well as a plain one)."""
        x = inputs["x"]
        distances = ((x[:, None, :] - self.centroids[None, :, :]) ** 2).sum(axis=2)
        return {"classes": distances.argmin(axis=1).astype(np.int64),
                "request": inputs["request"]}

    def postprocess(self, result, headers=None):
        """Encodes the answer in the request's protocol, with the species names."""
        classes = result["classes"]
        names = [self.labels[c] for c in classes]
        request = result["request"]
        if isinstance(request, InferRequest):
            return InferResponse(request.id, self.name, [
                InferOutput("output-0", list(classes.shape), "INT64", classes),
                InferOutput("label", [len(names)], "BYTES", np.array(names, dtype=object)),
            ])
        return {"predictions": classes.tolist(), "labels": names}
