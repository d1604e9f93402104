"""The live dashboard in Debian's Chromium: its numbers and chart move while events flow.

uvicorn serves config.asgi (HTTP and /ws/analytics/) from a thread; a producer thread records
delivery events and fetches open pixels over HTTP, and a broadcaster thread plays the beat task
(one update per second). Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import os
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.db import connections
from django.test import Client
from playwright.sync_api import sync_playwright

from analytics.services import live, rollups, tracking
from analytics.services.events import EventInput, record_events
from mailcore.models import Mailbox, User
from tests.support import CHROMIUM_ARGS, serve_asgi

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous"),
]

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture
def server() -> Iterator[str]:
    """config.asgi under uvicorn on a free loopback port, in a thread."""
    with serve_asgi() as url:
        yield url


def _loop(stop: threading.Event, interval: float, step) -> threading.Thread:  # type: ignore[no-untyped-def]
    def run() -> None:
        try:
            while not stop.is_set():
                step()
                stop.wait(interval)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _history(org: int) -> None:
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    record_events(
        EventInput(org, kind, occurred_at=base - timedelta(hours=hours, minutes=n))
        for hours in range(1, 6)
        for kind, count in (("delivered", 8 * hours), ("opened", 3 * hours), ("bounced", 1))
        for n in range(count)
    )
    rollups.fill_all_rollups()


def off_thread(function, *args) -> None:  # type: ignore[no-untyped-def]
    """Database work outside Playwright's thread (its event loop trips Django's checks)."""
    thread = threading.Thread(target=lambda: (function(*args), connections.close_all()))
    thread.start()
    thread.join(timeout=30)


def wait_number(page, selector: str, accept, timeout: float = 15.0) -> int:  # type: ignore[no-untyped-def]
    """Poll a number on the page (the page's CSP forbids wait_for_function's eval)."""
    deadline = time.monotonic() + timeout
    while True:
        value = int(float(page.text_content(selector) or 0))
        if accept(value):
            return value
        assert time.monotonic() < deadline, f"{selector} stuck at {value}"
        page.wait_for_timeout(100)


def test_dashboard_numbers_move_while_events_flow(server: str, alice: Mailbox) -> None:
    operator = User.objects.create_superuser("root", password="x")
    client = Client()
    client.force_login(operator)
    pixel = urlsplit(tracking.tracking_url("open", tracking.Target(alice.organization_id, None, 1)))
    org = alice.organization_id

    def produce() -> None:
        record_events(EventInput(org, "sent") for _ in range(6))
        record_events(EventInput(org, "delivered") for _ in range(5))
        record_events([EventInput(org, "bounced")])
        for _ in range(3):
            request = urllib.request.Request(server + pixel.path, headers={"User-Agent": "Test/1"})
            urllib.request.urlopen(request, timeout=5).read()  # noqa: S310 - loopback

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    stop = threading.Event()
    threads = [_loop(stop, 1.0, live.broadcast_live_update)]
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
            )
            context = browser.new_context(base_url=server, viewport={"width": 1280, "height": 900})
            context.add_cookies(
                [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": server}]
            )
            page = context.new_page()
            page.goto("/analytics/")
            page.wait_for_selector("#live[data-state=open]", timeout=10_000)
            page.wait_for_selector("#chart canvas", timeout=10_000)
            assert page.text_content("#hour-delivered") == "0"
            page.screenshot(path=str(ARTIFACTS / "analytics-01-idle.png"), full_page=True)

            threads.append(_loop(stop, 0.5, produce))
            wait_number(page, "#hour-delivered", lambda n: n >= 10)
            first = int(page.text_content("#hour-delivered") or 0)
            wait_number(page, "#hour-delivered", lambda n: n > first)
            wait_number(page, "#hour-opened", lambda n: n >= 3)
            wait_number(page, "#rate-delivered", lambda n: n > 0)
            assert page.text_content("#bounce-rate") not in ("0%", "0.00%")
            assert page.text_content("#stream-state") == "live"
            page.screenshot(path=str(ARTIFACTS / "analytics-02-live.png"), full_page=True)

            # The stats page reads the rollups: history of the last hours, per hour.
            off_thread(_history, org)
            page.goto(f"/analytics/stats/?org={org}&resolution=hour")
            page.wait_for_selector("#stats-chart canvas")
            page.wait_for_selector("#stats-table td")
            assert "delivered" in (page.text_content("#stats-table") or "")
            page.screenshot(path=str(ARTIFACTS / "analytics-03-stats.png"), full_page=True)
            browser.close()
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous
