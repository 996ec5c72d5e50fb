"""The Python half of a Quiver Python worker: reads requests from the server, runs the model,
writes answers. quiver-python-worker (worker_main.cc) embeds the interpreter and calls main().
The wire is in _wire.py, the models in _loaders.py.
"""
import asyncio
import json
import logging
import os
import socket
import sys

from . import errors
from ._loaders import CustomModel, LoadError, SklearnModel
from ._wire import (ERROR, EXPLAIN_V1, INFER_V2, LOAD, PREDICT_V1, READY, RESULT_V1, RESULT_V2,
                    Region, dump_json, error_header, explain_answer, make_request, outputs_of,
                    read_frame, send_frame, v1_answer, write_outputs)


# --------------------------------------------------------------------------------------------
# The loop


def _load(header, loop):
    fmt = header.get("format")
    if fmt == "sklearn":
        return SklearnModel(header)
    if fmt == "custom":
        return CustomModel(header, loop)
    raise LoadError(f"the python runtime serves formats sklearn and custom, not '{fmt}'")


class _LevelLetter(logging.Filter):
    def filter(self, record):
        record.letter = record.levelname[:1]
        return True


def main(sock_fd, region_fd, model_name):
    # Lines as the server's text log writes them: "2026-01-02T03:04:05.678 E message".
    label = model_name.replace("%", "%%")
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_LevelLetter())
    handler.setFormatter(logging.Formatter(
        f"%(asctime)s.%(msecs)03d %(letter)s python worker {os.getpid()} "
        f"(model '{label}'): %(message)s", datefmt="%Y-%m-%dT%H:%M:%S"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    sock = socket.socket(fileno=sock_fd)
    region = Region(region_fd)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    model = None
    while True:
        frame = read_frame(sock)
        if frame is None:
            return 0  # the server closed the socket: stop
        kind, header, payload = frame
        try:
            if kind == LOAD:
                if model is not None:
                    raise LoadError("the model is already loaded")
                model = _load(json.loads(header), loop)
                send_frame(sock, READY, dump_json(model.metadata()))
            elif model is None:
                raise errors.ModelNotReady(model_name, "it is not loaded")
            elif kind == INFER_V2:
                request_header = json.loads(header)
                request = make_request(request_header, region, model.name)
                headers = request_header.get("headers") or {}
                outputs, parameters = outputs_of(model.infer_v2(request, headers))
                send_frame(sock, RESULT_V2,
                            write_outputs(outputs, parameters, request_header, region))
            elif kind in (PREDICT_V1, EXPLAIN_V1):
                headers = (json.loads(header) if header else {}).get("headers") or {}
                explain = kind == EXPLAIN_V1
                result = model.predict_v1(payload, explain, headers)
                send_frame(sock, RESULT_V1, b"{}",
                           explain_answer(result) if explain else v1_answer(result))
            else:
                raise errors.InvalidInput(f"unknown request kind {kind}")
        except LoadError as e:  # the server logs it as the model's FAILED reason
            send_frame(sock, ERROR, json.dumps({"code": "INVALID_ARGUMENT",
                                                 "message": str(e)}).encode())
        except Exception as e:  # the model's error: reported, and the worker serves on
            send_frame(sock, ERROR, error_header(e, model_name))
