"""Exceptions a model raises to choose the status of its answer, named as KServe's (kserve.errors).

InvalidInput -> 400, InferenceError -> 500 with its message, NotImplementedError -> 501,
ModelNotReady -> 503; any other exception -> 500 with "<Type> : <message>" as KServe reports it.
"""


class InvalidInput(ValueError):
    """The request is wrong (HTTP 400, gRPC INVALID_ARGUMENT)."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason

    def __str__(self):
        return self.reason


class InferenceError(RuntimeError):
    """The model failed on a valid request (HTTP 500)."""

    def __init__(self, reason, status=None, debug_details=None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.debug_details = debug_details

    def __str__(self):
        return self.reason


class ModelNotReady(RuntimeError):
    """The model cannot serve yet (HTTP 503)."""

    def __init__(self, model_name, detail=None):
        self.model_name = model_name
        self.detail = detail
        message = f"Model with name {model_name} is not ready."
        if detail:
            message += " " + str(detail)
        super().__init__(message)


class ModelMissingError(Exception):
    """No model file where one was expected (a load error)."""

    def __init__(self, path):
        super().__init__(f"Model file not found in {path}")
        self.path = path


class ModelNotFound(Exception):
    def __init__(self, model_name=None):
        super().__init__(f"Model with name {model_name} does not exist.")
        self.model_name = model_name


class UnsupportedProtocol(Exception):
    def __init__(self, protocol_version=None):
        super().__init__(f"Unsupported protocol {protocol_version}.")
