"""kserve.utils.utils: helpers KServe's model servers use."""
from quiver_model.utils import generate_uuid, get_predict_input, get_predict_response

__all__ = ["generate_uuid", "get_predict_input", "get_predict_response"]
