"""kserve.model_server: the command-line parser KServe's entry points extend, and a ModelServer
that explains it is not needed. A model file served by Quiver is imported, not run, so its
`if __name__ == "__main__":` block (argparse, ModelServer().start([...])) does not execute."""
import argparse

parser = argparse.ArgumentParser(add_help=False)
parser.add_argument("--http_port", default=8080, type=int)
parser.add_argument("--grpc_port", default=8081, type=int)
parser.add_argument("--workers", default=1, type=int)
parser.add_argument("--max_threads", default=4, type=int)
parser.add_argument("--max_asyncio_workers", default=None, type=int)
parser.add_argument("--enable_grpc", default=True, type=lambda v: str(v).lower() == "true")
parser.add_argument("--model_name", default="model")
parser.add_argument("--predictor_host", default=None)
parser.add_argument("--protocol", "--predictor_protocol", dest="predictor_protocol",
                    default="v1")
parser.add_argument("--predictor_use_ssl", default=False,
                    type=lambda v: str(v).lower() == "true")
parser.add_argument("--predictor_request_timeout_seconds", default=600, type=int)
parser.add_argument("--predictor_request_retries", default=0, type=int)
parser.add_argument("--enable_predictor_health_check", action="store_true")
parser.add_argument("--configure_logging", default=True, type=lambda v: str(v).lower() == "true")
parser.add_argument("--log_config_file", default=None)
parser.add_argument("--access_log_format", default=None)
parser.add_argument("--enable_latency_logging", default=True,
                    type=lambda v: str(v).lower() == "true")
parser.add_argument("--model_dir", default=None)


class ModelServer:
    """Quiver is the server: put the model's file in a model folder with `format: custom` and
    run `quiver serve`. Constructing a ModelServer is harmless; start() says so."""

    def __init__(self, *args, **kwargs):
        del args, kwargs
        self.registered_models = []

    def register_model(self, model, name=None):
        del name
        self.registered_models.append(model)

    def start(self, models=None):
        del models
        raise RuntimeError("this model runs inside Quiver: serve its folder with `quiver serve "
                           "--model-repository ...` (config.yaml: format: custom)")
