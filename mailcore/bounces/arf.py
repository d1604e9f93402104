"""RFC 5965 Abuse Reporting Format and the common non-standard complaint messages."""

from __future__ import annotations

import re

from mailcore.bounces.message import ADDRESS_RE, Parsed, first_address
from mailcore.bounces.rfc3464 import _fields
from mailcore.bounces.types import BounceRecipient

COMPLAINT_SUBJECT_RE = re.compile(
    r"complaint about message|abuse report|spam report|feedback loop|\bfbl\b|scomp|"
    r"spamtraphit|\[abuse\]|email feedback report",
    re.I,
)


def is_complaint(parsed: Parsed) -> bool:
    content_type = parsed.headers.get("content-type", "").lower()
    if parsed.feedback_report or "feedback-report" in content_type:
        return True
    headers = parsed.headers
    if headers.get("x-apple-unsubscribe", "").lower() == "true":
        return True
    subject = headers.get("subject", "")
    has_original = bool(parsed.original_headers)
    if has_original and COMPLAINT_SUBJECT_RE.search(subject):
        return True
    if has_original and parsed.original_headers.get("x-hmxmroriginalrecipient"):
        return True
    return bool(re.search(r"^Feedback-Type:\s*\w", parsed.full_text, re.M | re.I))


def parse_complaint(parsed: Parsed) -> list[BounceRecipient]:
    report_text = "\n\n".join(parsed.feedback_report)
    if not report_text and re.search(r"^Feedback-Type:", parsed.full_text, re.M | re.I):
        report_text = parsed.full_text
    fields = _fields(report_text)
    feedback_type = ""
    addresses: list[str] = []
    for name, value in fields:
        if name == "feedback-type" and not feedback_type:
            feedback_type = value.split()[0].lower() if value.split() else ""
        elif name in ("original-rcpt-to", "removal-recipient"):
            for match in ADDRESS_RE.finditer(value):
                address = match.group(1).lower()
                if address not in addresses:
                    addresses.append(address)
    headers = parsed.headers
    if headers.get("x-apple-unsubscribe", "").lower() == "true":
        feedback_type = feedback_type or "opt-out"
        addresses = addresses or [first_address(headers.get("from", ""))]
    if not addresses:
        original = parsed.original_headers
        for key in ("x-hmxmroriginalrecipient", "to"):
            address = first_address(original.get(key, ""))
            if address:
                addresses.append(address)
                break
    if not feedback_type:
        feedback_type = "abuse"
    source = next((value for name, value in fields if name == "source-ip"), "")
    diagnostic = " ".join(parsed.notification.split())[:1000]
    if not addresses:
        addresses = [""]
    return [
        BounceRecipient(
            address=address or None,
            status=None,
            reason="feedback",
            permanent=None,
            diagnostic=diagnostic,
            remote_mta=source,
            feedback_type=feedback_type,
        )
        for address in addresses
    ]
