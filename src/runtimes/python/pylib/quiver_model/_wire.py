"""The wire between a Quiver Python worker and the server, Python side: frames, the shared
memory region, and the conversion of requests and answers (V1 JSON, V2 tensors, errors).

Described in src/runtimes/python/worker_protocol.h; the two must agree. A frame is a 16-byte head
(kind u32, header_len u32, payload_len u64, little-endian), a JSON header and a raw payload. V2
tensors live in a shared memory region (fd 4) that both processes map: inputs are wrapped as numpy
arrays in place, outputs are written after them.
"""
import json
import logging
import mmap
import os
import struct
import traceback

import numpy as np

from . import errors
from .infer_type import (InferInput, InferOutput, InferRequest, InferResponse, RequestedOutput,
                         deserialize_bytes_tensor, from_np_dtype, serialize_byte_tensor,
                         to_np_dtype)

LOAD, INFER_V2, PREDICT_V1, EXPLAIN_V1 = 1, 2, 3, 4
READY, RESULT_V2, RESULT_V1, ERROR = 16, 17, 18, 19

_HEAD = struct.Struct("<IIQ")
_ALIGN = 64

log = logging.getLogger("quiver.python")


# --------------------------------------------------------------------------------------------
# Frames and shared memory


def _recv_exact(sock, n):
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            return None
        got += k
    return buf


def read_frame(sock):
    head = _recv_exact(sock, _HEAD.size)
    if head is None:
        return None
    kind, header_len, payload_len = _HEAD.unpack(head)
    header = _recv_exact(sock, header_len) if header_len else bytearray()
    payload = _recv_exact(sock, payload_len) if payload_len else bytearray()
    if header is None or payload is None:
        return None
    return kind, header, payload


def send_frame(sock, kind, header, payload=b""):
    head = _HEAD.pack(kind, len(header), len(payload))
    if len(payload) < 65536:
        sock.sendall(head + header + payload)
    else:
        sock.sendall(head + header)
        sock.sendall(payload)


def _align(n):
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


class Region:
    """The shared memory region, mapped at the file's current size. Growing maps a new mmap;
    the old one stays valid while arrays still view it."""

    def __init__(self, fd):
        self.fd = fd
        self.mm = None
        self.size = 0

    def refresh(self, announced):
        if self.mm is not None and announced <= self.size:
            return
        size = os.fstat(self.fd).st_size
        if size < announced:
            raise RuntimeError(f"region is {size} bytes, the server announced {announced}")
        self.mm = mmap.mmap(self.fd, size)
        self.size = size

    def reserve(self, needed):
        if needed <= self.size:
            return
        size = max(needed, self.size * 2)
        size = (size + 65535) // 65536 * 65536
        os.ftruncate(self.fd, size)
        self.refresh(size)

    def input_array(self, datatype, shape, offset, nbytes):
        if datatype == "BYTES":
            arr = deserialize_bytes_tensor(memoryview(self.mm)[offset:offset + nbytes])
            return arr.reshape(shape)
        dtype = to_np_dtype(datatype)
        if dtype is None:
            raise errors.InvalidInput(f"unsupported datatype {datatype}")
        count = nbytes // dtype.itemsize
        if count * dtype.itemsize != nbytes:
            raise errors.InvalidInput(f"{nbytes} bytes are not a whole number of {datatype}")
        if count == 0:
            return np.empty(shape, dtype=dtype)
        return np.frombuffer(self.mm, dtype=dtype, count=count, offset=offset).reshape(shape)


# --------------------------------------------------------------------------------------------
# Errors as the server reports them


def describe_exception(exc, focus_file=None):
    """"<Type>: <message>" with where in the user's file it was raised, when it was."""
    where = ""
    if focus_file is not None:
        frames = traceback.extract_tb(exc.__traceback__)
        for frame in reversed(frames):
            if os.path.abspath(frame.filename) == focus_file:
                where = f" ({os.path.basename(frame.filename)}, line {frame.lineno}, " \
                        f"in {frame.name})"
                break
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f" ({os.path.basename(exc.filename)}, line {exc.lineno})"
        return f"SyntaxError: {exc.msg}{where}"
    message = str(exc)
    return f"{type(exc).__name__}: {message}{where}" if message else \
        f"{type(exc).__name__}{where}"


def error_header(exc, model_name):
    if isinstance(exc, errors.InvalidInput):
        code, message = "INVALID_ARGUMENT", str(exc)
    elif isinstance(exc, NotImplementedError):
        code, message = "UNIMPLEMENTED", str(exc) or "not implemented"
    elif isinstance(exc, errors.ModelNotReady):
        code, message = "UNAVAILABLE", str(exc)
    elif isinstance(exc, errors.InferenceError):
        code, message = "INTERNAL", str(exc)
    else:
        # KServe's answer for any other exception: "<Type> : <message>".
        code, message = "INTERNAL", f"{type(exc).__name__} : {exc}"
        log.error("model '%s' raised:\n%s", model_name,
                  "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    return json.dumps({"code": code, "message": message}).encode()


# --------------------------------------------------------------------------------------------
# JSON answers


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    if isinstance(value, (InferResponse, InferRequest)):
        return value.to_rest()[0] if isinstance(value, InferRequest) else value.to_rest()
    if isinstance(value, (set, tuple)):
        return list(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _finite(value):
    """NaN and infinities become null, as KServe's orjson writes them."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def dump_json(value):
    try:
        return json.dumps(value, default=_jsonable, allow_nan=False,
                          separators=(",", ":")).encode("utf-8")
    except ValueError:  # non-finite floats
        plain = json.loads(json.dumps(value, default=_jsonable))
        return json.dumps(_finite(plain), separators=(",", ":")).encode("utf-8")


def v1_answer(result):
    if isinstance(result, dict):
        return dump_json(result)
    if isinstance(result, InferResponse):
        return dump_json(result.to_rest())
    return dump_json({"predictions": result})


def explain_answer(result):
    """The body of an :explain answer: what explain() (and postprocess) returned, as JSON, as
    KServe sends it (a dict, a list, an array; not wrapped in "predictions")."""
    if isinstance(result, InferResponse):
        return dump_json(result.to_rest())
    return dump_json(result)


# --------------------------------------------------------------------------------------------
# V2 requests and answers


def make_request(header, region, model_name):
    region.refresh(header["region_size"])
    inputs = []
    for spec in header["inputs"]:
        arr = region.input_array(spec["datatype"], spec["shape"], spec["offset"], spec["nbytes"])
        inputs.append(InferInput(spec["name"], spec["shape"], spec["datatype"], arr,
                                 spec.get("parameters") or None))
    outputs = [RequestedOutput(o["name"], o.get("parameters") or None)
               for o in header.get("outputs", [])]
    return InferRequest(model_name, inputs, request_id=header.get("id") or None,
                        parameters=header.get("parameters") or None,
                        request_outputs=outputs or None,
                        model_version=header.get("model_version") or None)


def array_output(name, value):
    arr = np.asarray(value)
    datatype = from_np_dtype(arr.dtype)
    if datatype is None:
        raise errors.InferenceError(
            f"output '{name}': numpy dtype {arr.dtype} has no Open Inference Protocol datatype")
    return InferOutput(name, list(arr.shape), datatype, arr)


def outputs_of(result):
    """The InferOutputs and response parameters of what the model returned for a V2 request."""
    if isinstance(result, InferResponse):
        return list(result.outputs), result.parameters
    if isinstance(result, dict):
        if "outputs" in result:
            outputs = [InferOutput(o["name"], list(o["shape"]), o["datatype"], o.get("data"),
                                   o.get("parameters")) for o in result["outputs"]]
            return outputs, result.get("parameters")
        if "predictions" in result:
            return [array_output("output-0", result["predictions"])], None
        return [array_output(str(k), v) for k, v in result.items()], None
    if isinstance(result, (list, tuple)) and result and \
            all(isinstance(r, InferOutput) for r in result):
        return list(result), None
    if isinstance(result, (list, tuple)) and result and \
            all(isinstance(r, np.ndarray) for r in result):
        return [array_output(f"output-{i}", r) for i, r in enumerate(result)], None
    if result is None:
        raise errors.InferenceError("the model returned None")
    return [array_output("output-0", result)], None


def _output_data(output):
    """(datatype, shape, numpy array or serialized BYTES) of one InferOutput."""
    datatype = output.datatype
    dtype = to_np_dtype(datatype)
    if dtype is None:
        raise errors.InferenceError(f"output '{output.name}': unknown datatype {datatype}")
    if output._raw_data is not None:
        raw = bytes(output._raw_data)
        if datatype == "BYTES":
            return datatype, list(output.shape), raw
        arr = np.frombuffer(raw, dtype=dtype)
    elif output._array is not None:
        arr = output._array
    else:
        if output._data is None:
            raise errors.InferenceError(f"output '{output.name}' has no data")
        if datatype == "BYTES":
            arr = np.empty(len(output._data), dtype=object) if isinstance(output._data, list) \
                else None
            if arr is not None:
                arr[:] = output._data
            else:
                arr = np.asarray(output._data, dtype=object)
        else:
            arr = np.asarray(output._data, dtype=dtype)
    shape = [int(d) for d in output.shape] if output.shape is not None else list(arr.shape)
    if int(np.prod(shape, dtype=np.int64)) != arr.size:
        raise errors.InferenceError(
            f"output '{output.name}': shape {shape} does not hold its {arr.size} elements")
    if datatype == "BYTES":
        return datatype, shape, serialize_byte_tensor(arr)
    if arr.dtype != dtype:
        arr = arr.astype(dtype)
    return datatype, shape, arr.reshape(shape)


def write_outputs(outputs, parameters, header, region):
    prepared = []
    offset = header["output_offset"]
    for output in outputs:
        datatype, shape, data = _output_data(output)
        nbytes = len(data) if isinstance(data, bytes) else data.nbytes
        prepared.append((output, datatype, shape, data, offset, nbytes))
        offset = _align(offset + nbytes)
    region.reserve(offset)
    described = []
    for output, datatype, shape, data, start, nbytes in prepared:
        if nbytes:
            if isinstance(data, bytes):
                region.mm[start:start + nbytes] = data
            else:
                target = np.ndarray(data.shape, dtype=data.dtype, buffer=region.mm, offset=start)
                target[...] = data
        entry = {"name": output.name, "datatype": datatype, "shape": shape, "offset": start,
                 "nbytes": nbytes}
        params = {k: v for k, v in (output.parameters or {}).items()
                  if k not in ("binary_data_size", "binary_data")}
        if params:
            entry["parameters"] = params
        described.append(entry)
    answer = {"region_size": region.size, "outputs": described}
    if parameters:
        answer["parameters"] = dict(parameters)
    return dump_json(answer)
