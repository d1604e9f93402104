"""VERP return paths: ``bounces+TOKEN@<sending domain>`` where TOKEN names a delivery.

TOKEN is the delivery id in unpadded base32 followed by 8 base32 characters (40 bits) of an
HMAC over it, all lower case because some MTAs lower-case local parts (and so does our own
receiver). It is short (a 7-digit id gives a 14-character token), cannot be forged to point at
someone else's delivery, and needs no table: the id is in the token.

When one SMTP transaction carries several recipients of the same message, the envelope has one
return path: the token then names the first delivery of the transaction and the bounce handler
matches the other recipients by address within that message.

No ORM here: the receiver's recipient check imports it.
"""

from __future__ import annotations

import base64
import hmac

from django.conf import settings
from django.utils.crypto import salted_hmac

MAC_CHARS = 8
_SALT = "mailroom.outbound.verp"


def local_part() -> str:
    return settings.MAILROOM_VERP_LOCAL_PART


def _mac(encoded_id: str) -> str:
    digest = salted_hmac(_SALT, encoded_id, algorithm="sha256").digest()
    return base64.b32encode(digest[:5]).decode("ascii").lower()


def make_token(delivery_id: int) -> str:
    raw = delivery_id.to_bytes((delivery_id.bit_length() + 7) // 8 or 1, "big")
    encoded = base64.b32encode(raw).decode("ascii").rstrip("=").lower()
    return encoded + _mac(encoded)


def parse_token(token: str) -> int | None:
    """The delivery id of a genuine token, else None."""
    token = token.strip().lower()
    encoded, mac = token[:-MAC_CHARS], token[-MAC_CHARS:]
    if not encoded or len(token) > 40 or not hmac.compare_digest(mac, _mac(encoded)):
        return None
    try:
        raw = base64.b32decode(encoded.upper() + "=" * (-len(encoded) % 8))
    except ValueError:
        return None
    return int.from_bytes(raw, "big") or None


def return_path(delivery_id: int, domain: str) -> str:
    return f"{local_part()}+{make_token(delivery_id)}@{domain}"


def is_bounce_local_part(local: str) -> bool:
    """``bounces`` or ``bounces+anything``: the reserved bounce intake of every local domain."""
    base = local_part()
    local = local.lower()
    return local == base or local.startswith(base + "+")


def token_from_address(address: str) -> str | None:
    """The TOKEN of ``bounces+TOKEN@domain``; None for the bare bounce address."""
    local, _, _ = address.strip().strip("<>").rpartition("@")
    _, plus, token = local.partition("+")
    return token.lower() if plus and token else None
