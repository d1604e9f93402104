from __future__ import annotations

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command

from mailcore.models import Alias, Domain, Folder, Mailbox
from mailcore.services.provisioning import ProvisioningError, create_alias, create_mailbox
from mailcore.services.recipients import Verdict, resolve_recipient
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_create_mailbox_makes_domain_login_and_special_folders() -> None:
    mailbox = create_mailbox("Alice@Example.TEST", PASSWORD, quota_bytes=1234)
    assert mailbox.address == "alice@example.test"
    assert mailbox.quota_bytes == 1234
    assert Domain.objects.get().name == "example.test"
    assert mailbox.organization_id == mailbox.domain.organization_id
    assert sorted(Folder.objects.filter(mailbox=mailbox).values_list("role", flat=True)) == [
        "archive",
        "drafts",
        "inbox",
        "junk",
        "sent",
        "trash",
    ]
    assert authenticate(username="alice@example.test", password=PASSWORD) == mailbox.user
    assert authenticate(username="alice@example.test", password="wrong") is None


def test_duplicate_and_malformed_addresses_are_refused(alice: Mailbox) -> None:
    with pytest.raises(ProvisioningError, match="already exists"):
        create_mailbox("alice@example.test", PASSWORD)
    with pytest.raises(ProvisioningError, match="not an email address"):
        create_mailbox("not-an-address", PASSWORD)
    assert Mailbox.objects.count() == 1


def test_alias_delivers_to_several_mailboxes(alice: Mailbox, bob: Mailbox) -> None:
    create_alias("team@example.test", ["alice@example.test", "bob@example.test"])
    resolution = resolve_recipient("Team@example.test")
    assert resolution.verdict is Verdict.LOCAL
    assert sorted(t.mailbox_id for t in resolution.targets) == sorted([alice.id, bob.id])


def test_catch_all_takes_unknown_addresses_only(alice: Mailbox, bob: Mailbox) -> None:
    assert resolve_recipient("anything@example.test").verdict is Verdict.UNKNOWN_USER
    create_alias("*@example.test", ["alice@example.test"])
    assert [t.mailbox_id for t in resolve_recipient("anything@example.test").targets] == [alice.id]
    assert [t.mailbox_id for t in resolve_recipient("bob@example.test").targets] == [bob.id]


def test_plus_addressing_reaches_the_mailbox(alice: Mailbox) -> None:
    assert [t.mailbox_id for t in resolve_recipient("alice+news@example.test").targets] == [
        alice.id
    ]


def test_resolution_is_cached_and_invalidated_on_change(
    alice: Mailbox, django_assert_num_queries
) -> None:  # type: ignore[no-untyped-def]
    resolve_recipient("alice@example.test")
    with django_assert_num_queries(0):
        assert resolve_recipient("alice@example.test").verdict is Verdict.LOCAL
    Mailbox.objects.filter(id=alice.id).first().delete()
    assert resolve_recipient("alice@example.test").verdict is Verdict.UNKNOWN_USER


def test_foreign_and_inactive_domains(alice: Mailbox) -> None:
    assert resolve_recipient("x@elsewhere.test").verdict is Verdict.FOREIGN_DOMAIN
    domain = Domain.objects.get(name="example.test")
    domain.is_active = False
    domain.save()
    assert resolve_recipient("alice@example.test").verdict is Verdict.FOREIGN_DOMAIN


def test_management_commands(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("createdomain", "lists.example.test")
    call_command(
        "createmailbox", "carol@lists.example.test", "--password", PASSWORD, "--quota", "0"
    )
    call_command("createalias", "*@lists.example.test", "carol@lists.example.test")
    out = capsys.readouterr().out
    assert "Domain lists.example.test" in out
    assert "Mailbox carol@lists.example.test" in out
    assert "Alias *@lists.example.test -> carol@lists.example.test" in out
    assert Mailbox.objects.get().quota_bytes == 0
    assert Alias.objects.get().local_part == ""
    with pytest.raises(CommandError, match="No such mailbox"):
        call_command("createalias", "x@lists.example.test", "ghost@lists.example.test")


def test_answers_cached_before_a_redis_flush_never_look_current_again(alice: Mailbox) -> None:
    from django.core.cache import cache

    from mailcore.services import recipients

    cache.clear()
    recipients.bump_generation()  # the first generation ever
    assert resolve_recipient("alice@example.test").verdict is Verdict.LOCAL  # cached here
    kept = dict(recipients._local.answers)
    cache.clear()  # Redis restarted or flushed; this process still holds its local copy
    Mailbox.objects.filter(id=alice.id).update(is_active=False)
    recipients.bump_generation()  # as another process would after its change
    recipients._local.answers.update(kept)  # ... which does not touch this process's copy
    recipients._local.generation_read_at = float("-inf")  # a second later, here
    assert resolve_recipient("alice@example.test").verdict is Verdict.UNKNOWN_USER
