"""Cache invalidation only (workflow never runs from signals)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from mailcore.models import Alias, Domain, Folder, Mailbox, MailboxGrant
from mailcore.services.recipients import bump_generation


@receiver(post_save, sender=Domain)
@receiver(post_delete, sender=Domain)
@receiver(post_save, sender=Mailbox)
@receiver(post_delete, sender=Mailbox)
@receiver(post_save, sender=Alias)
@receiver(post_delete, sender=Alias)
@receiver(post_save, sender=MailboxGrant)
@receiver(post_delete, sender=MailboxGrant)
@receiver(post_delete, sender=Folder)
@receiver(m2m_changed, sender=Alias.mailboxes.through)
def invalidate_recipient_cache(**kwargs: Any) -> None:
    # Now, so this transaction's own lookups see the change, and again after commit, so a
    # concurrent lookup cannot have cached the old rows under the new generation.
    bump_generation()
    transaction.on_commit(bump_generation)
