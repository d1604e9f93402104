"""RFC 3464 delivery-status fields, from a message/delivery-status part or from plain text."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailcore.bounces.message import ADDRESS_RE, collapse

FIELD_RE = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)[ \t]*:[ \t]*(.*)$")
RECIPIENT_FIELDS = ("final-recipient", "original-recipient", "x-actual-recipient")
DSN_TEXT_RE = re.compile(r"^(?:Final-Recipient|Original-Recipient)\s*:", re.I | re.M)


@dataclass(slots=True)
class DsnRecipient:
    address: str | None
    status: str | None = None
    action: str = ""
    diagnostic: str = ""
    diagnostic_type: str = ""
    remote_mta: str = ""


def _fields(block: str) -> list[tuple[str, str]]:
    fields: list[tuple[str, str]] = []
    for line in block.split("\n"):
        if line[:1] in (" ", "\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + " " + line.strip())
            continue
        match = FIELD_RE.match(line)
        if match:
            fields.append((match.group(1).lower(), match.group(2).strip()))
    return fields


def _strip_type(value: str) -> str:
    # "rfc822; user@example.org" -> "user@example.org"
    if ";" in value:
        kind, rest = value.split(";", 1)
        if len(kind) < 20 and " " not in kind.strip():
            return rest.strip()
    return value.strip()


STATUS_FIELD_RE = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})")


def parse_delivery_status(text: str) -> tuple[dict[str, str], list[DsnRecipient]]:
    """Return (per-message fields, recipients) from delivery-status text."""
    per_message: dict[str, str] = {}
    recipients: list[DsnRecipient] = []
    for block in re.split(r"\n[ \t]*\n", text.replace("\r", "")):
        fields = _fields(block)
        names = [name for name, _ in fields]
        opener = "final-recipient" if "final-recipient" in names else "original-recipient"
        if opener not in names:
            for name, value in fields:
                per_message.setdefault(name, value)
            continue
        current: DsnRecipient | None = None
        pending: list[tuple[str, str]] = []
        for name, value in fields:
            if name == opener:
                current = DsnRecipient(address=_address(value))
                recipients.append(current)
                for early_name, early_value in pending:
                    _apply(current, early_name, early_value)
                pending = []
            elif current is None:
                pending.append((name, value))
            else:
                _apply(current, name, value)
    return per_message, _merge(recipients)


def _address(value: str) -> str | None:
    match = ADDRESS_RE.search(_strip_type(value))
    return match.group(1).lower() if match else None


def _apply(current: DsnRecipient, name: str, value: str) -> None:
    if name in RECIPIENT_FIELDS:
        if current.address is None:
            current.address = _address(value)
    elif name == "status":
        match = STATUS_FIELD_RE.search(value)
        if match and not current.status:
            current.status = match.group(0)
    elif name == "action":
        current.action = value.split()[0].lower() if value.split() else ""
    elif name == "diagnostic-code" and not current.diagnostic:
        current.diagnostic = collapse(_strip_type(value))
        if ";" in value:
            current.diagnostic_type = value.split(";", 1)[0].strip().lower()
    elif name == "remote-mta" and not current.remote_mta:
        current.remote_mta = _strip_type(value)


def _merge(recipients: list[DsnRecipient]) -> list[DsnRecipient]:
    merged: dict[str | None, DsnRecipient] = {}
    order: list[DsnRecipient] = []
    for item in recipients:
        if not item.address:
            continue
        seen = merged.get(item.address)
        if seen is None:
            merged[item.address] = item
            order.append(item)
            continue
        # A repeated block (e.g. Postfix reports a recipient twice): fill the gaps.
        seen.status = seen.status or item.status
        seen.action = seen.action or item.action
        seen.diagnostic = seen.diagnostic or item.diagnostic
        seen.remote_mta = seen.remote_mta or item.remote_mta
    return order


def has_dsn_text(text: str) -> bool:
    return bool(DSN_TEXT_RE.search(text))
