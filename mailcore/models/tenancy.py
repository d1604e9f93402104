"""Tenants, domains, logins, mailboxes and aliases."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.functions import Lower


class User(AbstractUser):
    """A login. Mailbox logins use the mailbox address as username."""

    username = models.CharField(max_length=254, unique=True)

    class Meta:
        db_table = "mailcore_user"


class Organization(models.Model):
    """The tenant. Domains, mailboxes, messages and events all carry one."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Domain(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="domains")
    name = models.CharField(max_length=253, unique=True, help_text="Lower-case domain name.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name

    def save(self, *args: object, **kwargs: object) -> None:
        self.name = self.name.strip().lower()
        super().save(*args, **kwargs)  # type: ignore[arg-type]


class Mailbox(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="mailboxes")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mailbox"
    )
    local_part = models.CharField(max_length=64)
    address = models.CharField(max_length=254, unique=True, help_text="Lower-case address.")
    display_name = models.CharField(max_length=200, blank=True)
    quota_bytes = models.BigIntegerField(help_text="0 means unlimited.")
    used_bytes = models.BigIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "mailboxes"

    def __str__(self) -> str:
        return self.address

    def has_room_for(self, size: int) -> bool:
        return self.quota_bytes == 0 or self.used_bytes + size <= self.quota_bytes


class MailboxGrant(models.Model):
    """An operator-granted share: ``user`` may read (and optionally send from) ``mailbox``."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="grants")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mailbox_grants"
    )
    can_send = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "user"], name="uniq_grant_mailbox_user")
        ]

    def __str__(self) -> str:
        return f"{self.mailbox} shared with {self.user}"


class Alias(models.Model):
    """``local_part@domain`` delivered to one or more mailboxes.

    An empty ``local_part`` is the domain's catch-all: it receives mail for any address of the
    domain that has no mailbox and no specific alias.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="aliases")
    local_part = models.CharField(max_length=64, blank=True)
    mailboxes = models.ManyToManyField(Mailbox, blank=True, related_name="aliases")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "aliases"
        constraints = [
            models.UniqueConstraint(
                "domain", Lower("local_part"), name="uniq_alias_domain_local_part"
            )
        ]

    def __str__(self) -> str:
        return f"{self.local_part or '*'}@{self.domain.name}"
