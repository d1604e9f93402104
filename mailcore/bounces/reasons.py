"""Bounce reason classification from an enhanced status code and diagnostic text.

Reason names follow Sisimai's vocabulary. Text patterns are checked in order (most specific
first); the status code decides when no text pattern matches, or when the code is narrow
enough (5.1.6, 5.7.26, ...) to overrule the wording.
"""

from __future__ import annotations

import re

from mailcore.bounces.reason_patterns import PATTERNS as _PATTERNS
from mailcore.bounces.status import is_decisive, status_reason

COMPILED = [(reason, re.compile("|".join(parts))) for reason, parts in _PATTERNS]
PATTERNS = dict(COMPILED)

# Reasons whose status codes are too broad to overrule wording ("5.7.1", "5.0.0", "5.5.0").
_WEAK_CODE_REASONS = frozenset({"", "syntaxerror", "securityerror", "networkerror", "systemerror"})


_CONTINUATION_RE = re.compile(r"\b[245]\d\d[ -](?:#?[245]\.\d{1,3}\.\d{1,3}\b)?|\b[245]\d\d-")
_COMMAND_PATTERNS = (
    re.compile(r"in reply to (rcpt|mail|end of data|data|helo|ehlo|connect)", re.I),
    re.compile(r"after (rcpt|mail|end of data|data|initial connection|helo|ehlo)", re.I),
    re.compile(r"did not like our (rcpt|mail|final data|data)", re.I),
)
_TRANSCRIPT_RE = re.compile(r">>> ?(rcpt|mail|data|helo|ehlo)", re.I)
_COMMANDS = {
    "rcpt": "RCPT",
    "mail": "MAIL",
    "data": "DATA",
    "end of data": "DATA",
    "final data": "DATA",
    "helo": "HELO",
    "ehlo": "HELO",
    "initial connection": "CONN",
    "connect": "CONN",
}


def find_command(text: str) -> str:
    """The SMTP command the remote server was answering, if the text says."""
    for pattern in _COMMAND_PATTERNS:
        match = pattern.search(text)
        if match:
            return _COMMANDS[match.group(1).lower()]
    found = _TRANSCRIPT_RE.findall(text)
    if found:
        return _COMMANDS[found[-1].lower()]
    match = re.search(r"\((rcpt|data|mail)\b", text, re.I)
    return _COMMANDS[match.group(1).lower()] if match else ""


def match_text(diagnostic: str) -> str:
    text = " ".join(_CONTINUATION_RE.sub(" ", diagnostic.lower()).split())
    if not text:
        return ""
    # "Recipient address rejected: <why>" -- the part after the colon is the real reason.
    marker = text.find("address rejected:")
    if marker >= 0:
        detail = _first_match(text[marker + 17 :].split("rejected", 1)[0][:300])
        if detail and detail != "rejected":
            return detail
    return _first_match(text)


def _first_match(text: str) -> str:
    for reason, pattern in COMPILED:
        if pattern.search(text):
            return reason
    return ""


def classify_reason(status: str | None, diagnostic: str, command: str = "") -> str:
    """Return a Sisimai reason name for a status code and diagnostic text.

    `command` is the SMTP command the remote server rejected ("RCPT", "DATA", ...) when the
    bounce says; "user unknown" after DATA means the recipient's filter refused the message.
    """
    try:
        return _classify(status, diagnostic or "", command or find_command(diagnostic or ""))
    except Exception:
        return "undefined"


def _classify(status: str | None, diagnostic: str, command: str) -> str:
    if status and status.startswith("2."):
        return "delivered"
    code_reason = status_reason(status)
    if code_reason and is_decisive(status):
        return code_reason
    text_reason = match_text(diagnostic)
    if text_reason == "userunknown" and code_reason not in ("userunknown", "hostunknown"):
        if command == "DATA":
            return "filtered"
        if (
            command not in ("RCPT", "MAIL")
            and (not status or status.endswith(".0.0") or code_reason == "filtered")
            and REPLY_RE.search(diagnostic)
            and not ECHOED_RECIPIENT_RE.search(diagnostic)
        ):
            # A "user unknown" that is not an answer to RCPT is a content filter's verdict.
            return "filtered"
    if command in ("CONN", "HELO") and text_reason in _CONNECTION_BLOCKS:
        return "blocked"
    if text_reason:
        if (
            code_reason
            and code_reason not in _WEAK_CODE_REASONS
            and text_reason
            in (
                "rejected",
                "filtered",
                "systemerror",
                "securityerror",
                "mailererror",
                "expired",
                "networkerror",
            )
        ):
            return code_reason
        return text_reason
    if code_reason:
        return code_reason
    return "undefined" if not diagnostic.strip() else "onhold"


ECHOED_RECIPIENT_RE = re.compile(r"\d\s*<[^>@\s]+@[^>\s]+>:")
_CONNECTION_BLOCKS = frozenset(
    {"", "rejected", "securityerror", "userunknown", "filtered", "systemerror", "onhold"}
)
REPLY_RE = re.compile(r"(?:^|\s)5[0-5]\d[\s-]")
