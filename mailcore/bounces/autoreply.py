"""RFC 3834 automatic responses (vacation and out-of-office replies)."""

from __future__ import annotations

import re

from mailcore.bounces.message import Parsed, collapse, first_address
from mailcore.bounces.types import BounceRecipient

SUBJECT_RE = re.compile(
    r"^\s*(?:auto(?:matic)?[ -]?(?:reply|response|answer)|auto:|autoreply|autoresponse|"
    r"out of (?:the )?office|ooo\b|away from (?:my|the) (?:desk|office)|vacation|"
    r"on (?:vacation|holiday|leave)|abwesenheit|automatische antwort|"
    r"r[ée]ponse automatique|absence|respuesta autom[áa]tica|risposta automatica|"
    r"resposta autom[áa]tica|自動(?:返信|応答)|不在)",
    re.I,
)
BODY_RE = re.compile(
    r"out of (?:the )?office|on vacation|on holiday|away from (?:my|the) (?:desk|office)|"
    r"limited access to (?:my )?e-?mail|i (?:am|will be) (?:currently )?(?:away|out)|"
    r"automatic reply|auto-?reply|autoresponder|thank you for your (?:e-?mail|message)",
    re.I,
)


def is_auto_reply(parsed: Parsed) -> bool:
    headers = parsed.headers
    auto_submitted = headers.get("auto-submitted", "").lower()
    if auto_submitted.startswith("auto-replied"):
        return True
    if any(
        key in headers for key in ("x-autoreply", "x-autorespond", "x-autoresponder", "x-vacation")
    ):
        return True
    precedence = headers.get("precedence", "").lower()
    if precedence == "auto_reply":
        return True
    if headers.get("x-auto-response-suppress") and SUBJECT_RE.search(headers.get("subject", "")):
        return True
    if SUBJECT_RE.search(headers.get("subject", "")):
        return True
    return "auto_reply" in precedence or bool(
        precedence in ("bulk", "junk") and BODY_RE.search(parsed.notification[:2000])
    )


def parse_auto_reply(parsed: Parsed) -> list[BounceRecipient]:
    address = first_address(parsed.headers.get("from", "")) or first_address(
        parsed.headers.get("reply-to", "")
    )
    return [
        BounceRecipient(
            address=address or None,
            status=None,
            reason="vacation",
            permanent=None,
            diagnostic=collapse(parsed.notification),
        )
    ]
