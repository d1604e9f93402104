"""Building a MIME message from API fields (pure: no ORM, bytes out)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import getaddresses

_HEADER_NAME = re.compile(r"^[!-9;-~]+$")
# Headers the API composes itself; a caller's h:/headers value for these is refused.
_RESERVED = {
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "content-type",
    "content-transfer-encoding",
    "mime-version",
}


class ComposeError(ValueError):
    """Input the caller must fix; ``field`` names the offending field."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content: bytes
    content_type: str = "application/octet-stream"
    content_id: str = ""  # set for inline parts


@dataclass
class Draft:
    sender: str
    to: list[str]
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    subject: str = ""
    text: str = ""
    html: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    attachments: list[Attachment] = field(default_factory=list)

    def envelope_recipients(self) -> list[str]:
        return [address for _, address in getaddresses([*self.to, *self.cc, *self.bcc]) if address]


def split_addresses(values: list[str]) -> list[str]:
    """``["a@x, B <b@x>", "c@x"]`` -> ``["a@x", "B <b@x>", "c@x"]`` (display names kept)."""
    out: list[str] = []
    for name, address in getaddresses(values):
        if address:
            out.append(f"{name} <{address}>" if name else address)
    return out


def build_mime(draft: Draft) -> bytes:
    """The message as bytes (CRLF); raises :class:`ComposeError` for unusable input."""
    if not draft.sender.strip():
        raise ComposeError("This field is required.", "from")
    if not draft.to and not draft.cc and not draft.bcc:
        raise ComposeError("At least one recipient is required.", "to")
    if not draft.text and not draft.html and not draft.attachments:
        raise ComposeError("Need at least one of text, html or an attachment.", "text")
    message = EmailMessage(policy=SMTP)
    try:
        message["From"] = draft.sender
        if draft.to:
            message["To"] = ", ".join(draft.to)
        if draft.cc:
            message["Cc"] = ", ".join(draft.cc)
        message["Subject"] = draft.subject
        for name, value in draft.headers.items():
            if not _HEADER_NAME.match(name) or name.lower() in _RESERVED:
                raise ComposeError(f"Header {name!r} cannot be set.", "headers")
            if "\r" in value or "\n" in value:
                raise ComposeError(f"Header {name!r} contains a line break.", "headers")
            message[name] = value
    except (ValueError, TypeError) as exc:
        if isinstance(exc, ComposeError):
            raise
        raise ComposeError(f"Invalid header value: {exc}", "headers") from exc
    if draft.text or not draft.html:
        message.set_content(draft.text or "")
        if draft.html:
            message.add_alternative(draft.html, subtype="html")
    else:
        message.set_content(draft.html, subtype="html")
    for attachment in draft.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        if not maintype or not subtype or "\n" in attachment.content_type:
            maintype, subtype = "application", "octet-stream"
        if attachment.content_id:
            message.add_attachment(
                attachment.content,
                maintype=maintype,
                subtype=subtype,
                filename=attachment.filename or None,
                cid=f"<{attachment.content_id.strip('<>')}>",
                disposition="inline",
            )
        else:
            message.add_attachment(
                attachment.content,
                maintype=maintype,
                subtype=subtype,
                filename=attachment.filename or "attachment",
            )
    try:
        return message.as_bytes()
    except (ValueError, TypeError, UnicodeError) as exc:
        raise ComposeError(f"Cannot encode the message: {exc}") from exc


def substitute(text: str, variables: dict[str, object]) -> str:
    """Mailgun's ``%recipient.KEY%`` (and ``%recipient%``-free) substitution for batch sends."""
    if "%recipient." not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        value = variables.get(match.group(1), "")
        return "" if value is None else str(value)

    return re.sub(r"%recipient\.([^%\s]+)%", replace, text)
