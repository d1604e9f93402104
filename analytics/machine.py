"""Which opens and clicks come from machines rather than people (pure: no ORM).

Machine opens are flagged in the event payload (``machine: true`` and ``machine_reason``), not
dropped: mailbox providers fetch images for privacy or safety, which says the message arrived but
not that anyone read it.

- Apple Mail Privacy Protection: fetched through Apple's proxies from 17.0.0.0/8 with a bare
  ``Mozilla/5.0`` user agent.
- Gmail: ``GoogleImageProxy`` (via ggpht.com) in the user agent, from Google's 66.102.0.0/20,
  66.249.64.0/19 and 74.125.0.0/16.
- Yahoo ``YahooMailProxy``; link scanners and prefetchers by user agent (Microsoft/Bing preview,
  Barracuda, Proofpoint, Mimecast, generic bots, curl/wget/python clients).
- Operators add networks with ``MAILROOM_TRACKING_MACHINE_CIDRS``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

APPLE_NETWORKS = (ipaddress.ip_network("17.0.0.0/8"),)
GOOGLE_NETWORKS = tuple(
    ipaddress.ip_network(cidr) for cidr in ("66.102.0.0/20", "66.249.64.0/19", "74.125.0.0/16")
)
AGENTS = (
    ("google_proxy", re.compile(r"GoogleImageProxy|ggpht\.com", re.I)),
    ("yahoo_proxy", re.compile(r"YahooMailProxy", re.I)),
    (
        "scanner",
        re.compile(
            r"BingPreview|Barracuda|Proofpoint|Mimecast|SafeLinks|bot\b|crawler|spider"
            r"|curl/|Wget/|python-requests|python-urllib|Go-http-client|HeadlessChrome",
            re.I,
        ),
    ),
)


def machine_reason(user_agent: str, ip: str, extra_networks: Iterable[str] = ()) -> str:
    """'' for a person, else why the hit looks automated."""
    for reason, pattern in AGENTS:
        if pattern.search(user_agent or ""):
            return reason
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        address = None
    if address is not None:
        if any(address in net for net in APPLE_NETWORKS):
            return "apple_mpp"
        if any(address in net for net in GOOGLE_NETWORKS):
            return "google_proxy"
        for cidr in extra_networks:
            if address in ipaddress.ip_network(cidr, strict=False):
                return "listed_network"
    if (user_agent or "").strip() in ("", "Mozilla/5.0"):
        return "bare_agent"
    return ""
