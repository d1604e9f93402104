from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest

from analytics.admin import DomainTrackingInline
from mailcore.models import (
    Alias,
    Domain,
    Folder,
    Mailbox,
    MailboxGrant,
    Message,
    Organization,
    User,
)

admin.site.register(User, UserAdmin)


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name"]
    inlines = [DomainTrackingInline]


class GrantInline(admin.TabularInline):
    model = MailboxGrant
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Mailbox)
class MailboxAdmin(admin.ModelAdmin):
    list_display = ["address", "display_name", "quota_bytes", "used_bytes", "is_active"]
    list_filter = ["is_active", "domain"]
    search_fields = ["address", "display_name"]
    readonly_fields = ["used_bytes", "created_at", "updated_at"]
    raw_id_fields = ["user"]
    inlines = [GrantInline]


@admin.register(Alias)
class AliasAdmin(admin.ModelAdmin):
    list_display = ["__str__", "domain", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["local_part", "domain__name"]
    filter_horizontal = ["mailboxes"]


@admin.register(Folder)
class FolderAdmin(admin.ModelAdmin):
    list_display = ["name", "mailbox", "role", "total_count", "unread_count"]
    search_fields = ["mailbox__address", "name"]
    readonly_fields = ["total_count", "unread_count"]


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ["subject", "from_address", "mailbox", "folder", "received_at", "size"]
    list_select_related = ["mailbox", "folder"]
    search_fields = ["subject", "from_address", "message_id"]
    exclude = ["search_vector", "blob"]
    show_full_result_count = False


# Outbound queue, suppressions, DKIM; retention run log and policy.
from mailcore import admin_outbound, admin_retention  # noqa: E402,F401
