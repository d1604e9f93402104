"""Request ids and JSON log lines."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import AsyncClient, Client

from config.logs import ContextFilter, JsonFormatter

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What the console handler writes with LOG_FORMAT=json, for the access log."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("mailroom.http")
    logger.addHandler(handler)
    old_level, logger.level = logger.level, logging.INFO
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def parsed(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_request_id_is_made_when_none_is_given(client: Client) -> None:
    first, second = client.get("/healthz"), client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", first["X-Request-ID"])
    assert first["X-Request-ID"] != second["X-Request-ID"]


def test_a_sane_incoming_request_id_is_kept(client: Client) -> None:
    given = "lb-7f3a9c2e-0001"
    assert client.get("/healthz", HTTP_X_REQUEST_ID=given)["X-Request-ID"] == given


@pytest.mark.parametrize(
    "given", ["short", "has spaces in it", "<script>alert(1)</script>", "x" * 129]
)
def test_an_odd_incoming_request_id_is_replaced(client: Client, given: str) -> None:
    returned = client.get("/healthz", HTTP_X_REQUEST_ID=given)["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", returned)


def test_the_access_line_is_json_with_the_request_id(
    client: Client, json_lines: io.StringIO
) -> None:
    client.get("/healthz", HTTP_X_REQUEST_ID="req-0123456789")
    [line] = parsed(json_lines)
    assert line["request_id"] == "req-0123456789"
    assert line["level"] == "INFO"
    assert line["logger"] == "mailroom.http"
    assert line["message"].startswith("GET /healthz 200 ")  # type: ignore[union-attr]
    assert (line["route"], line["status"], line["path"]) == ("healthz", 200, "/healthz")
    assert isinstance(line["duration_ms"], float)
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", line["time"])  # type: ignore[arg-type]


def test_lines_outside_a_request_have_no_request_id(json_lines: io.StringIO) -> None:
    logging.getLogger("mailroom.http").info("not in a request", extra={"message_id": "m1@x"})
    [line] = parsed(json_lines)
    assert "request_id" not in line
    assert line["message_id"] == "m1@x"


@pytest.mark.asyncio
async def test_the_async_path_sets_and_returns_the_request_id(
    async_client: AsyncClient, json_lines: io.StringIO
) -> None:
    response = await async_client.get("/healthz", headers={"X-Request-ID": "async-req-0001"})
    assert response["X-Request-ID"] == "async-req-0001"
    [line] = parsed(json_lines)
    assert line["request_id"] == "async-req-0001"


def run_with_settings(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_log_format_json_makes_every_process_log_json() -> None:
    code = "import logging; logging.getLogger('mailcore.x').warning('hi', extra={'queue_id': 'Q1'})"
    result = run_with_settings(code, LOG_FORMAT="json")
    assert result.returncode == 0, result.stderr
    [line] = [json.loads(text) for text in result.stderr.splitlines()]
    assert (line["message"], line["queue_id"], line["level"]) == ("hi", "Q1", "WARNING")

    text = run_with_settings(code, LOG_FORMAT="text")
    assert text.returncode == 0 and text.stderr.rstrip().endswith("WARNING mailcore.x hi")


def test_an_unknown_log_format_is_refused() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import config.settings"],
        cwd=ROOT,
        env={**os.environ, "LOG_FORMAT": "xml"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "LOG_FORMAT must be text or json, got 'xml'" in result.stderr
