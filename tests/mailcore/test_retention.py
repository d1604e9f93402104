"""Retention: old Trash/Junk mail, event partitions, webhook and outbound logs purged by policy;
counters, quota and shared blobs right; every run logged and shown in the admin."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, timedelta

import pytest
from django.core.management import call_command
from django.db.models import Count, Q, Sum
from django.test import Client
from django.utils import timezone

from analytics.models import Event
from analytics.services import partitions
from analytics.services.events import record_event
from api.models import WebhookDelivery, WebhookEndpoint
from mailcore.models import (
    Blob,
    Delivery,
    DeliveryAttempt,
    Folder,
    Mailbox,
    Message,
    OutboundMessage,
    RetentionRun,
    User,
)
from mailcore.services.messages import move_to_role
from mailcore.services.outbound import submit_outbound
from mailcore.services.retention import effective_policy, run_retention
from tests.factories import deliver, make_email

pytestmark = pytest.mark.django_db

MAIL = ["trash", "spam"]


def _store(subject: str, *recipients: str) -> list[Message]:
    deliver(make_email(subject=subject, to=recipients[0]), *recipients)
    return list(Message.objects.filter(subject=subject).order_by("id"))


def _move(message: Message, role: Folder.Role, *, days_ago: int) -> None:
    move_to_role(message.mailbox.user, [message], role)
    Message.objects.filter(id=message.id).update(moved_at=timezone.now() - timedelta(days_ago))


def _assert_counters_match_rows(*mailboxes: Mailbox) -> None:
    for mailbox in mailboxes:
        mailbox.refresh_from_db()
        stored = Message.objects.filter(mailbox=mailbox).aggregate(size=Sum("size"))["size"]
        assert mailbox.used_bytes == (stored or 0)
        for folder in mailbox.folders.all():
            counts = Message.objects.filter(folder=folder).aggregate(
                total=Count("id"), unread=Count("id", filter=Q(is_seen=False))
            )
            assert (folder.total_count, folder.unread_count) == (
                counts["total"],
                counts["unread"],
            ), folder.name


@pytest.fixture
def mail(alice: Mailbox, charlie: Mailbox) -> dict[str, Message]:
    """Alice: old inbox mail, trash old and recent, spam old; one message shared with charlie."""
    messages = {
        "old_inbox": _store("old inbox", "alice@example.test")[0],
        "old_trash": _store("old trash", "alice@example.test")[0],
        "recently_trashed": _store("recently trashed", "alice@example.test")[0],
        "old_spam": _store("old spam", "alice@example.test")[0],
        "new_spam": _store("new spam", "alice@example.test")[0],
        "charlie_old_trash": _store("charlie old trash", "charlie@other.test")[0],
    }
    shared = _store("shared", "alice@example.test", "charlie@other.test")
    messages["shared_alice"], messages["shared_charlie"] = shared
    long_ago = timezone.now() - timedelta(days=100)
    Message.objects.filter(subject__in=["old inbox", "recently trashed"]).update(
        received_at=long_ago
    )
    _move(messages["old_trash"], Folder.Role.TRASH, days_ago=31)
    _move(messages["recently_trashed"], Folder.Role.TRASH, days_ago=29)  # received long ago
    _move(messages["shared_alice"], Folder.Role.TRASH, days_ago=45)
    _move(messages["charlie_old_trash"], Folder.Role.TRASH, days_ago=60)
    # Spam delivered straight to Junk has no moved_at: its age counts from received_at.
    for key, days in (("old_spam", 31), ("new_spam", 3)):
        _move(messages[key], Folder.Role.JUNK, days_ago=0)
        Message.objects.filter(id=messages[key].id).update(
            moved_at=None, received_at=timezone.now() - timedelta(days=days)
        )
    return messages


def test_old_trash_and_spam_go_the_rest_stays(
    mail: dict[str, Message], alice: Mailbox, charlie: Mailbox
) -> None:
    shared_blob = mail["shared_charlie"].blob
    own_blobs = {mail[k].blob_id for k in ("old_trash", "old_spam", "charlie_old_trash")}
    assert shared_blob.id == mail["shared_alice"].blob_id
    freed = sum(Blob.objects.filter(id__in=own_blobs).values_list("size", flat=True))

    runs = {run.kind: run for run in run_retention(kinds=MAIL)}

    remaining = set(Message.objects.values_list("subject", flat=True))
    assert remaining == {"old inbox", "recently trashed", "new spam", "shared"}
    assert Message.objects.get(subject="shared").mailbox_id == charlie.id
    assert Blob.objects.filter(id=shared_blob.id).exists()  # charlie's copy still uses it
    assert not Blob.objects.filter(id__in=own_blobs).exists()
    _assert_counters_match_rows(alice, charlie)
    assert (runs["trash"].rows_removed, runs["trash"].blobs_removed) == (3, 2)
    assert (runs["spam"].rows_removed, runs["spam"].blobs_removed) == (1, 1)
    assert runs["trash"].bytes_removed + runs["spam"].bytes_removed == freed
    assert RetentionRun.objects.filter(kind__in=MAIL, is_dry_run=False, is_complete=True).count()
    assert runs["trash"].retention_days == 30 and runs["trash"].finished_at is not None

    assert run_retention(kinds=MAIL)[0].rows_removed == 0  # idempotent


def test_small_batches_and_a_spent_budget(
    mail: dict[str, Message], alice: Mailbox, charlie: Mailbox
) -> None:
    policy = effective_policy()
    stopped = run_retention(kinds=["trash"], policy=replace(policy, max_seconds=0))[0]
    assert (stopped.rows_removed, stopped.is_complete) == (0, False)
    assert Message.objects.filter(subject="old trash").exists()

    run = run_retention(kinds=["trash"], policy=replace(policy, batch_size=1))[0]
    assert (run.rows_removed, run.is_complete) == (3, True)
    _assert_counters_match_rows(alice, charlie)


def test_dry_run_counts_and_changes_nothing(
    mail: dict[str, Message], alice: Mailbox, charlie: Mailbox
) -> None:
    before = sorted(Message.objects.values_list("id", "folder_id"))
    blobs = Blob.objects.count()
    used = sorted(Mailbox.objects.values_list("id", "used_bytes"))

    dry = {run.kind: run for run in run_retention(kinds=MAIL, dry_run=True)}

    assert sorted(Message.objects.values_list("id", "folder_id")) == before
    assert Blob.objects.count() == blobs
    assert sorted(Mailbox.objects.values_list("id", "used_bytes")) == used
    assert all(run.is_dry_run for run in dry.values())
    real = {run.kind: run for run in run_retention(kinds=MAIL)}
    for kind in MAIL:
        assert (dry[kind].rows_removed, dry[kind].blobs_removed, dry[kind].bytes_removed) == (
            real[kind].rows_removed,
            real[kind].blobs_removed,
            real[kind].bytes_removed,
        )


def test_zero_days_keeps_forever(mail: dict[str, Message]) -> None:
    policy = replace(effective_policy(), trash_days=0)
    run = run_retention(kinds=["trash"], policy=policy)[0]
    assert (run.cutoff, run.rows_removed) == (None, 0)
    assert Message.objects.filter(subject="old trash").exists()


def test_webhook_logs_older_than_the_limit_are_deleted(alice: Mailbox) -> None:
    endpoint = WebhookEndpoint.objects.create(
        organization_id=alice.organization_id, url="http://127.0.0.1:9/hook", signing_key="k"
    )
    now = timezone.now()
    ages = [40, 35, 31, 29, 1, 0]  # written oldest first, as the log is
    for days in ages:
        WebhookDelivery.objects.create(
            endpoint=endpoint, event_id=days, event_type="delivered",
            created_at=now - timedelta(days=days),
        )  # fmt: skip
    policy = replace(effective_policy(), batch_size=2)
    run = run_retention(kinds=["webhook_logs"], policy=policy, now=now)[0]
    assert run.rows_removed == 3
    assert sorted(WebhookDelivery.objects.values_list("event_id", flat=True)) == [0, 1, 29]


def test_event_partitions_older_than_the_limit_are_dropped() -> None:
    today = timezone.now().astimezone(UTC).date()
    old_day, kept_day = today - timedelta(days=95), today - timedelta(days=80)
    for day in (old_day, kept_day):
        partitions.create_partition(day)
    record_event(1, "opened", occurred_at=timezone.now() - timedelta(days=95))
    record_event(1, "clicked", occurred_at=timezone.now() - timedelta(days=80))

    dry = run_retention(kinds=["events"], dry_run=True)[0]
    assert partitions.partition_name(old_day) in dry.partitions_dropped
    assert Event.objects.count() == 2

    run = run_retention(kinds=["events"])[0]
    assert partitions.partition_name(old_day) in run.partitions_dropped
    assert partitions.partition_name(kept_day) not in run.partitions_dropped
    assert old_day not in partitions.existing_partitions()
    assert kept_day in partitions.existing_partitions()
    assert list(Event.objects.values_list("type", flat=True)) == ["clicked"]


def test_finished_outbound_messages_go_with_their_deliveries_and_blobs(alice: Mailbox) -> None:
    def send(number: int) -> OutboundMessage:
        submitted = submit_outbound(
            organization_id=alice.organization_id,
            mail_from="alice@example.test",
            recipients=[f"r{number}@remote.test"],
            raw=make_email(sender="alice@example.test", to=f"r{number}@remote.test"),
            source="api",
        )
        return OutboundMessage.objects.get(id=submitted.id)

    now = timezone.now()
    old_done, old_waiting, new_done = send(1), send(2), send(3)
    for message, days, status in ((old_done, 40, "delivered"), (old_waiting, 40, "deferred"),
                                  (new_done, 2, "delivered")):  # fmt: skip
        OutboundMessage.objects.filter(id=message.id).update(created_at=now - timedelta(days))
        Delivery.objects.filter(message=message).update(status=status)
        delivery = Delivery.objects.get(message=message)
        DeliveryAttempt.objects.create(
            organization_id=alice.organization_id, delivery=delivery, outcome="delivered",
            started_at=now, finished_at=now,
        )  # fmt: skip

    run = run_retention(kinds=["outbound"], now=now)[0]

    assert run.rows_removed == 1 and run.blobs_removed == 1
    assert run.bytes_removed == old_done.size
    assert set(OutboundMessage.objects.values_list("id", flat=True)) == {
        old_waiting.id,
        new_done.id,
    }
    assert not Blob.objects.filter(id=old_done.blob_id).exists()
    assert not Delivery.objects.filter(message_id=old_done.id).exists()
    assert DeliveryAttempt.objects.count() == 2


def test_another_run_in_progress_is_not_joined(mail: dict[str, Message]) -> None:
    from django.db import connections

    from mailcore.services.retention import LOCK_ID

    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [LOCK_ID])
        assert run_retention(kinds=MAIL) == []
        assert Message.objects.filter(subject="old trash").exists()
    finally:
        other.close()


def test_command_dry_run_reports_and_keeps(mail: dict[str, Message], capsys) -> None:  # type: ignore[no-untyped-def]
    call_command("retention", "--dry-run", "--kind", "trash", "--kind", "spam")
    out = capsys.readouterr().out
    assert "trash: older than 30 days" in out and "would remove 3 rows" in out
    assert "spam: older than 30 days" in out and "would remove 1 rows" in out
    assert Message.objects.filter(subject="old trash").exists()
    call_command("retention", "--kind", "trash")
    assert "removed 3 rows" in capsys.readouterr().out
    assert not Message.objects.filter(subject="old trash").exists()


def test_admin_shows_runs_and_policy_to_staff_only(
    client: Client, mail: dict[str, Message], alice: Mailbox
) -> None:
    run_retention(kinds=MAIL)
    client.force_login(alice.user)  # alice is not staff
    response = client.get("/admin/mailcore/retentionrun/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]

    admin = User.objects.create_superuser("root", "root@example.test", "pw-not-used-here")
    client.force_login(admin)
    response = client.get("/admin/mailcore/retentionrun/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Retention policy in effect" in page
    assert "MAILROOM_TRASH_RETENTION_DAYS" in page and "30 days" in page
    assert "MAILROOM_EVENT_RETENTION_DAYS" in page and "90 days" in page
    assert page.count('class="field-kind"') == 2
    run = RetentionRun.objects.get(kind="trash")
    detail = client.get(f"/admin/mailcore/retentionrun/{run.id}/change/")
    assert detail.status_code == 200  # viewable, read-only
    assert client.post(f"/admin/mailcore/retentionrun/{run.id}/delete/").status_code == 403
    assert client.get("/admin/mailcore/retentionrun/add/").status_code == 403
