"""quiver_model: write a Python model for Quiver's `custom` format the way KServe users write
one. The names match KServe's (`kserve.Model`, `kserve.InferRequest`, ...), and Quiver's workers
also make this package importable as `kserve`, so `from kserve import Model` works unchanged.

    from quiver_model import Model          # or: from kserve import Model

    class MyModel(Model):
        def load(self):
            self.weights = ...
            self.ready = True

        def predict(self, payload, headers=None):
            return {"predictions": ...}
"""
from . import errors
from .errors import InferenceError, InvalidInput, ModelMissingError, ModelNotReady
from .infer_type import (InferInput, InferOutput, InferRequest, InferResponse, RequestedOutput,
                         from_np_dtype, to_np_dtype)
from .model import Model, PredictorConfig, PredictorProtocol

__all__ = [
    "Model", "PredictorConfig", "PredictorProtocol",
    "InferRequest", "InferResponse", "InferInput", "InferOutput", "RequestedOutput",
    "InvalidInput", "InferenceError", "ModelMissingError", "ModelNotReady", "errors",
    "to_np_dtype", "from_np_dtype",
]
