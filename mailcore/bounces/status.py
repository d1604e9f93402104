"""RFC 3463 enhanced status codes: finding them in text and mapping them to reasons."""

from __future__ import annotations

import re

# A status code preceded by an SMTP reply code ("550 5.1.1", "550-5.7.1", "554 '5.7.1").
REPLY_STATUS_RE = re.compile(r"\b([245])\d\d[ -]['\"#(]?([245]\.\d{1,3}\.\d{1,3})\b")
STATUS_RE = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.]*\d)")
REPLY_CODE_RE = re.compile(r"(?:^|[\s:;(<'\"])([245][0-5]\d)(?:[ -]|$)")

# Codes whose meaning is narrow enough to decide a reason on their own.
STATUS_REASONS: dict[str, str] = {
    "1.0": "",
    "1.1": "userunknown",
    "1.2": "hostunknown",
    "1.3": "userunknown",
    "1.4": "userunknown",
    "1.5": "userunknown",
    "1.6": "hasmoved",
    "1.7": "rejected",
    "1.8": "rejected",
    "1.9": "systemerror",
    "1.10": "notaccept",
    "2.0": "filtered",
    "2.1": "filtered",
    "2.2": "mailboxfull",
    "2.3": "emailtoolarge",
    "2.4": "systemerror",
    "3.0": "systemerror",
    "3.1": "systemfull",
    "3.2": "notaccept",
    "3.3": "systemerror",
    "3.4": "emailtoolarge",
    "3.5": "systemerror",
    "4.0": "networkerror",
    "4.1": "expired",
    "4.2": "networkerror",
    "4.3": "systemerror",
    "4.4": "hostunknown",
    "4.5": "networkerror",
    "4.6": "networkerror",
    "4.7": "expired",
    "4.8": "networkerror",
    "4.14": "networkerror",
    "4.310": "hostunknown",
    "4.316": "expired",
    "5.0": "syntaxerror",
    "5.1": "syntaxerror",
    "5.2": "syntaxerror",
    "5.3": "syntaxerror",
    "5.4": "syntaxerror",
    "5.5": "syntaxerror",
    "5.6": "syntaxerror",
    "6.0": "contenterror",
    "6.1": "contenterror",
    "6.2": "contenterror",
    "6.3": "contenterror",
    "6.4": "contenterror",
    "6.5": "contenterror",
    "6.6": "contenterror",
    "7.0": "securityerror",
    "7.1": "",
    "7.2": "rejected",
    "7.3": "securityerror",
    "7.4": "securityerror",
    "7.5": "securityerror",
    "7.6": "securityerror",
    "7.7": "securityerror",
    "7.8": "securityerror",
    "7.9": "policyviolation",
    "7.10": "securityerror",
    "7.11": "securityerror",
    "7.12": "securityerror",
    "7.13": "suspend",
    "7.14": "securityerror",
    "7.15": "securityerror",
    "7.16": "mailboxfull",
    "7.17": "suspend",
    "7.18": "suspend",
    "7.19": "hasmoved",
    "7.20": "authfailure",
    "7.21": "authfailure",
    "7.22": "authfailure",
    "7.23": "authfailure",
    "7.24": "authfailure",
    "7.25": "requireptr",
    "7.26": "authfailure",
    "7.27": "notaccept",
    "7.28": "spamdetected",
    "7.29": "authfailure",
    "7.30": "securityerror",
    "7.54": "norelaying",
    "7.57": "securityerror",
    "7.133": "rejected",
    "7.134": "rejected",
    "7.509": "authfailure",
    "7.510": "securityerror",
    "7.511": "blocked",
    "7.606": "blocked",
    "7.705": "blocked",
    "7.708": "blocked",
    "7.750": "blocked",
    "4.300": "expired",
    "1.351": "",
}

# Codes that identify the reason even when the text seems to say something else.
DECISIVE_STATUSES = frozenset(
    {"1.2", "1.6", "1.10", "7.9", "7.25", "7.26", "7.23", "7.509", "7.54", "7.606", "7.511", "7.13"}
)


FULL_STATUS_REASONS = {"5.4.1": "rejected"}


def status_reason(status: str | None) -> str:
    if not status:
        return ""
    if status in FULL_STATUS_REASONS:
        return FULL_STATUS_REASONS[status]
    subject_detail = status.split(".", 1)[1] if "." in status else ""
    return STATUS_REASONS.get(subject_detail, "")


def is_decisive(status: str | None) -> bool:
    return bool(status) and status.split(".", 1)[-1] in DECISIVE_STATUSES  # type: ignore[union-attr]


def find_status(text: str) -> str | None:
    """The most telling enhanced status code in a diagnostic text."""
    if not text:
        return None
    candidates = [m.group(2) for m in REPLY_STATUS_RE.finditer(text)]
    if not candidates:
        candidates = [m.group(1) for m in STATUS_RE.finditer(text) if _plausible(m, text)]
    if not candidates:
        return None
    failures = [code for code in candidates if code[0] != "2"]
    candidates = failures or candidates
    specific = [code for code in candidates if not code.endswith(".0.0")]
    return (specific or candidates)[0]


def _plausible(match: re.Match[str], text: str) -> bool:
    # Skip version numbers and IP-address fragments ("8.14.4", "192.0.2.1").
    before = text[max(0, match.start() - 1) : match.start()]
    after = text[match.end() : match.end() + 1]
    return before not in ("/", "v", "V", "-") or after == ""


def find_reply_code(text: str) -> str:
    match = REPLY_CODE_RE.search(text or "")
    return match.group(1) if match else ""


def is_generic(status: str | None) -> bool:
    return not status or status[2:] in ("0.0",)


def better_status(field_status: str | None, diagnostic: str) -> str | None:
    """Prefer a specific code from the diagnostic when the Status: field is only generic."""
    found = find_status(diagnostic)
    if not field_status:
        return found
    if found and is_generic(field_status) and found[0] == field_status[0]:
        return found
    replied = REPLY_STATUS_RE.search(diagnostic)
    if replied and replied.group(1) != field_status[0] and replied.group(2)[0] == replied.group(1):
        # "Status: 4.5.0" with "550 5.5.0 ..." -- the server's own answer wins.
        return replied.group(2)
    return field_status
