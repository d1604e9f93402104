"""Log records with context: the request id of the HTTP request being served, and one JSON
object per line when ``LOG_FORMAT=json`` (docs/operations.md "Logs").

The request id lives in a context variable set by ``config.middleware.RequestIdMiddleware``;
asgiref copies the context into the thread a sync view runs on, so every record logged while a
request is served carries it. SMTP and delivery code add their own ids (``queue_id``,
``message_id``, ``delivery_id``) with ``extra=``; the JSON formatter writes every extra field.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

request_id_var: ContextVar[str] = ContextVar("request_id", default="")


class ContextFilter(logging.Filter):
    """Adds ``request_id`` (empty outside a request) to every record passing the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = request_id_var.get()
        return True


class CountRedisErrors(logging.Filter):
    """On django-redis's logger: counts the Redis errors the cache swallowed
    (``IGNORE_EXCEPTIONS``: recipient cache, SMTP AUTH failure counters, ...)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from config.metrics import count_redis_error

        if record.levelno >= logging.ERROR:
            count_redis_error("cache")
        return True


class JsonFormatter(_JsonFormatter):
    """``{"time": ..., "level": ..., "logger": ..., "message": ..., <extra fields>}``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", "{levelname}{name}{message}")
        kwargs.setdefault("style", "{")
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", "time")  # ISO 8601, UTC
        super().__init__(*args, **kwargs)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        if not log_data.get("request_id"):
            log_data.pop("request_id", None)
        return log_data
