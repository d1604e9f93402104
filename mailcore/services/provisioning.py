"""Creating organizations, domains, mailboxes and aliases (admin, commands, API)."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.utils.text import slugify

from mailcore.models import Alias, Domain, Folder, Mailbox, Organization, User

DEFAULT_FOLDERS: tuple[tuple[str, str], ...] = (
    (Folder.Role.INBOX, "Inbox"),
    (Folder.Role.DRAFTS, "Drafts"),
    (Folder.Role.SENT, "Sent"),
    (Folder.Role.ARCHIVE, "Archive"),
    (Folder.Role.JUNK, "Junk"),
    (Folder.Role.TRASH, "Trash"),
)


class ProvisioningError(ValueError):
    """Bad operator input; the message is shown as is."""


def split_address(address: str) -> tuple[str, str]:
    address = address.strip()
    local_part, sep, domain = address.rpartition("@")
    if not sep or not local_part or not domain or " " in address:
        raise ProvisioningError(f"{address!r} is not an email address.")
    return local_part, domain.lower()


def create_domain(name: str, organization: Organization | None = None) -> Domain:
    """Create (or return) a domain; a new organization named after it is made if none given."""
    name = name.strip().lower().rstrip(".")
    if not name or "." not in name or "@" in name:
        raise ProvisioningError(f"{name!r} is not a domain name.")
    with transaction.atomic():
        existing = Domain.objects.filter(name=name).first()
        if existing is not None:
            return existing
        if organization is None:
            organization, _ = Organization.objects.get_or_create(
                slug=slugify(name)[:100] or "org", defaults={"name": name}
            )
        return Domain.objects.create(organization=organization, name=name)


def create_mailbox(
    address: str,
    password: str,
    *,
    display_name: str = "",
    quota_bytes: int | None = None,
    is_staff: bool = False,
) -> Mailbox:
    """Create a login, its mailbox and the special-use folders. Creates the domain if needed."""
    local_part, domain_name = split_address(address)
    address = f"{local_part.lower()}@{domain_name}"
    with transaction.atomic():
        domain = create_domain(domain_name)
        if Mailbox.objects.filter(address=address).exists():
            raise ProvisioningError(f"Mailbox {address} already exists.")
        user = User(username=address, email=address, is_staff=is_staff)
        user.set_password(password)
        user.save()
        mailbox = Mailbox.objects.create(
            organization_id=domain.organization_id,
            domain=domain,
            user=user,
            local_part=local_part.lower(),
            address=address,
            display_name=display_name,
            quota_bytes=settings.MAILROOM_DEFAULT_QUOTA if quota_bytes is None else quota_bytes,
        )
        Folder.objects.bulk_create(
            Folder(organization_id=domain.organization_id, mailbox=mailbox, name=name, role=role)
            for role, name in DEFAULT_FOLDERS
        )
    return mailbox


def create_alias(address: str, targets: Iterable[str]) -> Alias:
    """Create ``address`` delivering to the mailboxes at ``targets``.

    ``*@domain`` (or ``@domain``) makes the domain's catch-all.
    """
    local_part, domain_name = (
        ("", address.strip().lstrip("*@").lower())
        if address.strip().startswith(("*@", "@"))
        else split_address(address)
    )
    target_list = [target.strip().lower() for target in targets if target.strip()]
    if not target_list:
        raise ProvisioningError("An alias needs at least one target mailbox.")
    with transaction.atomic():
        domain = create_domain(domain_name)
        mailboxes = list(Mailbox.objects.filter(address__in=target_list))
        missing = sorted(set(target_list) - {mailbox.address for mailbox in mailboxes})
        if missing:
            raise ProvisioningError(f"No such mailbox: {', '.join(missing)}")
        if Alias.objects.filter(domain=domain, local_part__iexact=local_part).exists():
            raise ProvisioningError(f"Alias {address} already exists.")
        alias = Alias.objects.create(
            organization_id=domain.organization_id, domain=domain, local_part=local_part.lower()
        )
        alias.mailboxes.set(mailboxes)
    return alias
