"""kserve.errors: the exceptions whose type decides an answer's status."""
from quiver_model.errors import (InferenceError, InvalidInput, ModelMissingError, ModelNotFound,
                                 ModelNotReady, UnsupportedProtocol)

__all__ = ["InferenceError", "InvalidInput", "ModelMissingError", "ModelNotFound",
           "ModelNotReady", "UnsupportedProtocol"]
