"""Open Inference Protocol (V2) requests and responses as Python objects, with the names and
attributes of KServe's kserve.protocol.infer_type, so predictor and transformer code written for
KServe runs unchanged.

In a Quiver worker, the inputs of a request are numpy arrays that view the shared memory the
server copied the request's tensors into: `as_numpy()` costs no copy. They are writable, and valid
only while the request runs: keep a copy (`arr.copy()`) to hold data past it.
"""
import struct
import uuid

import numpy as np

from .errors import InferenceError, InvalidInput

# Open Inference Protocol datatype <-> numpy dtype. BF16 has no numpy type: it is exposed as the
# raw 16-bit patterns (uint16).
_TO_NP = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BF16": np.dtype(np.uint16),
    "BYTES": np.dtype(np.object_),
}
_FROM_NP = {
    np.dtype(np.bool_): "BOOL",
    np.dtype(np.uint8): "UINT8",
    np.dtype(np.uint16): "UINT16",
    np.dtype(np.uint32): "UINT32",
    np.dtype(np.uint64): "UINT64",
    np.dtype(np.int8): "INT8",
    np.dtype(np.int16): "INT16",
    np.dtype(np.int32): "INT32",
    np.dtype(np.int64): "INT64",
    np.dtype(np.float16): "FP16",
    np.dtype(np.float32): "FP32",
    np.dtype(np.float64): "FP64",
}


def to_np_dtype(datatype):
    """numpy dtype for a protocol datatype name, or None."""
    return _TO_NP.get(datatype)


def from_np_dtype(dtype):
    """Protocol datatype name for a numpy dtype, or None. Strings and objects are BYTES."""
    dtype = np.dtype(dtype)
    if dtype.kind in ("U", "S", "O"):
        return "BYTES"
    if dtype.byteorder == ">":
        dtype = dtype.newbyteorder("<")
    return _FROM_NP.get(dtype)


def serialize_byte_tensor(tensor):
    """A BYTES tensor as the protocol's bytes: each element a 4-byte little-endian length and its
    bytes, row-major. str elements are UTF-8 encoded; other objects are str()-ed first."""
    parts = []
    pack = struct.Struct("<I").pack
    for item in np.asarray(tensor, dtype=object).ravel(order="C"):
        if isinstance(item, (bytes, bytearray, memoryview)):
            b = bytes(item)
        elif isinstance(item, np.bytes_):
            b = bytes(item)
        else:
            b = str(item).encode("utf-8")
        parts.append(pack(len(b)))
        parts.append(b)
    return b"".join(parts)


def deserialize_bytes_tensor(encoded):
    """The inverse of serialize_byte_tensor: a flat object array of bytes."""
    view = memoryview(encoded)
    out = []
    offset = 0
    end = len(view)
    unpack = struct.Struct("<I").unpack_from
    while offset < end:
        if offset + 4 > end:
            raise InvalidInput("malformed BYTES tensor: truncated length prefix")
        (length,) = unpack(view, offset)
        offset += 4
        if offset + length > end:
            raise InvalidInput("malformed BYTES tensor: element longer than the data")
        out.append(bytes(view[offset:offset + length]))
        offset += length
    arr = np.empty(len(out), dtype=object)
    arr[:] = out
    return arr


def _flat_list(array, datatype):
    if datatype == "BYTES":
        out = []
        for item in array.ravel():
            if isinstance(item, bytes):
                try:
                    out.append(item.decode("utf-8"))
                except UnicodeDecodeError:
                    out.append(item)
            else:
                out.append(item)
        return out
    return array.ravel().tolist()


class _Tensor:
    """What InferInput and InferOutput share: a name, a shape, a datatype and data held as a
    list (`data`, as KServe's JSON path has it), a numpy array or raw bytes."""

    def __init__(self, name, shape, datatype, data=None, parameters=None):
        self._name = name
        self._shape = list(shape) if shape is not None else []
        self._datatype = datatype.upper() if isinstance(datatype, str) else datatype
        self._parameters = parameters
        self._data = None
        self._array = None
        self._raw_data = None
        if isinstance(data, np.ndarray):
            self._array = data
        else:
            self._data = data

    @property
    def name(self):
        return self._name

    @property
    def datatype(self):
        return self._datatype

    @property
    def shape(self):
        return self._shape

    @shape.setter
    def shape(self, shape):
        self._shape = list(shape)

    @property
    def parameters(self):
        return self._parameters

    @parameters.setter
    def parameters(self, params):
        self._parameters = params

    @property
    def data(self):
        """The elements as a flat list (BYTES as str where UTF-8), computed on first use."""
        if self._data is None:
            if self._array is not None:
                self._data = _flat_list(self._array, self._datatype)
            elif self._raw_data is not None:
                self._data = _flat_list(self.as_numpy(), self._datatype)
        return self._data

    @data.setter
    def data(self, data):
        if isinstance(data, np.ndarray):
            self._array = data
            self._data = None
        else:
            self._data = data
            self._array = None
        self._raw_data = None

    def as_numpy(self):
        """The data as a numpy array of the tensor's shape (BYTES: an object array of bytes)."""
        if self._array is not None:
            return self._array
        dtype = to_np_dtype(self._datatype)
        if dtype is None:
            raise InvalidInput(f"invalid datatype {self._datatype} in the input")
        if self._raw_data is not None:
            if self._datatype == "BYTES":
                arr = deserialize_bytes_tensor(self._raw_data)
            else:
                arr = np.frombuffer(self._raw_data, dtype=dtype)
        else:
            data = self._data if self._data is not None else []
            if self._datatype == "BYTES":
                arr = np.empty(len(data), dtype=object)
                arr[:] = [d.encode("utf-8") if isinstance(d, str) else d for d in data]
            else:
                arr = np.array(data, dtype=dtype)
        arr = arr.reshape(self._shape)
        self._array = arr
        return arr

    def as_string(self):
        """BYTES data decoded as UTF-8 strings."""
        if self._datatype != "BYTES":
            raise InvalidInput(f"invalid datatype {self._datatype} in the input")
        return [b.decode("utf-8") if isinstance(b, bytes) else str(b)
                for b in self.as_numpy().ravel()]

    def set_data_from_numpy(self, tensor, binary_data=True):
        """Sets the data from a numpy array whose datatype and shape match the tensor's."""
        if not isinstance(tensor, np.ndarray):
            raise InferenceError("input_tensor must be a numpy array")
        datatype = from_np_dtype(tensor.dtype)
        if datatype != self._datatype and not (self._datatype == "BF16" and datatype == "UINT16"):
            raise InferenceError(
                f"got unexpected datatype {datatype} from numpy array, expected {self._datatype}")
        if list(tensor.shape) != list(self._shape):
            raise InferenceError(
                f"got unexpected numpy array shape [{', '.join(map(str, tensor.shape))}], "
                f"expected [{', '.join(map(str, self._shape))}]")
        self._array = tensor
        self._data = None
        self._raw_data = None
        del binary_data  # the server decides the wire encoding

    def to_dict(self):
        return {"name": self.name, "shape": self.shape, "datatype": self.datatype,
                "data": self.data, "parameters": self.parameters}

    def __eq__(self, other):
        if type(other) is not type(self):
            return False
        return (self.name == other.name and self.shape == other.shape
                and self.datatype == other.datatype and self.parameters == other.parameters
                and self.data == other.data)

    def __repr__(self):
        return (f'"name": "{self.name}","shape": {self.shape},"datatype": "{self.datatype}",'
                f'"data": {self.data},"parameters": {self.parameters}')


class InferInput(_Tensor):
    """One input tensor: InferInput(name, shape, datatype, data=None, parameters=None)."""


class InferOutput(_Tensor):
    """One output tensor: InferOutput(name, shape, datatype, data=None, parameters=None).
    `data` may be a list (row-major, flat or nested) or a numpy array."""


class RequestedOutput:
    def __init__(self, name, parameters=None):
        self._name = name
        self._parameters = parameters

    @property
    def name(self):
        return self._name

    @property
    def parameters(self):
        return self._parameters

    @property
    def binary_data(self):
        if self._parameters and "binary_data" in self._parameters:
            return self._parameters["binary_data"]
        return None

    def __repr__(self):
        return f"RequestedOutput(name={self.name}, parameters={self.parameters})"


class InferRequest:
    """A V2 inference request: InferRequest(model_name, infer_inputs, request_id=None, ...)."""

    def __init__(self, model_name, infer_inputs, request_id=None, raw_inputs=None,
                 from_grpc=False, parameters=None, request_outputs=None, model_version=None):
        self.id = request_id
        self.model_name = model_name
        self.model_version = model_version
        self.inputs = infer_inputs
        self.parameters = parameters
        self.from_grpc = from_grpc
        self.request_outputs = request_outputs
        if raw_inputs:
            for infer_input, raw in zip(self.inputs, raw_inputs):
                infer_input._raw_data = raw
                infer_input._array = None

    def get_input_by_name(self, name):
        for infer_input in self.inputs:
            if infer_input.name == name:
                return infer_input
        return None

    @property
    def use_binary_outputs(self):
        return bool(self.parameters and self.parameters.get("binary_data_output", False))

    def as_dataframe(self):
        import pandas as pd  # only models that ask for a DataFrame need pandas

        columns = []
        for infer_input in self.inputs:
            data = infer_input.data
            columns.append(pd.DataFrame(data, columns=[infer_input.name]))
        return pd.concat(columns, axis=1)

    def to_rest(self):
        """The request as a V2 JSON dict (and None: no binary part)."""
        body = {"id": self.id if self.id else str(uuid.uuid4()), "model_name": self.model_name,
                "inputs": []}
        for infer_input in self.inputs:
            entry = {"name": infer_input.name, "shape": infer_input.shape,
                     "datatype": infer_input.datatype, "data": infer_input.data}
            if infer_input.parameters:
                entry["parameters"] = infer_input.parameters
            body["inputs"].append(entry)
        if self.request_outputs:
            body["outputs"] = [{"name": o.name, **({"parameters": o.parameters}
                                                     if o.parameters else {})}
                               for o in self.request_outputs]
        if self.parameters:
            body["parameters"] = self.parameters
        return body, None

    def to_dict(self):
        return {"id": self.id, "model_name": self.model_name,
                "inputs": [i.to_dict() for i in self.inputs], "parameters": self.parameters,
                "from_grpc": self.from_grpc}

    def __eq__(self, other):
        return (isinstance(other, InferRequest) and self.model_name == other.model_name
                and self.id == other.id and self.parameters == other.parameters
                and self.inputs == other.inputs)

    def __repr__(self):
        return (f'"id": "{self.id}","model_name": "{self.model_name}",'
                f'"inputs": {self.inputs!r},"parameters": {self.parameters},'
                f'"from_grpc": {self.from_grpc}')


class InferResponse:
    """A V2 inference response: InferResponse(response_id, model_name, infer_outputs, ...)."""

    def __init__(self, response_id, model_name, infer_outputs, model_version=None,
                 raw_outputs=None, from_grpc=False, parameters=None, use_binary_outputs=False,
                 requested_outputs=None):
        self.id = response_id
        self.model_name = model_name
        self.model_version = model_version
        self.outputs = infer_outputs
        self.parameters = parameters
        self.from_grpc = from_grpc
        self._use_binary_outputs = use_binary_outputs
        self._requested_outputs = requested_outputs
        if raw_outputs:
            for output, raw in zip(self.outputs, raw_outputs):
                output._raw_data = raw
                output._array = None

    @classmethod
    def from_rest(cls, response):
        outputs = [InferOutput(name=o["name"], shape=list(o["shape"]), datatype=o["datatype"],
                               data=o.get("data"), parameters=o.get("parameters"))
                   for o in response["outputs"]]
        return cls(response_id=response.get("id"), model_name=response.get("model_name"),
                   model_version=response.get("model_version"),
                   parameters=response.get("parameters"), infer_outputs=outputs)

    def to_rest(self):
        body = {"id": self.id, "model_name": self.model_name, "outputs": []}
        if self.model_version:
            body["model_version"] = self.model_version
        if self.parameters:
            body["parameters"] = self.parameters
        for output in self.outputs:
            entry = {"name": output.name, "shape": output.shape, "datatype": output.datatype,
                     "data": output.data}
            if output.parameters:
                entry["parameters"] = output.parameters
            body["outputs"].append(entry)
        return body

    def to_dict(self):
        return self.to_rest()

    def __eq__(self, other):
        return (isinstance(other, InferResponse) and self.model_name == other.model_name
                and self.id == other.id and self.parameters == other.parameters
                and self.outputs == other.outputs)

    def __repr__(self):
        return (f'"id": "{self.id}","model_name": "{self.model_name}",'
                f'"outputs": {self.outputs!r},"parameters": {self.parameters}')
