"""Pure helpers for writing mail: address lists, MIME building, reply and forward text.

No ORM here: values in, values out (``build_mime`` uses the stdlib ``EmailMessage``).
"""

from __future__ import annotations

import email.policy
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from mailcore.mime import Address

_PREFIX_RE = re.compile(r"^\s*(re|fwd?|aw|wg|sv|vs)\s*(\[\d+\])?\s*:\s*", re.I)

Pair = tuple[str, str]


class ComposeError(ValueError):
    """Something the writer must fix; the text is shown in the form."""


@dataclass(frozen=True, slots=True)
class AttachmentData:
    filename: str
    content_type: str
    data: bytes
    upload_id: int | None = None  # an upload that the saved draft now holds


@dataclass(slots=True)
class DraftContent:
    from_name: str
    from_address: str
    to: list[tuple[str, str]] = field(default_factory=list)
    cc: list[tuple[str, str]] = field(default_factory=list)
    bcc: list[tuple[str, str]] = field(default_factory=list)
    subject: str = ""
    body: str = ""
    attachments: list[AttachmentData] = field(default_factory=list)
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)

    @property
    def recipients(self) -> list[str]:
        seen: dict[str, None] = {}
        for _, address in (*self.to, *self.cc, *self.bcc):
            seen.setdefault(address.strip().strip("<>").lower(), None)
        return list(seen)


def parse_address_list(value: str) -> list[tuple[str, str]]:
    """``"Ann <ann@x.test>, bob@y.test"`` -> [(name, address)]; ComposeError names bad ones."""
    text = value.replace(";", ",").replace("\n", ",").replace("\r", "")
    bad: list[str] = []
    found: list[tuple[str, str]] = []
    for chunk in (piece.strip() for piece in _split_outside_quotes(text)):
        if not chunk:
            continue
        pairs = getaddresses([chunk])
        if len(pairs) != 1 or not pairs[0][1]:
            bad.append(chunk)
            continue
        name, address = pairs[0]
        try:
            validate_email(address)
        except ValidationError:
            bad.append(chunk)
            continue
        found.append((name.strip(), address.strip()))
    if bad:
        raise ComposeError("Not a valid address: " + ", ".join(bad))
    return found


def _split_outside_quotes(text: str) -> list[str]:
    pieces: list[str] = []
    current: list[str] = []
    quoted = angle = False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif char == "<" and not quoted:
            angle = True
        elif char == ">" and not quoted:
            angle = False
        if char == "," and not quoted and not angle:
            pieces.append("".join(current))
            current = []
        else:
            current.append(char)
    pieces.append("".join(current))
    return pieces


def format_address_list(pairs: Sequence[tuple[str, str]]) -> str:
    return ", ".join(str(HeaderAddress(name, addr_spec=address)) for name, address in pairs)


def build_mime(
    content: DraftContent, *, date: datetime, message_id: str = "", include_bcc: bool = True
) -> bytes:
    """The message as RFC 5322 bytes (CRLF). Drafts carry Bcc; what goes on the wire does not."""
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = HeaderAddress(content.from_name, addr_spec=content.from_address)
    for header, pairs in (("To", content.to), ("Cc", content.cc)):
        if pairs:
            message[header] = [HeaderAddress(n, addr_spec=a) for n, a in pairs]
    if include_bcc and content.bcc:
        message["Bcc"] = [HeaderAddress(n, addr_spec=a) for n, a in content.bcc]
    message["Subject"] = content.subject
    message["Date"] = format_datetime(date)
    if message_id:
        message["Message-ID"] = f"<{message_id}>"
    if content.in_reply_to:
        message["In-Reply-To"] = f"<{content.in_reply_to}>"
    if content.references:
        message["References"] = " ".join(f"<{ref}>" for ref in content.references[-30:])
    message["User-Agent"] = "Mailroom Webmail"
    message.set_content(content.body.replace("\r\n", "\n"), charset="utf-8")
    for attachment in content.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        if not maintype or not subtype:
            maintype, subtype = "application", "octet-stream"
        message.add_attachment(
            attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    return message.as_bytes()


def reply_subject(subject: str, prefix: str = "Re") -> str:
    """``Re: subject`` without piling up prefixes (``Re: Re: Fwd:`` becomes ``Re:``)."""
    stripped = subject.strip()
    while True:
        shorter = _PREFIX_RE.sub("", stripped, count=1)
        if shorter == stripped:
            break
        stripped = shorter
    return f"{prefix}: {stripped}" if stripped else f"{prefix}:"


def quote(text: str) -> str:
    lines = text.replace("\r\n", "\n").rstrip("\n").split("\n")
    return "\n".join(
        ">" + (" " + line if line and not line.startswith(">") else line) for line in lines
    )


def _who(name: str, address: str) -> str:
    return f"{name} <{address}>" if name else address


def _signature_block(signature: str) -> str:
    signature = signature.strip("\n")
    return f"\n\n-- \n{signature}" if signature.strip() else ""


def _when(date: datetime | None) -> str:
    return date.strftime("%a, %d %b %Y at %H:%M") if date else "an unknown date"


def reply_body(
    *, text: str, from_name: str, from_address: str, date: datetime | None, signature: str
) -> str:
    """Room to write, the signature, then the original quoted with an attribution line."""
    attribution = f"On {_when(date)}, {_who(from_name, from_address)} wrote:"
    return f"\n{_signature_block(signature)}\n\n{attribution}\n{quote(text)}\n"


def forward_body(
    *,
    text: str,
    from_name: str,
    from_address: str,
    date: datetime | None,
    subject: str,
    to: Sequence[Pair],
    signature: str,
) -> str:
    header = "\n".join(
        [
            "---------- Forwarded message ----------",
            f"From: {_who(from_name, from_address)}",
            f"Date: {_when(date)}",
            f"Subject: {subject}",
            f"To: {', '.join(_who(n, a) for n, a in to)}",
        ]
    )
    return f"\n{_signature_block(signature)}\n\n{header}\n\n{text.rstrip()}\n"


def reply_recipients(
    *,
    reply_all: bool,
    sender: Address | None,
    reply_to: Sequence[Address],
    to: Sequence[Address],
    cc: Sequence[Address],
    mine: set[str],
) -> tuple[list[Pair], list[Pair]]:
    """(To, Cc) of a reply: Reply-To or From; with reply-all also the others, minus me."""
    primary = list(reply_to) or ([sender] if sender else [])
    if sender is not None and sender.address.lower() in mine and not reply_to:
        primary = list(to)  # replying to my own sent message goes to its recipients again
    seen: set[str] = set()

    def take(addresses: Sequence[Address]) -> list[Pair]:
        result = []
        for address in addresses:
            key = address.address.lower()
            if key in seen or (key in mine and addresses is not primary):
                continue
            seen.add(key)
            result.append((address.name, address.address))
        return result

    to_pairs = take(primary)
    if not reply_all:
        return to_pairs, []
    to_pairs += take(list(to))
    return to_pairs, take(list(cc))
