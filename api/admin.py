from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from api.models import ApiKey, DomainDnsCheck, WebhookDelivery, WebhookEndpoint
from api.services.dns_check import verify_domain_dns
from api.services.keys import create_api_key, revoke_api_key
from mailcore.admin import DomainAdmin
from mailcore.models import Domain


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


@admin.register(DomainDnsCheck)
class DomainDnsCheckAdmin(admin.ModelAdmin):
    """What DNS held at the last check; the action looks the records up again now."""

    list_display = ["domain", "is_verified", "checked_at"]
    list_filter = ["is_verified"]
    search_fields = ["domain__name"]
    readonly_fields = ["organization", "domain", "results", "is_verified", "checked_at"]
    actions = ["check_again"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Check DNS again now")
    def check_again(self, request: HttpRequest, queryset: QuerySet[DomainDnsCheck]) -> None:
        _check_domains(self, request, [check.domain for check in queryset.select_related("domain")])


class DomainWithDnsAdmin(DomainAdmin):
    """mailcore's domain admin plus the DNS check (mailcore does not depend on the API)."""

    actions = ["check_dns"]

    @admin.action(description="Check DNS records now")
    def check_dns(self, request: HttpRequest, queryset: QuerySet[Domain]) -> None:
        _check_domains(self, request, list(queryset))


def _check_domains(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    domains: list[Domain],  # type: ignore[type-arg]
) -> None:
    checks = [verify_domain_dns(domain) for domain in domains]
    verified = sum(check.is_verified for check in checks)
    model_admin.message_user(request, f"{len(checks)} domain(s) checked, {verified} verified.")


admin.site.unregister(Domain)
admin.site.register(Domain, DomainWithDnsAdmin)
