"""kserve.model: the Model base class."""
from quiver_model.model import Model, PredictorConfig, PredictorProtocol

__all__ = ["Model", "PredictorConfig", "PredictorProtocol"]
