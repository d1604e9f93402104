"""Liveness and readiness of this process and its dependencies."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection
from django_redis import get_redis_connection

from config.metrics import count_database_error, count_redis_error


def check_database() -> dict[str, object]:
    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        count_database_error("readyz")
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 2)}


def check_redis() -> dict[str, object]:
    started = time.monotonic()
    try:
        get_redis_connection("default").ping()
    except Exception as exc:
        count_redis_error("readyz")
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 2)}


def readiness() -> tuple[int, dict[str, object]]:
    """The database is required; without Redis mail still flows, so the state is degraded."""
    database, redis = check_database(), check_redis()
    if not database["ok"]:
        status, code = "unavailable", 503
    elif not redis["ok"]:
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    return code, {
        "status": status,
        "hostname": settings.MAILROOM_HOSTNAME,
        "checks": {"database": database, "redis": redis},
    }
