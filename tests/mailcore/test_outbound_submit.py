"""submit_outbound (the transactional outbox) and the pure pieces: VERP, backoff, CRLF, DKIM."""

from __future__ import annotations

import datetime as dt

import dkim as dkimpy
import pytest
from django.core.cache import cache
from django.utils import timezone

from analytics.models import Event
from mailcore import queueing
from mailcore.models import Blob, Delivery, Mailbox, OutboundMessage, Suppression
from mailcore.services.outbound import (
    SubmissionError,
    dispatch,
    dkim,
    submit_outbound,
    throttle,
    verp,
)
from mailcore.services.outbound.dispatch import (
    NUDGE_KEY,
    cancel_deliveries,
    claim_due_deliveries,
    recover_expired_leases,
    retry_now,
)
from mailcore.services.outbound.retry import Kind, decide, retry_delay
from mailcore.services.outbound.smtp_client import dot_stuff
from mailcore.services.outbound.suppression import (
    export_suppressions_csv,
    import_suppressions_csv,
    suppress_address,
)
from tests.factories import make_email


def submit(alice: Mailbox, *recipients: str, **kwargs) -> OutboundMessage:  # type: ignore[no-untyped-def]
    kwargs.setdefault("raw", make_email(sender="alice@example.test", to="x@remote.test"))
    return submit_outbound(
        organization_id=alice.organization_id,
        mail_from=kwargs.pop("mail_from", "Alice@Example.test"),
        recipients=recipients,
        source=kwargs.pop("source", "webmail"),
        **kwargs,
    )


@pytest.fixture(autouse=True)
def _no_recent_nudge() -> None:
    dispatch._last_nudge[0] = float("-inf")


def nudges(callbacks: list) -> list:  # type: ignore[type-arg]
    return [c for c in callbacks if getattr(c, "func", None) is queueing._send]


def counts() -> tuple[int, int, int, int]:
    return (
        OutboundMessage.objects.count(),
        Delivery.objects.count(),
        Event.objects.count(),
        Blob.objects.count(),
    )


@pytest.mark.django_db
def test_submit_writes_message_deliveries_and_events(
    alice: Mailbox, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    raw = (
        b"From: alice@example.test\nTo: dana@remote.test\nBcc: secret@remote.test\n"
        b"Subject: Hi\n\nbody\n"
    )
    with django_capture_on_commit_callbacks() as callbacks:
        message = submit(
            alice,
            "Dana@Remote.test",
            "secret@remote.test",
            "dana@remote.test",
            raw=raw,
            tags=["welcome"],
            metadata={"user": 7},
        )
    assert len(nudges(callbacks)) == 1  # the wake-up, only after commit
    assert (message.source, message.mail_from, message.domain_id) == (
        "webmail",
        "alice@example.test",
        alice.domain_id,
    )
    assert (message.subject, message.tags, message.metadata) == ("Hi", ["welcome"], {"user": 7})
    stored = bytes(message.blob.data)
    assert stored.startswith(f"Message-ID: <{message.message_id}>\r\nDate: ".encode())
    assert message.message_id.endswith("@example.test")
    assert b"Bcc" not in stored and b"\r\n\r\nbody\r\n" in stored
    assert b"\n" not in stored.replace(b"\r\n", b"")
    deliveries = list(
        message.deliveries.order_by("id").values_list("recipient", "status", "is_local")
    )
    assert deliveries == [
        ("dana@remote.test", "queued", False),
        ("secret@remote.test", "queued", False),
    ]
    assert list(Event.objects.order_by("id").values_list("type", "recipient", "tags")) == [
        ("sent", "dana@remote.test", ["welcome"]),
        ("sent", "secret@remote.test", ["welcome"]),
    ]
    nudges(callbacks)[0]()
    assert cache.get(NUDGE_KEY) == 1


@pytest.mark.django_db
def test_refused_submissions_store_nothing(alice: Mailbox, charlie: Mailbox) -> None:
    before = counts()
    cases = [
        ({"mail_from": "charlie@other.test"}, "unknown_domain"),  # another tenant's domain
        ({"mail_from": "not an address"}, "invalid_sender"),
        ({"source": "fax"}, "invalid"),
    ]
    for kwargs, code in cases:
        with pytest.raises(SubmissionError) as error:
            submit(alice, "dana@remote.test", **kwargs)
        assert error.value.code == code
    for recipients, code in [
        ((), "no_recipients"),
        (("bad address",), "invalid_recipient"),
        (("a@b.test\r\nRCPT TO:<x@y>",), "invalid_recipient"),
    ]:
        with pytest.raises(SubmissionError) as error:
            submit(alice, *recipients)
        assert error.value.code == code
    assert counts() == before


@pytest.mark.django_db
def test_idempotency_key_returns_the_first_message(alice: Mailbox) -> None:
    first = submit(alice, "dana@remote.test", idempotency_key="order-17")
    before = counts()
    again = submit(alice, "erin@remote.test", idempotency_key="order-17")
    assert again.id == first.id
    assert counts() == before


@pytest.mark.django_db
def test_suppressed_and_scheduled_recipients(
    alice: Mailbox, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    suppress_address(alice.domain, "gone@remote.test")
    later = timezone.now() + dt.timedelta(hours=2)
    with django_capture_on_commit_callbacks() as callbacks:
        message = submit(alice, "gone@remote.test", "dana@remote.test", send_at=later)
    assert nudges(callbacks) == []  # nothing due now: no wake-up
    assert dict(message.deliveries.values_list("recipient", "status")) == {
        "gone@remote.test": "suppressed",
        "dana@remote.test": "queued",
    }
    queued = message.deliveries.get(status="queued")
    assert queued.next_attempt_at == later
    assert queued.expires_at == later + dt.timedelta(days=3)
    assert claim_due_deliveries(lease_token="t", limit=10).deliveries == []


@pytest.mark.django_db
def test_claim_lease_recovery_retry_and_cancel(alice: Mailbox) -> None:
    message = submit(alice, "dana@remote.test", "erin@remote.test")
    now = timezone.now() + dt.timedelta(seconds=1)
    claim = claim_due_deliveries(lease_token="worker-1", limit=10, now=now, lease_seconds=30)
    assert sorted(d.recipient for d in claim.deliveries) == ["dana@remote.test", "erin@remote.test"]
    assert claim_due_deliveries(lease_token="worker-2", limit=10, now=now).deliveries == []
    assert claim.messages[message.id].raw == bytes(message.blob.data)
    assert recover_expired_leases(now=now + dt.timedelta(seconds=29)) == 0
    assert recover_expired_leases(now=now + dt.timedelta(seconds=31)) == 2
    rows = list(message.deliveries.values_list("status", "lease_token", "attempt_count"))
    assert rows == [("deferred", "", 1), ("deferred", "", 1)]
    assert Event.objects.filter(type="deferred").count() == 2
    dana = message.deliveries.get(recipient="dana@remote.test")
    assert cancel_deliveries([dana.id]) == 1
    assert cancel_deliveries([dana.id]) == 0
    dana.refresh_from_db()
    assert dana.status == "cancelled"
    erin = message.deliveries.get(recipient="erin@remote.test")
    Delivery.objects.filter(id=erin.id).update(status="failed")
    assert retry_now([erin.id, dana.id]) == 1
    erin.refresh_from_db()
    assert erin.status == "deferred" and erin.expires_at > timezone.now() + dt.timedelta(days=2)


@pytest.mark.django_db
def test_suppression_csv_round_trip(alice: Mailbox) -> None:
    text = "address,reason\nOne@Remote.test,complaint\ntwo@remote.test,whatever\nnot-an-address\n"
    assert import_suppressions_csv(alice.domain, text) == 2
    assert import_suppressions_csv(alice.domain, "one@remote.test\n") == 0
    rows = set(Suppression.objects.values_list("address", "reason", "source"))
    assert rows == {
        ("one@remote.test", "complaint", "import"),
        ("two@remote.test", "manual", "import"),
    }
    exported = export_suppressions_csv(alice.domain).splitlines()
    assert exported[0] == "domain,address,reason,source,detail,created_at"
    assert [line.split(",")[:4] for line in exported[1:]] == [
        ["example.test", "one@remote.test", "complaint", "import"],
        ["example.test", "two@remote.test", "manual", "import"],
    ]


def test_verp_tokens_round_trip_and_resist_forgery() -> None:
    for delivery_id in (1, 255, 1234567, 2**40 + 3):
        token = verp.make_token(delivery_id)
        assert token == token.lower() and len(token) <= 24
        assert verp.parse_token(token) == delivery_id
        assert verp.parse_token(token.upper()) == delivery_id
    token = verp.make_token(1234567)
    assert len(token) == 13
    assert verp.parse_token(verp.make_token(1234568)[:-8] + token[-8:]) is None
    assert verp.parse_token("") is None and verp.parse_token("!!!!!!!!!!") is None
    assert verp.token_from_address(f"Bounces+{token}@Example.test") == token
    assert verp.token_from_address("bounces@example.test") is None
    assert verp.is_bounce_local_part("bounces") and verp.is_bounce_local_part("BOUNCES+x")
    assert not verp.is_bounce_local_part("bouncesx")


def test_backoff_is_exponential_jittered_and_capped() -> None:
    delays = [
        retry_delay(n, base_seconds=60, cap_seconds=3600, rand=lambda: 0.5).total_seconds()
        for n in range(1, 10)
    ]
    assert delays == [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
    assert retry_delay(1, base_seconds=60, cap_seconds=3600, rand=lambda: 0.0).total_seconds() == 45
    assert (
        retry_delay(1, base_seconds=60, cap_seconds=3600, rand=lambda: 0.999).total_seconds() < 75
    )
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    expires = now + dt.timedelta(seconds=100)
    common = {"now": now, "expires_at": expires, "base_seconds": 60, "cap_seconds": 3600}
    assert decide(Kind.TEMPORARY, attempt=2, rand=lambda: 0.5, **common).next_attempt_at == expires
    assert decide(Kind.PERMANENT, attempt=1, **common).status == "bounced"
    assert decide(Kind.TEMPORARY, attempt=1, **{**common, "now": expires}).status == "failed"


def test_dot_stuffing_and_line_endings() -> None:
    assert dot_stuff(b".a\nb\r.c\r\n.") == b"..a\r\nb\r\n..c\r\n..\r\n.\r\n"
    assert dot_stuff(b"x") == b"x\r\n.\r\n"


def test_openssl_signing_equals_dkimpys_own(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    private_pem, _ = dkim.generate_key_pair()
    key = dkim.SigningKey("example.test", "s1", private_pem.encode())
    raw = make_email(sender="alice@example.test", to="dana@remote.test")
    monkeypatch.setattr("time.time", lambda: 1_800_000_000)
    fast = dkim.sign(raw, key)
    monkeypatch.setattr(dkimpy, "RSASSA_PKCS1_v1_5_sign", dkim._pure_python_rsa_sign)
    assert dkim.sign(raw, key) == fast


@pytest.mark.django_db
def test_throttle_counters_and_slots_in_redis() -> None:
    now = dt.datetime(2026, 1, 1, 12, 0, 30, tzinfo=dt.UTC)
    assert throttle.take_destination_rate("mx:gmail.com", 3, 5, now) == 3
    assert throttle.take_destination_rate("mx:gmail.com", 3, 1, now) == 0
    assert throttle.take_destination_rate("mx:gmail.com", 3, 5, now + dt.timedelta(minutes=1)) == 3
    assert throttle.acquire_connection("mx:x.test", "a", 1) is True
    assert throttle.acquire_connection("mx:x.test", "b", 1) is False
    throttle.release_connection("mx:x.test", "a")
    assert throttle.acquire_connection("mx:x.test", "b", 1) is True
    assert throttle.destination_limits("mx:gmail.com", "gmail.com") == throttle.Limits(20, 3000)
    assert throttle.destination_limits("relay:127.0.0.1:25", "gmail.com").per_minute == 0


@pytest.mark.django_db
def test_dkimkey_command_generates_rotates_and_prints_records(alice: Mailbox) -> None:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("dkimkey", "generate", "example.test", selector="s1", stdout=out)
    call_command("dkimkey", "rotate", "example.test", selector="s2", stdout=out)
    text = out.getvalue()
    assert "Active key for example.test: selector s2" in text
    assert 's2._domainkey.example.test. 3600 IN TXT ( "v=DKIM1; k=rsa; p=' in text
    assert "; retired, created" in text
    assert list(alice.domain.dkim_keys.order_by("id").values_list("selector", "is_active")) == [
        ("s1", False),
        ("s2", True),
    ]


@pytest.mark.django_db
def test_a_paused_sending_domain_waits_until_resumed(alice: Mailbox) -> None:
    from analytics.models import DomainReputation
    from analytics.services.guardrails import is_sending_paused

    message = submit(alice, "dana@remote.test")
    reputation = DomainReputation.objects.create(
        domain_id=message.domain_id,
        domain_name="example.test",
        organization_id=alice.organization_id,
        status=DomainReputation.Status.PAUSED,
    )
    now = timezone.now() + dt.timedelta(seconds=1)
    assert claim_due_deliveries(lease_token="w", limit=10, now=now).deliveries == []
    delivery = message.deliveries.get()
    assert (delivery.status, delivery.attempt_count) == ("queued", 0)
    assert delivery.next_attempt_at == now + dt.timedelta(seconds=60)
    reputation.status = DomainReputation.Status.OK
    reputation.save()
    cache.clear()  # the pause flag is cached for 30 s
    assert is_sending_paused("example.test") is False
    later = now + dt.timedelta(seconds=61)
    claim = claim_due_deliveries(lease_token="w", limit=10, now=later)
    assert [d.recipient for d in claim.deliveries] == ["dana@remote.test"]
