"""The webmail's per-user settings, identities (send-as addresses) and trusted senders."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction

from mailcore import access
from mailcore.models import Alias, Mailbox, User
from webmail.models import Identity, Preferences, TrustedSender


class PreferencesError(ValueError):
    """Bad input; the text is shown to the user."""


@dataclass(frozen=True, slots=True)
class Sender:
    """One choice of the compose form's From field."""

    key: str
    mailbox: Mailbox
    address: str
    name: str

    @property
    def label(self) -> str:
        return f"{self.name} <{self.address}>" if self.name else self.address


def get_preferences(user: User) -> Preferences:
    """The saved preferences, or unsaved defaults."""
    found = Preferences.objects.filter(user_id=user.pk).first()
    return found if found is not None else Preferences(user=user)


def update_preferences(
    user: User,
    *,
    display_name: str,
    signature: str,
    remote_images: str,
    page_size: int,
    undo_send_seconds: int,
) -> Preferences:
    if page_size not in Preferences.PAGE_SIZES:
        raise PreferencesError("Choose a page size from the list.")
    if undo_send_seconds not in Preferences.UNDO_SEND_SECONDS:
        raise PreferencesError("Choose an undo-send delay from the list.")
    if remote_images not in Preferences.RemoteImages.values:
        raise PreferencesError("Choose a remote image policy from the list.")
    with transaction.atomic():
        Mailbox.objects.filter(user=user).update(display_name=display_name.strip()[:200])
        preferences, _ = Preferences.objects.update_or_create(
            user=user,
            defaults={
                "signature": signature.replace("\r\n", "\n")[:5000],
                "remote_images": remote_images,
                "page_size": page_size,
                "undo_send_seconds": undo_send_seconds,
            },
        )
    return preferences


def available_aliases(user: User) -> list[tuple[str, Mailbox]]:
    """Addresses of aliases that deliver to a mailbox the user owns (catch-alls excluded)."""
    aliases = (
        Alias.objects.filter(mailboxes__user=user, is_active=True, domain__is_active=True)
        .exclude(local_part="")
        .select_related("domain")
        .prefetch_related("mailboxes")
        .order_by("domain__name", "local_part")
    )
    result = []
    for alias in aliases:
        mailbox = next(m for m in alias.mailboxes.all() if m.user_id == user.pk)
        result.append((f"{alias.local_part}@{alias.domain.name}", mailbox))
    return result


def add_identity(user: User, address: str, name: str) -> Identity:
    address = address.strip().lower()
    owned = dict(available_aliases(user))
    if address not in owned:
        raise PreferencesError(f"{address} is not an alias of your mailbox.")
    try:
        with transaction.atomic():
            return Identity.objects.create(
                user=user, mailbox=owned[address], address=address, name=name.strip()[:200]
            )
    except IntegrityError as exc:
        raise PreferencesError(f"{address} is already one of your identities.") from exc


def remove_identity(identity: Identity) -> None:
    identity.delete()


def senders_for_user(user: User) -> list[Sender]:
    """The From choices: sendable mailboxes first (own first), then identities still valid."""
    mailboxes = sorted(
        access.sendable_mailboxes_for_user(user), key=lambda m: (m.user_id != user.pk, m.address)
    )
    senders = [Sender(f"m:{m.id}", m, m.address, m.display_name) for m in mailboxes]
    owned = {address for address, _ in available_aliases(user)}
    for identity in (
        Identity.objects.filter(user=user).select_related("mailbox").order_by("address")
    ):
        if identity.address in owned:
            senders.append(
                Sender(f"i:{identity.id}", identity.mailbox, identity.address, identity.name)
            )
    return senders


def trust_sender(user: User, address: str) -> None:
    TrustedSender.objects.get_or_create(user=user, address=address.strip().lower()[:254])


def untrust_sender(user: User, address: str) -> int:
    deleted, _ = TrustedSender.objects.filter(user=user, address=address.lower()).delete()
    return deleted


def shows_remote_images(user: User, preferences: Preferences, sender: str) -> bool:
    if preferences.remote_images == Preferences.RemoteImages.ALWAYS:
        return True
    return bool(sender) and TrustedSender.objects.filter(user=user, address=sender.lower()).exists()
