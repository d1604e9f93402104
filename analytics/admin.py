from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from analytics.models import DomainReputation, DomainTracking, Event


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    """Read-only: the event store is append-only. The message id links to its timeline."""

    change_list_template = "analytics/admin_change_list.html"
    list_display = ["occurred_at", "type", "organization_id", "recipient", "timeline_link"]
    list_filter = ["type"]
    search_fields = ["=recipient", "=message_id"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return False

    @admin.display(description="Timeline")
    def timeline_link(self, obj: Event) -> str:
        if obj.message_id is None:
            return ""
        url = reverse("analytics:events") + f"?org={obj.organization_id}&message={obj.message_id}"
        return format_html('<a href="{}">message {}</a>', url, obj.message_id)


@admin.register(DomainReputation)
class DomainReputationAdmin(admin.ModelAdmin):
    change_list_template = "analytics/admin_change_list.html"
    list_display = [
        "domain_name",
        "status",
        "bounce_rate",
        "complaint_rate",
        "sent_count",
        "paused_at",
        "resumed_by",
    ]
    list_filter = ["status"]
    readonly_fields = [f.name for f in DomainReputation._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class DomainTrackingInline(admin.StackedInline):
    """Shown on the domain's admin page (mailcore/admin.py): a domain has one row or none
    (none = every kind off)."""

    model = DomainTracking
    fields = ["track_opens", "track_clicks", "track_unsubscribes", "updated_at"]
    readonly_fields = ["updated_at"]
    can_delete = False
    max_num = 1
    min_num = 0
    extra = 1
