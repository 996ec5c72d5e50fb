"""The two kinds of model a Quiver Python worker serves: a custom Model class from a Python file,
driven as KServe's Model.__call__ does, and a scikit-learn estimator, served as KServe's
sklearnserver."""
import importlib.util
import inspect
import json
import logging
import os
import sys
import traceback

import numpy as np

from . import errors
from ._wire import array_output, describe_exception
from .infer_type import InferResponse, from_np_dtype
from .model import Model

log = logging.getLogger("quiver.python")


class LoadError(Exception):
    """The model cannot be loaded; the message is what the server reports."""


# --------------------------------------------------------------------------------------------
# Calling user code


class _Handler:
    """Calls one method of the model with (payload, headers) or (payload), as it accepts, and
    waits for it when it is a coroutine."""

    def __init__(self, method, loop):
        self.method = method
        self.loop = loop
        self.arity = 2
        try:
            params = list(inspect.signature(method).parameters.values())
        except (TypeError, ValueError):
            return
        positional = [p for p in params
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if any(p.kind == p.VAR_POSITIONAL for p in params):
            return
        required = [p for p in positional if p.default is p.empty]
        if len(required) >= 3:
            self.arity = 3  # (payload, headers, response_headers)
        elif len(positional) >= 2:
            self.arity = 2
        else:
            self.arity = 1

    def __call__(self, payload, headers):
        if self.arity == 1:
            result = self.method(payload)
        elif self.arity == 2:
            result = self.method(payload, headers)
        else:
            result = self.method(payload, headers, {})
        if inspect.isawaitable(result):
            result = self.loop.run_until_complete(result)
        return result


def _overridden(model, name):
    """The model's method `name`, or None when it is Model's default pass-through."""
    method = getattr(model, name, None)
    if method is None:
        return None
    func = getattr(method, "__func__", None)
    if func is not None and func is getattr(Model, name, None):
        return None
    return method


class CustomModel:
    """A user's class from a Python file, driven as KServe's Model.__call__ does."""

    platform = ""

    def __init__(self, config, loop):
        self.loop = loop
        self.name = config["name"]
        self.file = os.path.abspath(config["model_file"])
        parameters = config.get("parameters", {})
        if not os.path.isfile(self.file):
            raise LoadError(f"python model file '{self.file}' does not exist")
        model_dir = os.path.dirname(self.file)
        if model_dir not in sys.path:
            sys.path.insert(1, model_dir)  # after quiver's pylib, so `import kserve` is ours
        module = self._import(self.file)
        cls = self._find_class(module, parameters.get("class"))
        self.model = self._construct(cls, parameters, config)
        self._load()
        pre = _overridden(self.model, "preprocess")
        post = _overridden(self.model, "postprocess")
        self.preprocess = _Handler(pre, loop) if pre else None
        self.postprocess = _Handler(post, loop) if post else None
        self.predict = _Handler(self.model.predict, loop)
        # An explainer: the class's own explain(), or Model's default when it forwards to an
        # explainer_host. Without one the server answers :explain with 501 itself.
        explain = _overridden(self.model, "explain")
        if explain is None and getattr(self.model, "explainer_host", None):
            explain = getattr(self.model, "explain", None)
        self.explain = _Handler(explain, loop) if explain else None
        self.validate = getattr(self.model, "validate", None)
        # The server sends request headers only when a method takes them.
        self.wants_headers = any(h is not None and h.arity >= 2 for h in (
            self.preprocess, self.predict, self.postprocess, self.explain))

    def _where(self, exc):
        return f"python model file '{self.file}': {describe_exception(exc, self.file)}"

    def _import(self, path):
        stem = os.path.splitext(os.path.basename(path))[0]
        name = stem if stem.isidentifier() and stem not in sys.modules else "quiver_user_model"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise LoadError(f"python model file '{path}' cannot be imported")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as e:
            log.error("importing %s failed:\n%s", path, traceback.format_exc())
            raise LoadError(self._where(e)) from None
        return module

    def _find_class(self, module, wanted):
        if wanted:
            cls = getattr(module, wanted, None)
            if not isinstance(cls, type):
                raise LoadError(f"python model file '{self.file}' has no class '{wanted}' "
                                "(parameters.class)")
            return cls
        defined = [c for c in vars(module).values()
                   if isinstance(c, type) and c.__module__ == module.__name__]
        models = [c for c in defined if issubclass(c, Model)]
        if len(models) == 1:
            return models[0]
        if len(models) > 1:
            raise LoadError(f"python model file '{self.file}' defines several Model classes ("
                            + ", ".join(c.__name__ for c in models)
                            + "); name one with parameters.class in config.yaml")
        predictors = [c for c in defined if callable(getattr(c, "predict", None))]
        if len(predictors) == 1:
            return predictors[0]
        if predictors:
            raise LoadError(f"python model file '{self.file}' defines several classes with a "
                            "predict method (" + ", ".join(c.__name__ for c in predictors)
                            + "); name one with parameters.class in config.yaml")
        raise LoadError(f"python model file '{self.file}' defines no model class (a subclass "
                        "of kserve.Model / quiver_model.Model, or a class with a predict method)")

    def _construct(self, cls, parameters, config):
        """cls(name, **matching parameters): the first constructor argument gets the model's
        name; others are filled from config.yaml `parameters` by name, and `model_dir` with the
        model's folder."""
        args, kwargs = [], {}
        try:
            params = list(inspect.signature(cls).parameters.values())
        except (TypeError, ValueError):
            params = []
        first = True
        missing = []
        for p in params:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if first and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) \
                    and p.name not in parameters:
                args.append(self.name)
                first = False
                continue
            first = False
            if p.name in parameters:
                kwargs[p.name] = parameters[p.name]
            elif p.name == "model_dir":
                kwargs[p.name] = config.get("model_dir") or os.path.dirname(self.file)
            elif p.default is p.empty:
                missing.append(p.name)
        if missing:
            raise LoadError(f"python model file '{self.file}': {cls.__name__}() needs "
                            + ", ".join(missing) + "; set them under parameters in config.yaml")
        try:
            model = cls(*args, **kwargs)
        except Exception as e:
            log.error("constructing %s failed:\n%s", cls.__name__, traceback.format_exc())
            raise LoadError(self._where(e)) from None
        if not getattr(model, "name", None):
            model.name = self.name
        for key in ("predictor_host", "explainer_host"):
            if key in parameters and not getattr(model, key, None):
                setattr(model, key, parameters[key])
        if "protocol" in parameters and not isinstance(getattr(model, "protocol", None), str):
            model.protocol = parameters["protocol"]
        return model

    def _load(self):
        if getattr(self.model, "ready", False):
            return  # the constructor loaded it, as KServe examples often do
        load = getattr(self.model, "load", None)
        if load is None:
            self.model.ready = True
            return
        try:
            result = load()
            if inspect.isawaitable(result):
                result = self.loop.run_until_complete(result)
        except Exception as e:
            log.error("load() of model '%s' failed:\n%s", self.name, traceback.format_exc())
            raise LoadError(self._where(e)) from None
        if result is False:
            raise LoadError(f"python model file '{self.file}': load() returned False")
        self.model.ready = True

    def metadata(self):
        def specs(method):
            try:
                found = getattr(self.model, method)() if hasattr(self.model, method) else []
            except Exception:  # metadata is a convenience; a failure must not fail the load
                return []
            out = []
            for spec in found or []:
                if isinstance(spec, dict) and "name" in spec and "datatype" in spec:
                    out.append({"name": spec["name"], "datatype": spec["datatype"],
                                "shape": [int(d) for d in spec.get("shape", [])]})
            return out

        return {"platform": self.platform, "inputs": specs("get_input_types"),
                "outputs": specs("get_output_types"), "headers": self.wants_headers,
                "explain": self.explain is not None}

    def run(self, payload, headers, explain=False):
        if self.preprocess is not None:
            payload = self.preprocess(payload, headers)
        if self.validate is not None:
            payload = self.validate(payload) or payload
        if explain:
            if self.explain is None:
                raise NotImplementedError(f"model {self.name} has no explain method")
            result = self.explain(payload, headers)
        else:
            result = self.predict(payload, headers)
        if self.postprocess is not None:
            result = self.postprocess(result, headers)
        return result

    def infer_v2(self, request, headers):
        return self.run(request, headers)

    def predict_v1(self, body, explain, headers):
        return self.run(_parse_v1(body), headers, explain)


def _parse_v1(body):
    try:
        payload = json.loads(bytes(body))
    except (ValueError, UnicodeDecodeError) as e:
        raise errors.InvalidInput(f"Unrecognized request format: {e}") from None
    return payload


class SklearnModel:
    """A scikit-learn estimator saved with joblib or pickle, served as KServe's sklearnserver:
    predict (or predict_proba with parameters.method: predict_proba) on the request's one input."""

    platform = "sklearn"

    def __init__(self, config):
        self.name = config["name"]
        self.file = os.path.abspath(config["model_file"])
        parameters = config.get("parameters", {})
        if not os.path.isfile(self.file):
            raise LoadError(f"sklearn model file '{self.file}' does not exist")
        try:
            import joblib
        except ImportError as e:
            raise LoadError(f"cannot import joblib to load '{self.file}': {e}") from None
        try:
            self.model = joblib.load(self.file)
        except Exception as e:
            log.error("loading %s failed:\n%s", self.file, traceback.format_exc())
            raise LoadError(f"cannot load sklearn model file '{self.file}': "
                            f"{describe_exception(e)}") from None
        self.method = parameters.get("method", "predict")
        if self.method not in ("predict", "predict_proba"):
            raise LoadError(f"parameters.method: expected predict or predict_proba, got "
                            f"'{self.method}'")
        self.fn = getattr(self.model, self.method, None)
        if not callable(self.fn):
            raise LoadError(f"the object in '{self.file}' ({type(self.model).__name__}) has no "
                            f"{self.method} method")
        n = getattr(self.model, "n_features_in_", None)
        self.n_features = int(n) if isinstance(n, (int, np.integer)) else None
        self._metadata = {"platform": self.platform, "inputs": [], "outputs": [],
                          "headers": False, "explain": False}
        if self.n_features is not None:
            self._metadata["inputs"] = [{"name": "input-0", "datatype": "FP64",
                                         "shape": [-1, self.n_features]}]
            try:  # the output's datatype and shape, from one row of zeros
                sample = np.asarray(self.fn(np.zeros((1, self.n_features))))
                datatype = from_np_dtype(sample.dtype)
                if datatype:
                    self._metadata["outputs"] = [{"name": "output-0", "datatype": datatype,
                                                  "shape": [-1] + list(sample.shape[1:])}]
            except Exception:  # e.g. a pipeline that takes text: metadata stays unknown
                pass

    def metadata(self):
        return self._metadata

    def _check(self, x, what):
        if self.n_features is None or x.dtype == object:
            return
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise errors.InvalidInput(
                f"{what}: the model expects {self.n_features} features per row (shape [batch, "
                f"{self.n_features}]), got shape [{', '.join(str(d) for d in x.shape)}]")

    def _predict(self, x):
        try:
            return np.asarray(self.fn(x))
        except Exception as e:
            raise errors.InferenceError(str(e)) from None

    def infer_v2(self, request, headers):
        if len(request.inputs) != 1:
            names = ", ".join(f"'{i.name}'" for i in request.inputs)
            raise errors.InvalidInput(
                "a scikit-learn model takes exactly one input, got "
                f"{len(request.inputs)}" + (f": {names}" if names else ""))
        infer_input = request.inputs[0]
        x = infer_input.as_numpy()
        if x.dtype == object:  # BYTES: text pipelines take str, as KServe's JSON gives them
            x = np.vectorize(lambda b: b.decode("utf-8") if isinstance(b, bytes) else b,
                             otypes=[object])(x)
        self._check(x, f"input '{infer_input.name}'")
        result = self._predict(x)
        output = array_output("output-0", result)
        return InferResponse(request.id, self.name, [output])

    def predict_v1(self, body, explain, headers):
        if explain:
            raise NotImplementedError(f"model {self.name} has no explainer")
        payload = _parse_v1(body)
        if not isinstance(payload, dict):
            raise errors.InvalidInput('Expected a JSON object with "instances" or "inputs"')
        from .utils import get_predict_input

        x = get_predict_input(payload)
        if isinstance(x, np.ndarray):
            self._check(x, "instances")
        result = self._predict(x)
        return {"predictions": result.tolist()}
