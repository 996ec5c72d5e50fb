"""kserve.protocol.infer_type: InferRequest, InferResponse, InferInput, InferOutput."""
from quiver_model.infer_type import (InferInput, InferOutput, InferRequest, InferResponse,
                                     RequestedOutput, deserialize_bytes_tensor, from_np_dtype,
                                     serialize_byte_tensor, to_np_dtype)

__all__ = ["InferInput", "InferOutput", "InferRequest", "InferResponse", "RequestedOutput",
           "deserialize_bytes_tensor", "serialize_byte_tensor", "to_np_dtype", "from_np_dtype"]
