"""Group commit of submissions from many threads: batches share a transaction, each caller gets
its own result, one bad submission never fails the others."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from analytics.models import Event
from mailcore.models import Delivery, Mailbox, OutboundMessage
from mailcore.services.groupcommit import GroupCommitter
from mailcore.services.outbound import submit, submit_outbound
from tests.factories import make_email


def test_items_waiting_together_are_written_in_one_batch_with_their_own_results() -> None:
    started, release = threading.Event(), threading.Event()
    batches: list[list[int]] = []

    def write(items):  # type: ignore[no-untyped-def]
        if not batches:
            started.set()
            release.wait(5)  # the first call holds the writer while the others queue up
        batches.append(list(items))
        return [ValueError(f"odd {n}") if n % 2 else n * 10 for n in items]

    committer: GroupCommitter[int, int] = GroupCommitter(write, max_batch=64, name="test")
    with ThreadPoolExecutor(max_workers=8) as pool:
        first = pool.submit(committer.submit, 0)
        assert started.wait(5)
        later = [pool.submit(committer.submit, n) for n in range(1, 8)]
        while committer._queue.qsize() < 7:
            threading.Event().wait(0.01)
        release.set()
        assert first.result(5) == 0
        for n, future in enumerate(later, start=1):
            if n % 2:
                with pytest.raises(ValueError, match=f"odd {n}"):
                    future.result(5)
            else:
                assert future.result(5) == n * 10
    assert batches == [[0], [1, 2, 3, 4, 5, 6, 7]]
    assert (committer.batches, committer.items) == (2, 8)


def test_a_failing_writer_fails_only_its_batch_and_keeps_serving() -> None:
    calls = []

    def write(items):  # type: ignore[no-untyped-def]
        calls.append(list(items))
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return list(items)

    committer: GroupCommitter[str, str] = GroupCommitter(write, name="test")
    with pytest.raises(RuntimeError, match="database went away"):
        committer.submit("a")
    assert committer.submit("b") == "b"


def _submit(organization_id: int, n: int, key: str = "") -> OutboundMessage:
    return submit_outbound(
        organization_id=organization_id,
        mail_from="alice@example.test",
        recipients=[f"user{n}@remote.test"],
        raw=make_email(sender="alice@example.test", to=f"user{n}@remote.test"),
        source="api",
        idempotency_key=key,
    )


def _submit_from_thread(organization_id: int, n: int, key: str = "") -> OutboundMessage:
    try:
        return _submit(organization_id, n, key)
    finally:
        connections.close_all()


@pytest.mark.django_db(transaction=True)
def test_concurrent_submissions_are_all_stored_with_their_events(alice: Mailbox) -> None:
    before = (submit._committer.batches, submit._committer.items)
    with ThreadPoolExecutor(max_workers=12) as pool:
        messages = list(
            pool.map(lambda n: _submit_from_thread(alice.organization_id, n), range(60))
        )
    assert len({message.id for message in messages}) == 60
    assert all(message.id for message in messages)
    assert submit._committer.items - before[1] == 60
    assert submit._committer.batches - before[0] < 60  # twelve callers at once do share
    stored = Delivery.objects.filter(message__in=[m.id for m in messages])
    assert sorted(stored.values_list("recipient", flat=True)) == sorted(
        f"user{n}@remote.test" for n in range(60)
    )
    assert Event.objects.filter(type="sent", message_id__in=[m.id for m in messages]).count() == 60


@pytest.mark.django_db(transaction=True)
def test_a_repeated_idempotency_key_in_one_batch_returns_the_first_message(alice: Mailbox) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        messages = list(
            pool.map(
                lambda n: _submit_from_thread(alice.organization_id, n, key="same-key"), range(8)
            )
        )
    assert len({message.id for message in messages}) == 1
    assert OutboundMessage.objects.filter(idempotency_key="same-key").count() == 1
    assert Delivery.objects.filter(message_id=messages[0].id).count() == 1


@pytest.mark.django_db
def test_a_caller_holding_a_transaction_writes_inline(alice: Mailbox) -> None:
    before = submit._committer.items
    message = _submit(alice.organization_id, 1)
    assert submit._committer.items == before
    assert Delivery.objects.filter(message_id=message.id).count() == 1
