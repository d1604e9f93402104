"""DKIM keys (per sending domain, 2048-bit RSA, selector rotation) and signing with dkimpy.

Signing is dkimpy's (parsing, relaxed/relaxed canonicalization, header list, folding), with one
substitution: dkimpy does the RSA private-key operation in pure Python (about 15 ms per
signature on a small machine), so :func:`_openssl_rsa_sign` replaces that one primitive with
OpenSSL through ``cryptography`` (about 1 ms). RSASSA-PKCS1-v1_5 is deterministic, so the
signature is byte-for-byte what dkimpy would produce (a test checks it); verification is
untouched dkimpy.

Active keys are cached per process for ``KEY_CACHE_SECONDS``, so a rotation is picked up by
every worker within a minute.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any

import dkim
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from django.db import transaction
from django.utils import timezone

from mailcore.models import DkimKey, Domain

KEY_BITS = 2048
KEY_CACHE_SECONDS = 60
SIGNED_HEADERS = (
    b"from", b"sender", b"reply-to", b"subject", b"date", b"message-id", b"to", b"cc",
    b"mime-version", b"content-type", b"content-transfer-encoding", b"in-reply-to",
    b"references", b"list-id", b"list-unsubscribe", b"list-unsubscribe-post",
)  # fmt: skip
_HASHES = {"sha256": hashes.SHA256, "sha1": hashes.SHA1}


@dataclass(frozen=True, slots=True)
class SigningKey:
    domain: str
    selector: str
    private_key_pem: bytes


# --- Keys ---------------------------------------------------------------------------------------


def generate_key_pair() -> tuple[str, str]:
    """(private PKCS#1 PEM, public key base64 DER for the p= tag)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode("ascii")
    public_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, base64.b64encode(public_der).decode("ascii")


def default_selector(domain: Domain) -> str:
    base = f"mr{timezone.now():%Y%m}"
    taken = set(domain.dkim_keys.values_list("selector", flat=True))
    if base not in taken:
        return base
    return next(
        f"{base}{suffix}" for suffix in "bcdefghijklmnopqrstuvwxyz" if base + suffix not in taken
    )


def create_key(domain: Domain, selector: str = "", *, activate: bool = True) -> DkimKey:
    """Generate a key for ``domain``; with ``activate`` it becomes the signing key and the
    previous active key is retired (rotation). Publish the new record before activating in
    production: :func:`dns_record` says what to publish."""
    private_pem, public = generate_key_pair()
    with transaction.atomic():
        Domain.objects.select_for_update().get(pk=domain.pk)
        selector = (selector or default_selector(domain)).strip().lower()
        if activate:
            domain.dkim_keys.filter(is_active=True).update(
                is_active=False, retired_at=timezone.now()
            )
        key = DkimKey.objects.create(
            organization_id=domain.organization_id,
            domain=domain,
            selector=selector,
            private_key_pem=private_pem,
            public_key=public,
            is_active=activate,
        )
    _active_cache.clear()
    return key


def activate_key(key: DkimKey) -> None:
    with transaction.atomic():
        DkimKey.objects.filter(domain_id=key.domain_id, is_active=True).exclude(pk=key.pk).update(
            is_active=False, retired_at=timezone.now()
        )
        DkimKey.objects.filter(pk=key.pk).update(is_active=True, retired_at=None)
    _active_cache.clear()


def dns_record_name(key: DkimKey) -> str:
    return f"{key.selector}._domainkey.{key.domain.name}"


def dns_record_value(key: DkimKey) -> str:
    return f"v=DKIM1; k=rsa; p={key.public_key}"


def dns_zone_line(key: DkimKey) -> str:
    """A zone-file line; the value is split into quoted strings of at most 255 characters."""
    value = dns_record_value(key)
    chunks = " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))
    return f"{dns_record_name(key)}. 3600 IN TXT ( {chunks} )"


_active_cache: dict[str, tuple[float, SigningKey | None]] = {}


def active_key(domain_name: str) -> SigningKey | None:
    """The signing key of a sending domain, or None (then mail goes out unsigned)."""
    now = time.monotonic()
    cached = _active_cache.get(domain_name)
    if cached is not None and cached[0] > now:
        return cached[1]
    row = (
        DkimKey.objects.filter(domain__name=domain_name, is_active=True)
        .values_list("selector", "private_key_pem")
        .first()
    )
    key = SigningKey(domain_name, row[0], row[1].encode("ascii")) if row else None
    _active_cache[domain_name] = (now + KEY_CACHE_SECONDS, key)
    return key


# --- Signing ------------------------------------------------------------------------------------


def sign(raw: bytes, key: SigningKey) -> bytes:
    """``raw`` (CRLF) with a DKIM-Signature header prepended."""
    present = {line.split(b":", 1)[0].strip().lower() for line in _header_lines(raw)}
    headers = [name for name in SIGNED_HEADERS if name in present]
    signature = dkim.sign(
        raw,
        key.selector.encode("ascii"),
        key.domain.encode("ascii"),
        key.private_key_pem,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=headers,
    )
    return signature + raw


def _header_lines(raw: bytes) -> list[bytes]:
    head = raw.split(b"\r\n\r\n", 1)[0]
    return [line for line in head.split(b"\r\n") if line and line[:1] not in b" \t"]


_openssl_keys: dict[int, rsa.RSAPrivateKey] = {}


def _openssl_rsa_sign(hash_object: Any, private_key: dict[str, int]) -> bytes:
    """dkimpy's ``RSASSA_PKCS1_v1_5_sign(hash, key_dict)``, computed by OpenSSL."""
    key = _openssl_keys.get(private_key["modulus"])
    if key is None:
        public = rsa.RSAPublicNumbers(private_key["publicExponent"], private_key["modulus"])
        key = rsa.RSAPrivateNumbers(
            p=private_key["prime1"],
            q=private_key["prime2"],
            d=private_key["privateExponent"],
            dmp1=private_key["exponent1"],
            dmq1=private_key["exponent2"],
            iqmp=private_key["coefficient"],
            public_numbers=public,
        ).private_key()
        if len(_openssl_keys) > 1000:
            _openssl_keys.clear()
        _openssl_keys[private_key["modulus"]] = key
    algorithm = _HASHES[hash_object.name]()
    return key.sign(hash_object.digest(), padding.PKCS1v15(), Prehashed(algorithm))


_pure_python_rsa_sign = dkim.RSASSA_PKCS1_v1_5_sign
dkim.RSASSA_PKCS1_v1_5_sign = _openssl_rsa_sign
