"""mailcore.services.messages: flags, moves with undo, permanent deletion, labels, counters."""

from __future__ import annotations

import pytest
from django.core import signing

from mailcore.models import Blob, Label, Mailbox, Message, Thread
from mailcore.services import messages as service
from tests.factories import deliver, make_email
from tests.webmail.conftest import counts, folder, real_counts, receive

pytestmark = pytest.mark.django_db


def test_mark_read_and_unread_keep_unread_count(alice: Mailbox) -> None:
    first, second, third = (receive(alice, f"m{i}") for i in range(3))
    assert counts(alice)["inbox"] == (3, 3)
    assert service.set_seen([first, second], True) == 2
    assert counts(alice)["inbox"] == (3, 1)
    assert service.set_seen([first, second, third], True) == 1  # only the one that changed
    assert counts(alice)["inbox"] == (3, 0)
    assert service.set_seen([second], False) == 1
    assert counts(alice)["inbox"] == (3, 1)
    assert counts(alice) == real_counts(alice)


def test_flag_and_unflag(alice: Mailbox) -> None:
    message = receive(alice)
    assert service.set_flagged([message], True) == 1
    assert service.set_flagged([message], True) == 0
    message.refresh_from_db()
    assert message.is_flagged is True
    assert service.set_flagged([message], False) == 1
    message.refresh_from_db()
    assert message.is_flagged is False


def test_archive_trash_spam_move_counts_and_undo(alice: Mailbox) -> None:
    read, unread = receive(alice, "read"), receive(alice, "unread")
    service.set_seen([read], True)
    result = service.move_to_role(alice.user, [read, unread], "archive")
    assert sorted(result.moved) == sorted(
        [(read.id, folder(alice, "inbox").id), (unread.id, folder(alice, "inbox").id)]
    )
    assert counts(alice)["inbox"] == (0, 0)
    assert counts(alice)["archive"] == (2, 1)
    spam = service.move_to_role(alice.user, [Message.objects.get(id=unread.id)], "junk")
    assert counts(alice)["junk"] == (1, 1)
    assert counts(alice)["archive"] == (1, 0)
    # Undo puts the message back where that move found it.
    assert service.undo_move(alice.user, spam.undo_token) == 1
    assert counts(alice)["archive"] == (2, 1)
    assert counts(alice)["junk"] == (0, 0)
    assert service.undo_move(alice.user, result.undo_token) == 2
    assert counts(alice)["inbox"] == (2, 1)
    assert counts(alice)["archive"] == (0, 0)
    assert counts(alice) == real_counts(alice)


def test_undo_token_is_bound_to_its_user_and_signed(alice: Mailbox, bob: Mailbox) -> None:
    message = receive(alice)
    result = service.move_to_role(alice.user, [message], "trash")
    with pytest.raises(service.MessageActionError):
        service.undo_move(bob.user, result.undo_token)  # bob can see alice's mail, still not his
    forged = signing.dumps({"u": alice.user.pk, "m": [[message.id, 1]]}, salt="other")
    with pytest.raises(service.MessageActionError):
        service.undo_move(alice.user, forged)
    message.refresh_from_db()
    assert message.folder.role == "trash"
    assert counts(alice)["trash"] == (1, 1)


def test_undo_skips_messages_the_user_no_longer_sees(
    alice: Mailbox, bob: Mailbox, charlie: Mailbox
) -> None:
    message = receive(alice)
    result = service.move_to_role(bob.user, [message], "trash")  # bob acts on the share
    alice.grants.all().delete()  # the share is revoked
    assert service.undo_move(bob.user, result.undo_token) == 0
    message.refresh_from_db()
    assert message.folder.role == "trash"


def test_move_into_another_mailbox_is_refused(alice: Mailbox, bob: Mailbox) -> None:
    message = receive(alice)
    with pytest.raises(service.MessageActionError):
        service.move_messages(alice.user, [message], folder(bob, "archive"))
    message.refresh_from_db()
    assert message.folder.role == "inbox"
    assert counts(bob)["archive"] == (0, 0)


def test_delete_permanently_frees_quota_blobs_and_threads(alice: Mailbox, bob: Mailbox) -> None:
    raw = make_email(to="alice@example.test, bob@example.test", subject="Shared blob")
    outcome = deliver(raw, "alice@example.test", "bob@example.test")
    alices, bobs = sorted(
        Message.objects.filter(id__in=outcome.message_ids), key=lambda m: m.mailbox_id
    )
    assert alices.blob_id == bobs.blob_id  # one transaction, one blob
    alice.refresh_from_db()
    used = alice.used_bytes
    assert used == alices.size
    service.move_to_role(alice.user, [alices], "trash")
    assert service.empty_folder(folder(alice, "trash")) == 1
    alice.refresh_from_db()
    assert alice.used_bytes == 0
    assert not Message.objects.filter(id=alices.id).exists()
    assert Blob.objects.filter(id=bobs.blob_id).exists()  # bob's copy still uses it
    assert not Thread.objects.filter(id=alices.thread_id).exists()
    assert counts(alice)["trash"] == (0, 0)
    assert service.delete_permanently([bobs]) == 1
    assert not Blob.objects.filter(id=bobs.blob_id).exists()
    assert counts(bob) == real_counts(bob)


def test_only_trash_and_junk_can_be_emptied(alice: Mailbox) -> None:
    receive(alice)
    with pytest.raises(service.MessageActionError):
        service.empty_folder(folder(alice, "inbox"))
    assert counts(alice)["inbox"] == (1, 1)


def test_labels_many_per_message_within_one_mailbox(alice: Mailbox, bob: Mailbox) -> None:
    message = receive(alice)
    work = service.create_label(alice, "Work", "#ff0000")
    urgent = service.create_label(alice, "Urgent", "#00ff00")
    with pytest.raises(service.MessageActionError):
        service.create_label(alice, "work", "#000000")  # names are case-insensitively unique
    assert service.set_label([message], work, True) == 1
    assert service.set_label([message], work, True) == 0
    assert service.set_label([message], urgent, True) == 1
    assert sorted(message.labels.values_list("name", flat=True)) == ["Urgent", "Work"]
    bobs_label = service.create_label(bob, "Bob's", "#0000ff")
    with pytest.raises(service.MessageActionError):
        service.set_label([message], bobs_label, True)
    assert service.set_label([message], work, False) == 1
    assert list(message.labels.values_list("name", flat=True)) == ["Urgent"]
    service.update_label(urgent, "Later", "#123456")
    assert Label.objects.get(id=urgent.id).name == "Later"
    service.delete_label(urgent)
    assert message.labels.count() == 0
