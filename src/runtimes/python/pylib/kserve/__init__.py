"""A `kserve` module for code written for KServe's Python model server, running in Quiver.

Quiver's Python workers put this folder first on sys.path, so `from kserve import Model,
InferRequest, ...` gives quiver_model's classes, which Quiver knows how to serve. Only the parts a
model uses are here: Quiver itself is the server, so ModelServer.start() is not available.
"""
from quiver_model import (InferenceError, InferInput, InferOutput, InferRequest, InferResponse,
                          InvalidInput, Model, PredictorConfig, PredictorProtocol,
                          RequestedOutput)

from . import errors, logging, model_server
from .model_server import ModelServer

__all__ = [
    "Model", "ModelServer", "model_server", "PredictorConfig", "PredictorProtocol",
    "InferRequest", "InferResponse", "InferInput", "InferOutput", "RequestedOutput",
    "InvalidInput", "InferenceError", "errors", "logging",
]
