"""Entry point: raw message bytes in, a BounceReport out."""

from __future__ import annotations

import json
import re

from mailcore.bounces import arf, autoreply, mta_texts, ses
from mailcore.bounces.message import (
    WANTED_ORIGINAL_HEADERS,
    Parsed,
    clean_message_id,
    collapse,
    parse_message,
)
from mailcore.bounces.reasons import classify_reason, find_command
from mailcore.bounces.rfc3464 import DsnRecipient, has_dsn_text, parse_delivery_status
from mailcore.bounces.status import better_status, find_reply_code, find_status
from mailcore.bounces.types import BounceRecipient, BounceReport

DELIVERED_ACTIONS = frozenset({"delivered", "relayed", "expanded"})
UNDECIDED = frozenset({"", "undefined", "onhold"})
GROUPS_RE = re.compile(r"@googlegroups\.com$|groups\.google\.com/support")
REMOTE_HOST_RE = re.compile(r"\bhost\s+([a-z0-9][\w.-]*\.[a-z]{2,})\s*\[", re.I)


def parse_bounce(raw: bytes) -> BounceReport:
    """Classify a message as a bounce, complaint, auto-reply, delivery report or none."""
    try:
        return _parse(raw if isinstance(raw, bytes) else bytes(raw))
    except Exception:
        return BounceReport(kind="not_bounce", recipients=[])


def _parse(raw: bytes) -> BounceReport:
    parsed = parse_message(raw)
    original = {
        key: parsed.original_headers[key]
        for key in WANTED_ORIGINAL_HEADERS
        if parsed.original_headers.get(key)
    }
    message_id = clean_message_id(original.get("message-id", ""))

    def report(kind: str, recipients: list[BounceRecipient]) -> BounceReport:
        return BounceReport(
            kind=kind,
            recipients=recipients,
            original_message_id=message_id,
            original_headers=original,
        )

    notification = ses.load_notification(parsed)
    if notification is not None:
        kind, recipients = ses.parse_notification(notification)
        if kind:
            return report(kind, recipients)
    if arf.is_complaint(parsed):
        return report("complaint", arf.parse_complaint(parsed))
    dsn_text = "\n\n".join(parsed.delivery_status)
    if has_dsn_text(parsed.notification):
        dsn_text = dsn_text + "\n\n" + parsed.notification
    if dsn_text:
        _, dsn_recipients = parse_delivery_status(dsn_text)
        if dsn_recipients:
            recipients = [_from_dsn(parsed, item, dsn_recipients) for item in dsn_recipients]
            if all(item.reason == "delivered" for item in recipients):
                return report("delivered", recipients)
            return report("bounce", [item for item in recipients if item.reason != "delivered"])
    if mta_texts.is_bounce(parsed):
        return report("bounce", _from_text(parsed))
    if autoreply.is_auto_reply(parsed):
        return report("auto_reply", autoreply.parse_auto_reply(parsed))
    return report("not_bounce", [])


def _from_dsn(parsed: Parsed, item: DsnRecipient, everyone: list[DsnRecipient]) -> BounceRecipient:
    address = item.address or ""
    others = [other.address or "" for other in everyone]
    block = mta_texts.recipient_block(parsed.notification, address, others) if address else ""
    diagnostic = item.diagnostic or collapse(block)
    status = better_status(item.status, diagnostic)
    if item.action in DELIVERED_ACTIONS or (status or "").startswith("2."):
        return BounceRecipient(
            address=item.address,
            status=status,
            reason="delivered",
            permanent=None,
            diagnostic=diagnostic,
            remote_mta=item.remote_mta,
        )
    command = find_command(diagnostic) or find_command(block) or find_command(parsed.notification)
    if item.diagnostic_type == "x-unix" and not (status or "").startswith("5.1.6"):
        reason = "mailererror"
    else:
        reason = classify_reason(status, diagnostic, command)
    if reason in UNDECIDED and block and block != diagnostic:
        reason = _fallback(reason, classify_reason(status, block, command))
    if reason in UNDECIDED:
        reason = _fallback(reason, classify_reason(status, parsed.notification))
    if reason in UNDECIDED and item.action == "delayed":
        reason = "expired"
    permanent = _permanence(status, diagnostic, parsed.notification, item.action)
    return BounceRecipient(
        address=item.address,
        status=status,
        reason=reason,
        permanent=permanent,
        diagnostic=diagnostic,
        remote_mta=item.remote_mta,
    )


def _from_text(parsed: Parsed) -> list[BounceRecipient]:
    addresses = mta_texts.find_recipients(parsed)
    text = parsed.notification
    recipients = []
    for address in addresses or [""]:
        block = mta_texts.recipient_block(text, address, addresses) if address else ""
        if not block.strip():
            block = mta_texts.transcript_reply(text)
        status = find_status(block)
        command = find_command(block) or find_command(text)
        reason = classify_reason(status, block, command)
        if reason in UNDECIDED:
            reason = _fallback(reason, classify_reason(status, text, command))
        if reason in UNDECIDED and parsed.headers.get("subject"):
            reason = _fallback(reason, classify_reason(status, parsed.headers["subject"]))
        if GROUPS_RE.search(address) or GROUPS_RE.search(text):
            # Google Groups refuses posts from non-members or to missing groups.
            reason = "rejected" if reason in UNDECIDED else reason
        diagnostic = collapse(block) or collapse(text)
        remote = REMOTE_HOST_RE.search(block)
        recipients.append(
            BounceRecipient(
                address=address or None,
                status=status,
                reason=reason,
                permanent=_permanence(status, block, text, ""),
                diagnostic=diagnostic,
                remote_mta=remote.group(1).lower() if remote else "",
            )
        )
    return recipients


def _fallback(current: str, candidate: str) -> str:
    if candidate not in UNDECIDED:
        return candidate
    return "onhold" if "onhold" in (current, candidate) else (current or candidate)


def _permanence(status: str | None, diagnostic: str, text: str, action: str) -> bool:
    if status and status[0] in "45":
        return status[0] == "5"
    if action == "delayed":
        return False
    reply = find_reply_code(diagnostic)
    if reply:
        return reply[0] == "5"
    transient = mta_texts.is_transient_text(text)
    return not transient if transient is not None else True


def to_json_line(path: str, report: BounceReport) -> str:
    """One JSON line in the corpus format (cases.jsonl)."""
    return json.dumps(
        {
            "file": path,
            "kind": report.kind,
            "recipients": [
                {
                    "address": item.address,
                    "status": item.status,
                    "reason": item.reason,
                    "permanent": item.permanent,
                    "diagnostic": item.diagnostic,
                }
                for item in report.recipients
            ],
        },
        ensure_ascii=False,
    )
