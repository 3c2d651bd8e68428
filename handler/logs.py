"""One JSON object per line on stdout: Cloud Run hands such lines to Cloud Logging as
structured entries (`severity`, `message`, `time` are its special fields)."""

from typing import Any

FORMATTER = {
    "()": "pythonjsonlogger.json.JsonFormatter",
    "fmt": "%(levelname)s %(message)s",
    "rename_fields": {"levelname": "severity"},
    "timestamp": "time",
}


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """dictConfig for the app's and gunicorn's loggers alike (gunicorn applies it in the
    master and in each worker)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": FORMATTER},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            }
        },
        "root": {"level": level, "handlers": ["stdout"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": True},
        },
    }
