from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from api.models import ApiKey, WebhookDelivery, WebhookEndpoint
from api.services.keys import create_api_key, revoke_api_key


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "name",
        "organization",
        "domain",
        "scopes",
        "is_active",
        "created_at",
        "revoked_at",
    ]
    list_filter = ["is_active"]
    fields = ["organization", "domain", "name", "scopes", "rate_per_second"]
    readonly_fields = ["prefix", "created_at", "revoked_at"]
    actions = ["revoke"]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: object, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        new = create_api_key(
            organization_id=obj.organization_id,
            scopes=obj.scopes,
            domain=obj.domain,
            name=obj.name,
            rate_per_second=obj.rate_per_second,
        )
        obj.pk, obj.prefix, obj.key_hash = new.api_key.pk, new.api_key.prefix, new.api_key.key_hash
        self.message_user(
            request,
            f"API key created. Copy it now, it is not shown again: {new.secret}",
            messages.WARNING,
        )

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        count = sum(revoke_api_key(key) for key in queryset)
        self.message_user(request, f"{count} key(s) revoked.")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = [
        "url",
        "organization",
        "format",
        "is_active",
        "disabled_reason",
        "consecutive_failures",
        "last_event_id",
    ]
    list_filter = ["is_active", "format"]
    exclude = ["signing_key"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["endpoint", "event_id", "event_type", "status_code", "is_success", "created_at"]
    list_filter = ["is_success"]
