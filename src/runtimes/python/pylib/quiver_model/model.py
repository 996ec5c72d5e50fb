"""Model: the base class of a custom Python model, with the shape of KServe's kserve.Model.

Quiver calls, for each request: preprocess(payload, headers) -> predict(payload, headers) ->
postprocess(result, headers). Each may be a plain or an `async def` method. A V1 request
(`:predict`) arrives as the decoded JSON dict; a V2 request as an InferRequest whose inputs are
numpy arrays. See examples/custom-model.md.
"""
import json
import urllib.error
import urllib.request

from .errors import InferenceError, InvalidInput
from .infer_type import InferRequest, InferResponse


class PredictorProtocol:
    REST_V1 = "v1"
    REST_V2 = "v2"
    GRPC_V2 = "grpc-v2"


class PredictorConfig:
    """Where a transformer's default predict() sends requests (KServe's PredictorConfig)."""

    def __init__(self, predictor_host, predictor_protocol=PredictorProtocol.REST_V1,
                 predictor_use_ssl=False, predictor_request_timeout_seconds=600,
                 predictor_request_retries=0, predictor_health_check=False):
        self.predictor_host = predictor_host
        self.predictor_protocol = predictor_protocol
        self.predictor_use_ssl = predictor_use_ssl
        self.predictor_request_timeout_seconds = predictor_request_timeout_seconds
        self.predictor_request_retries = predictor_request_retries
        self.predictor_health_check = predictor_health_check


class Model:
    """Subclass this and override load() and predict() (and, if needed, preprocess(),
    postprocess() and explain()). `name` is the model's name in Quiver."""

    def __init__(self, name, predictor_config=None, return_response_headers=False):
        self.name = name
        self.ready = False
        self.protocol = (predictor_config.predictor_protocol if predictor_config
                         else PredictorProtocol.REST_V1)
        self.predictor_host = predictor_config.predictor_host if predictor_config else None
        self.use_ssl = predictor_config.predictor_use_ssl if predictor_config else False
        self.timeout = (predictor_config.predictor_request_timeout_seconds
                        if predictor_config else 600)
        self.retries = predictor_config.predictor_request_retries if predictor_config else 0
        self.explainer_host = None
        self.return_response_headers = return_response_headers
        self.enable_latency_logging = False

    def load(self):
        """Loads the model (files, weights). Quiver calls it once, before the first request, when
        the constructor did not already make the model ready. Return False (or raise) to fail."""
        self.ready = True
        return self.ready

    async def healthy(self):
        return self.ready

    def start(self):
        pass

    def stop(self):
        pass

    def get_input_types(self):
        """Optional metadata: [{"name": ..., "datatype": ..., "shape": [...]}, ...]."""
        return []

    def get_output_types(self):
        return []

    async def preprocess(self, payload, headers=None):
        return payload

    async def postprocess(self, result, headers=None, response_headers=None):
        return result

    async def predict(self, payload, headers=None, response_headers=None):
        """Without an override, forwards to `predictor_host` (a transformer), as KServe does,
        over REST (protocol "v1" or "v2")."""
        if not self.predictor_host:
            raise NotImplementedError("Could not find predictor_host.")
        if self.protocol == PredictorProtocol.GRPC_V2:
            raise NotImplementedError("forwarding over gRPC is not supported; use v1 or v2")
        scheme = "https" if self.use_ssl else "http"
        if self.protocol == PredictorProtocol.REST_V2:
            url = f"{scheme}://{self.predictor_host}/v2/models/{self.name}/infer"
            body = payload.to_rest()[0] if isinstance(payload, InferRequest) else payload
        else:
            url = f"{scheme}://{self.predictor_host}/v1/models/{self.name}:predict"
            body = payload
        answer = _post_json(url, body, headers, self.timeout, self.retries)
        if self.protocol == PredictorProtocol.REST_V2 and isinstance(answer, dict) \
                and "outputs" in answer:
            return InferResponse.from_rest(answer)
        return answer

    async def explain(self, payload, headers=None):
        if not self.explainer_host:
            raise NotImplementedError("Could not find explainer_host.")
        scheme = "https" if self.use_ssl else "http"
        url = f"{scheme}://{self.explainer_host}/v1/models/{self.name}:explain"
        return _post_json(url, payload, headers, self.timeout, self.retries)

    def validate(self, payload):
        if isinstance(payload, dict) and "instances" in payload \
                and not isinstance(payload["instances"], list):
            raise InvalidInput('Expected "instances" to be a list')
        if isinstance(payload, dict) and "inputs" in payload \
                and not isinstance(payload["inputs"], list):
            raise InvalidInput('Expected "inputs" to be a list')
        return payload


def _post_json(url, body, headers, timeout, retries):
    data = json.dumps(body).encode("utf-8")
    forwarded = {"Content-Type": "application/json"}
    for key, value in (headers or {}).items():
        if key.lower() in ("x-request-id", "x-b3-traceid", "traceparent", "authorization"):
            forwarded[key] = value
    last = None
    for _ in range(int(retries) + 1):
        request = urllib.request.Request(url, data=data, headers=forwarded, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", "replace")
            raise InferenceError(f"{url} answered {e.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as e:
            last = e
    raise InferenceError(f"cannot reach {url}: {last}")
