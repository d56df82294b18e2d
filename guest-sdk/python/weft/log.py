"""Logging to the run's log: ``weft.log.info("loaded", rows=3)``, or the
standard ``logging`` module through ``weft.get_run_logger()``.

The host attributes every line to the flow run and the open task run.
Anything the guest prints to stdout and stderr is captured too.
"""

import logging

_LEVELS = ("trace", "debug", "info", "warn", "error")


def _emit(level: str, message: str, fields: dict) -> None:
    from wit_world.imports import log as wit

    wit_level = {
        "trace": wit.Level.TRACE,
        "debug": wit.Level.DEBUG,
        "info": wit.Level.INFO,
        "warn": wit.Level.WARN,
        "error": wit.Level.ERROR,
    }[level]
    wit.emit(wit_level, str(message), [wit.Field(key=str(k), value=str(v)) for k, v in fields.items()])


def trace(message: str, **fields) -> None:
    """Writes a line at level trace, with ``key=value`` fields."""
    _emit("trace", message, fields)


def debug(message: str, **fields) -> None:
    """Writes a line at level debug, with ``key=value`` fields."""
    _emit("debug", message, fields)


def info(message: str, **fields) -> None:
    """Writes a line at level info, with ``key=value`` fields."""
    _emit("info", message, fields)


def warn(message: str, **fields) -> None:
    """Writes a line at level warn, with ``key=value`` fields."""
    _emit("warn", message, fields)


warning = warn


def error(message: str, **fields) -> None:
    """Writes a line at level error, with ``key=value`` fields."""
    _emit("error", message, fields)


class _RunHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            level = "error"
        elif record.levelno >= logging.WARNING:
            level = "warn"
        elif record.levelno >= logging.INFO:
            level = "info"
        else:
            level = "debug"
        fields = getattr(record, "fields", None) or {}
        try:
            _emit(level, record.getMessage(), fields)
        except Exception:  # a log call never fails the flow
            self.handleError(record)


def get_run_logger(name: str = "weft") -> logging.Logger:
    """A standard ``logging.Logger`` whose records go to the run's log, as
    Prefect's ``get_run_logger()`` does. Extra fields: ``extra={"fields":
    {"rows": 3}}``."""
    logger = logging.getLogger(name)
    if not any(isinstance(h, _RunHandler) for h in logger.handlers):
        logger.addHandler(_RunHandler())
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
    return logger
