"""kserve.logging: the "kserve" logger. In a Quiver worker, log records go to the server's
standard error with the model's name."""
import logging as _logging

KSERVE_LOGGER_NAME = "kserve"
KSERVE_TRACE_LOGGER_NAME = "kserve.trace"
logger = _logging.getLogger(KSERVE_LOGGER_NAME)
trace_logger = _logging.getLogger(KSERVE_TRACE_LOGGER_NAME)


def configure_logging(log_config=None):
    """Accepted for compatibility; Quiver's worker configures logging itself."""
    del log_config
