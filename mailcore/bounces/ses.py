"""Amazon SES notifications delivered by e-mail as JSON (SNS "AWS Notification Message")."""

from __future__ import annotations

import json
import re
from typing import Any

from mailcore.bounces.message import Parsed, collapse
from mailcore.bounces.reasons import classify_reason
from mailcore.bounces.status import find_status
from mailcore.bounces.types import BounceRecipient

SES_SUBTYPE_REASONS = {
    "mailboxfull": "mailboxfull",
    "messagetoolarge": "emailtoolarge",
    "contentrejected": "contenterror",
    "attachmentrejected": "securityerror",
    "nosuchuser": "userunknown",
}


def load_notification(parsed: Parsed) -> dict[str, Any] | None:
    text = parsed.full_text
    if '"notificationType"' not in text and '"eventType"' not in text:
        return None
    start = text.find("{")
    if start < 0:
        return None
    decoder = json.JSONDecoder()
    try:
        data, _ = decoder.raw_decode(re.sub(r"\s*\n\s*", " ", text[start:]))
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("Message"), str):
        try:
            data = json.loads(data["Message"])
        except ValueError:
            return None
    return data if isinstance(data, dict) else None


def parse_notification(data: dict[str, Any]) -> tuple[str, list[BounceRecipient]]:
    kind = str(data.get("notificationType") or data.get("eventType") or "").lower()
    if kind == "delivery":
        delivery = data.get("delivery") or {}
        response = str(delivery.get("smtpResponse", ""))
        status: str | None = find_status(response) or "2.0.0"
        return "delivered", [
            BounceRecipient(
                address=str(address).lower(),
                status=status,
                reason="delivered",
                permanent=None,
                diagnostic=collapse(response),
                remote_mta=str(delivery.get("remoteMtaIp", "")),
            )
            for address in delivery.get("recipients") or []
        ]
    if kind == "complaint":
        complaint = data.get("complaint") or {}
        feedback = str(complaint.get("complaintFeedbackType") or "abuse")
        return "complaint", [
            BounceRecipient(
                address=str(item.get("emailAddress", "")).lower() or None,
                status=None,
                reason="feedback",
                permanent=None,
                feedback_type=feedback,
            )
            for item in complaint.get("complainedRecipients") or []
        ]
    if kind == "bounce":
        bounce = data.get("bounce") or {}
        permanent = str(bounce.get("bounceType", "")).lower() == "permanent"
        recipients = []
        for item in bounce.get("bouncedRecipients") or []:
            diagnostic = collapse(str(item.get("diagnosticCode", "")))
            status = str(item.get("status") or "") or find_status(diagnostic)
            reason = classify_reason(status, diagnostic)
            subtype = str(bounce.get("bounceSubType", "")).lower()
            if reason in ("undefined", "onhold") and subtype in SES_SUBTYPE_REASONS:
                reason = SES_SUBTYPE_REASONS[subtype]
            recipients.append(
                BounceRecipient(
                    address=str(item.get("emailAddress", "")).lower() or None,
                    status=status or None,
                    reason=reason,
                    permanent=permanent if not status else status.startswith("5"),
                    diagnostic=diagnostic,
                    remote_mta=str(bounce.get("reportingMTA", "")),
                )
            )
        return "bounce", recipients
    return "", []
