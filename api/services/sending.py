"""Sending through the API: compose (or take raw MIME), then :func:`submit_outbound`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from api.compose import ComposeError, Draft, build_mime, substitute
from api.models import ApiKey
from mailcore.models import OutboundMessage
from mailcore.services.outbound import SubmissionError, submit_outbound


class SendError(ValueError):
    """Refused input; nothing was stored. ``field`` names the offending field if known."""

    def __init__(self, message: str, field: str = "", code: str = "invalid") -> None:
        super().__init__(message)
        self.field = field
        self.code = code


@dataclass
class SendOptions:
    tags: Sequence[str] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    send_at: datetime | None = None
    track_opens: bool | None = None
    track_clicks: bool | None = None
    idempotency_key: str = ""
    is_test_mode: bool = False


def _domain_name(api_key: ApiKey, domain: str | None) -> str | None:
    if api_key.domain_id is not None:
        bound = api_key.domain.name  # type: ignore[union-attr]
        if domain is not None and domain.lower() != bound:
            raise SendError(f"This key may only send from {bound}.", "domain", "wrong_domain")
        return bound
    return domain.lower() if domain else None


def _submit(
    api_key: ApiKey,
    *,
    sender: str,
    recipients: list[str],
    raw: bytes,
    domain: str | None,
    options: SendOptions,
    idempotency_key: str,
) -> OutboundMessage:
    try:
        return submit_outbound(
            organization_id=api_key.organization_id,
            mail_from=sender,
            recipients=recipients,
            raw=raw,
            source="api",
            sending_domain=_domain_name(api_key, domain),
            tags=list(options.tags),
            metadata=options.metadata,
            send_at=options.send_at,
            track_opens=options.track_opens,
            track_clicks=options.track_clicks,
            idempotency_key=idempotency_key[:200],
        )
    except SubmissionError as exc:
        field_name = {"invalid_sender": "from", "unknown_domain": "from"}.get(exc.code, "to")
        raise SendError(str(exc), field_name, exc.code) from exc


def _envelope_sender(sender: str) -> str:
    from email.utils import parseaddr

    return parseaddr(sender)[1] or sender


def send_draft(
    api_key: ApiKey, draft: Draft, options: SendOptions, *, domain: str | None = None
) -> OutboundMessage | None:
    """Compose and queue one message to every recipient (None in test mode: nothing stored)."""
    try:
        raw = build_mime(draft)
    except ComposeError as exc:
        raise SendError(str(exc), exc.field) from exc
    recipients = draft.envelope_recipients()
    if options.is_test_mode:
        _domain_name(api_key, domain)
        return None
    return _submit(
        api_key,
        sender=_envelope_sender(draft.sender),
        recipients=recipients,
        raw=raw,
        domain=domain,
        options=options,
        idempotency_key=options.idempotency_key,
    )


def send_batch(
    api_key: ApiKey,
    draft: Draft,
    options: SendOptions,
    recipient_variables: dict[str, dict[str, Any]],
    *,
    domain: str | None = None,
) -> list[OutboundMessage]:
    """Mailgun batch sending: one message per ``to`` recipient, ``%recipient.KEY%`` filled in
    from its variables (subject, bodies, headers, ``v:`` metadata). Cc/Bcc are not allowed.
    Each message is its own transaction, so a crash mid-batch leaves a prefix queued; a retry
    with the same Idempotency-Key (one key per recipient index) completes it without doubles.
    """
    from email.utils import parseaddr

    if draft.cc or draft.bcc:
        raise SendError("cc and bcc cannot be combined with recipient-variables.", "cc")
    messages: list[OutboundMessage] = []
    for index, recipient in enumerate(draft.to):
        address = parseaddr(recipient)[1]
        variables = recipient_variables.get(address) or recipient_variables.get(recipient) or {}
        if not isinstance(variables, dict):
            raise SendError("Each recipient's variables must be an object.", "recipient-variables")
        one = replace(
            draft,
            to=[recipient],
            subject=substitute(draft.subject, variables),
            text=substitute(draft.text, variables),
            html=substitute(draft.html, variables),
            headers={k: substitute(v, variables) for k, v in draft.headers.items()},
        )
        metadata = {
            key: substitute(value, variables) if isinstance(value, str) else value
            for key, value in options.metadata.items()
        }
        key = f"{options.idempotency_key}#{index}" if options.idempotency_key else ""
        sent = send_draft(
            api_key, one, replace(options, metadata=metadata, idempotency_key=key), domain=domain
        )
        if sent is not None:
            messages.append(sent)
    return messages


def send_raw(
    api_key: ApiKey,
    *,
    sender: str,
    recipients: list[str],
    raw: bytes,
    options: SendOptions,
    domain: str | None = None,
) -> OutboundMessage | None:
    """Queue caller-built MIME as is (Bcc stripped, Message-ID/Date added when missing)."""
    if not raw.strip():
        raise SendError("The message is empty.", "message")
    if options.is_test_mode:
        _domain_name(api_key, domain)
        return None
    return _submit(
        api_key,
        sender=sender,
        recipients=recipients,
        raw=raw,
        domain=domain,
        options=options,
        idempotency_key=options.idempotency_key,
    )
