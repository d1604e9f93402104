"""Value types returned by the bounce parser."""

from __future__ import annotations

from dataclasses import dataclass, field

KINDS = ("bounce", "complaint", "auto_reply", "delivered", "not_bounce")


@dataclass(frozen=True, slots=True)
class BounceRecipient:
    address: str | None
    status: str | None
    reason: str
    permanent: bool | None
    diagnostic: str = ""
    remote_mta: str = ""
    feedback_type: str = ""


@dataclass(frozen=True, slots=True)
class BounceReport:
    kind: str
    recipients: list[BounceRecipient] = field(default_factory=list)
    original_message_id: str = ""
    original_headers: dict[str, str] = field(default_factory=dict)
    verp_token: str = ""
