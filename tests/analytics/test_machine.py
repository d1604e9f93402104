from __future__ import annotations

import pytest

from analytics.machine import machine_reason

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"


@pytest.mark.parametrize(
    ("agent", "ip", "reason"),
    [
        (FIREFOX, "203.0.113.9", ""),
        (
            "Mozilla/5.0 (Windows NT 5.1) Firefox/11.0 (via ggpht.com GoogleImageProxy)",
            "203.0.113.9",
            "google_proxy",
        ),
        (FIREFOX, "66.249.84.1", "google_proxy"),
        ("Mozilla/5.0", "17.58.1.1", "apple_mpp"),
        ("Mozilla/5.0", "203.0.113.9", "bare_agent"),
        ("", "203.0.113.9", "bare_agent"),
        (
            "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
            "203.0.113.9",
            "yahoo_proxy",
        ),
        ("Mozilla/5.0 (compatible; BingPreview/1.0b)", "203.0.113.9", "scanner"),
        ("python-requests/2.32", "203.0.113.9", "scanner"),
        (FIREFOX, "not-an-ip", ""),
    ],
)
def test_machine_reason(agent: str, ip: str, reason: str) -> None:
    assert machine_reason(agent, ip) == reason


def test_operator_listed_networks() -> None:
    assert machine_reason(FIREFOX, "198.51.100.7", ["198.51.100.0/24"]) == "listed_network"
    assert machine_reason(FIREFOX, "198.51.101.7", ["198.51.100.0/24"]) == ""
