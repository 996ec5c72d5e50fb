"""Helpers KServe's model servers use (kserve.utils.utils), for models that call them."""
import uuid

import numpy as np

from .errors import InvalidInput
from .infer_type import InferOutput, InferRequest, InferResponse, from_np_dtype


def generate_uuid():
    return str(uuid.uuid4())


def get_predict_input(payload, columns=None):
    """The model input of a V1 dict ("instances" or "inputs") or of a V2 request (its first
    input, or a DataFrame of all inputs when parameters.content_type is "pd")."""
    if isinstance(payload, dict):
        if "inputs" in payload:
            instances = payload["inputs"]
        elif "instances" in payload:
            instances = payload["instances"]
        else:
            raise InvalidInput('Expected "instances" or "inputs" in the request')
        if not isinstance(instances, list):
            raise InvalidInput('Expected "instances" to be a list')
        if instances and isinstance(instances[0], dict):
            try:
                import pandas as pd
            except ImportError:
                raise InvalidInput("instances given as objects need pandas, which is not "
                                   "installed") from None
            return pd.concat([pd.DataFrame(i, columns=columns, index=[0]) for i in instances],
                             axis=0)
        return np.array(instances)
    if isinstance(payload, InferRequest):
        parameters = payload.parameters or {}
        if parameters.get("content_type") == "pd":
            return payload.as_dataframe()
        if not payload.inputs:
            raise InvalidInput("the request has no inputs")
        return payload.inputs[0].as_numpy()
    raise InvalidInput(f"unexpected payload of type {type(payload).__name__}")


def get_predict_response(payload, result, model_name):
    """{"predictions": [...]} for a V1 request; an InferResponse with "output-0" for V2."""
    if isinstance(payload, dict):
        if isinstance(result, np.ndarray):
            result = result.tolist()
        elif hasattr(result, "iterrows"):  # a pandas DataFrame
            result = [row.to_dict() for _, row in result.iterrows()]
        return {"predictions": result}
    result = np.asarray(result)
    output = InferOutput(name="output-0", shape=list(result.shape),
                         datatype=from_np_dtype(result.dtype), data=result)
    return InferResponse(model_name=model_name, infer_outputs=[output],
                         response_id=payload.id if payload.id else generate_uuid())
