"""The retention run log (read-only) with the policy in effect above it."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from mailcore.models import RetentionRun
from mailcore.services.retention import effective_policy


@admin.register(RetentionRun)
class RetentionRunAdmin(admin.ModelAdmin):
    list_display = [
        "started_at",
        "kind",
        "retention_days",
        "rows_removed",
        "blobs_removed",
        "bytes_removed",
        "partition_count",
        "is_dry_run",
        "is_complete",
        "has_error",
        "finished_at",
    ]
    list_filter = ["kind", "is_dry_run", "is_complete"]
    date_hierarchy = "started_at"
    ordering = ["-started_at", "-id"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="partitions dropped")
    def partition_count(self, run: RetentionRun) -> int:
        return len(run.partitions_dropped)

    @admin.display(boolean=True, description="error")
    def has_error(self, run: RetentionRun) -> bool:
        return bool(run.error)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        policy = effective_policy()
        interval = settings.CELERY_BEAT_SCHEDULE["mailcore-retention"]["schedule"]
        rows = [
            (kind.label, policy.days(kind), setting)
            for kind, setting in (
                (RetentionRun.Kind.TRASH, "MAILROOM_TRASH_RETENTION_DAYS"),
                (RetentionRun.Kind.SPAM, "MAILROOM_SPAM_RETENTION_DAYS"),
                (RetentionRun.Kind.EVENTS, "MAILROOM_EVENT_RETENTION_DAYS"),
                (RetentionRun.Kind.WEBHOOK_LOGS, "MAILROOM_WEBHOOK_LOG_RETENTION_DAYS"),
                (RetentionRun.Kind.OUTBOUND, "MAILROOM_OUTBOUND_RETENTION_DAYS"),
            )
        ]
        context = {
            "retention_policy": rows,
            "retention_batch_size": policy.batch_size,
            "retention_max_seconds": policy.max_seconds,
            "retention_interval_seconds": int(interval),
            **(extra_context or {}),
        }
        return super().changelist_view(request, context)
