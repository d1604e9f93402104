"""Small builders shared by the tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, make_msgid
from pathlib import Path
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.db import connection

from mailcore.models import Mailbox
from mailcore.services.inbound import InboundItem, InboundOutcome, ingest_message
from mailcore.services.recipients import resolve_recipient

PASSWORD = "correct horse battery staple"


def make_email(
    *,
    sender: str = "Dana Sender <dana@remote.test>",
    to: str = "alice@example.test",
    subject: str = "Hello",
    body: str = "Hi there,\r\nthis is a test.\r\n",
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
    date: datetime | None = None,
) -> bytes:
    lines = [
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {subject}",
        f"Date: {format_datetime(date or datetime(2026, 11, 1, 12, 0, tzinfo=UTC))}",
        f"Message-ID: {message_id or make_msgid(domain='remote.test')}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
    ]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    text = "\r\n".join(lines) + "\r\n\r\n" + body.replace("\r\n", "\n").replace("\n", "\r\n")
    return text.encode("utf-8")


def deliver(raw: bytes, *recipients: str, mail_from: str = "dana@remote.test") -> InboundOutcome:
    """Store ``raw`` for local ``recipients`` the way the receiver does (without a socket)."""
    targets = {}
    for address in recipients:
        for target in resolve_recipient(address).targets:
            targets.setdefault(target.mailbox_id, target)
    item = InboundItem(
        mail_from=mail_from, recipients=recipients, targets=tuple(targets.values()), data=raw
    )
    return ingest_message(item)


def inbox_of(mailbox: Mailbox):  # type: ignore[no-untyped-def]
    return mailbox.folders.get(role="inbox")


def child_database_url() -> str:
    """The URL of the test database, for a child process (a socket path host is quoted)."""
    settings_dict = connection.settings_dict
    user = quote(settings_dict["USER"] or "", safe="")
    if settings_dict.get("PASSWORD"):
        user += ":" + quote(settings_dict["PASSWORD"], safe="")
    host = quote(settings_dict["HOST"] or "", safe="")
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    url = f"postgresql://{user}@{host}{port}/{settings_dict['NAME']}"
    socket_directory = settings_dict.get("OPTIONS", {}).get("host")
    if socket_directory:  # the embedded server listens on a unix socket only
        url += f"?host={quote(socket_directory, safe='/')}"
    return url


def self_signed_certificate(directory: Path) -> tuple[str, str]:
    """A throwaway certificate for localhost; returns (cert path, key path)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)
