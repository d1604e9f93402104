"""Admin for outbound mail: the queue (per domain, per message, attempt log, retry now and
cancel), suppressions (search, add, remove, CSV import/export) and DKIM keys (generate, rotate,
the DNS records to publish). Actions call the outbound services; nothing here changes a status
by itself."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from mailcore.models import (
    Delivery,
    DeliveryAttempt,
    DkimKey,
    Domain,
    OutboundMessage,
    Suppression,
)
from mailcore.services.outbound import dkim
from mailcore.services.outbound.dispatch import cancel_deliveries, retry_now
from mailcore.services.outbound.suppression import (
    export_suppressions_csv,
    import_suppressions_csv,
)

QUEUED_STATUSES = ("queued", "sending", "deferred")


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AttemptInline(ReadOnlyInline):
    model = DeliveryAttempt
    fields = ["finished_at", "outcome", "reply_code", "enhanced_status", "reply", "remote_host",
              "is_tls"]  # fmt: skip
    readonly_fields = cast("list[str]", fields)  # the stub types fields as nested groups
    ordering = ["finished_at"]
    show_change_link = False


class DeliveryInline(ReadOnlyInline):
    model = Delivery
    fields = ["recipient", "status", "attempt_count", "next_attempt_at", "reply"]
    readonly_fields = cast("list[str]", fields)  # the stub types fields as nested groups


@admin.action(description="Retry now")
def retry_selected(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    ids = _delivery_ids(queryset)
    changed = retry_now(ids)
    modeladmin.message_user(request, f"{changed} deliveries will be retried now.")


@admin.action(description="Cancel unsent deliveries")
def cancel_selected(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    changed = cancel_deliveries(_delivery_ids(queryset))
    modeladmin.message_user(request, f"{changed} deliveries cancelled.")


def _delivery_ids(queryset: QuerySet) -> list[int]:
    if queryset.model is OutboundMessage:
        return list(Delivery.objects.filter(message__in=queryset).values_list("id", flat=True))
    return list(queryset.values_list("id", flat=True))


@admin.register(OutboundMessage)
class OutboundMessageAdmin(admin.ModelAdmin):
    list_display = ["id", "created_at", "domain", "mail_from", "subject", "source", "recipients"]
    list_filter = ["source", "domain"]
    search_fields = ["=message_id", "mail_from", "subject", "=deliveries__recipient"]
    list_select_related = ["domain"]
    exclude = ["blob"]
    inlines = [DeliveryInline]
    actions = [retry_selected, cancel_selected]
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[OutboundMessage]:
        return super().get_queryset(request).annotate(recipient_count=Count("deliveries"))

    @admin.display(description="recipients")
    def recipients(self, obj: OutboundMessage) -> int:
        return getattr(obj, "recipient_count", 0)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["recipient", "status", "recipient_domain", "attempt_count", "next_attempt_at",
                    "reply_code", "short_reply", "message_link"]  # fmt: skip
    list_filter = ["status", "is_local", "recipient_domain"]
    search_fields = ["=recipient", "recipient_domain", "=message__message_id"]
    readonly_fields = [field.name for field in Delivery._meta.fields]
    inlines = [AttemptInline]
    actions = [retry_selected, cancel_selected]
    change_list_template = "admin/mailcore/delivery/change_list.html"
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="reply")
    def short_reply(self, obj: Delivery) -> str:
        return obj.reply[:80]

    @admin.display(description="message")
    def message_link(self, obj: Delivery) -> str:
        url = reverse("admin:mailcore_outboundmessage_change", args=[obj.message_id])
        return format_html('<a href="{}">{}</a>', url, obj.message_id)

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(self.queue_view)
        return [path("queue/", view, name="mailcore_delivery_queue"), *super().get_urls()]

    def queue_view(self, request: HttpRequest) -> HttpResponse:
        """Deliveries waiting or in progress, per destination domain and status."""
        rows: dict[str, dict[str, int]] = {}
        counts = (
            Delivery.objects.filter(status__in=QUEUED_STATUSES)
            .values_list("recipient_domain", "status")
            .annotate(count=Count("id"))
        )
        for domain, status, count in counts:
            rows.setdefault(domain, dict.fromkeys(QUEUED_STATUSES, 0))[status] = count
        context = {
            **self.admin_site.each_context(request),
            "title": "Outbound queue by destination domain",
            "statuses": QUEUED_STATUSES,
            "rows": sorted(rows.items(), key=lambda item: -sum(item[1].values())),
            "changelist": reverse("admin:mailcore_delivery_changelist"),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/mailcore/delivery/queue.html", context)


class SuppressionForm(forms.ModelForm):
    class Meta:
        model = Suppression
        fields = ["domain", "address", "reason", "detail"]

    def clean_address(self) -> str:
        address = self.cleaned_data["address"].strip().lower()
        if "@" not in address:
            raise forms.ValidationError("Enter an email address.")
        return address


class ImportForm(forms.Form):
    domain = forms.ModelChoiceField(queryset=Domain.objects.order_by("name"))
    file = forms.FileField(help_text="CSV with an address column (and optionally reason).")


@admin.action(description="Export selected as CSV")
def export_selected(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
) -> HttpResponse:
    return _csv_response(export_suppressions_csv(queryset=queryset))


def _csv_response(text: str) -> HttpResponse:
    response = HttpResponse(text, content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="suppressions.csv"'
    return response


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    form = SuppressionForm
    list_display = ["address", "domain", "reason", "source", "created_at"]
    list_filter = ["reason", "source", "domain"]
    search_fields = ["address"]
    list_select_related = ["domain"]
    actions = [export_selected]
    change_list_template = "admin/mailcore/suppression/change_list.html"

    def save_model(self, request: HttpRequest, obj: Suppression, form: Any, change: bool) -> None:
        obj.organization_id = obj.domain.organization_id
        obj.source = obj.source or "admin"
        super().save_model(request, obj, form, change)

    def get_urls(self) -> list[Any]:
        return [
            path("import/", self.admin_site.admin_view(self.import_view),
                 name="mailcore_suppression_import"),
            path("export/", self.admin_site.admin_view(self.export_view),
                 name="mailcore_suppression_export"),
            *super().get_urls(),
        ]  # fmt: skip

    def export_view(self, request: HttpRequest) -> HttpResponse:
        queryset = Suppression.objects.all()
        if request.GET.get("domain"):
            queryset = queryset.filter(domain__name=request.GET["domain"])
        return _csv_response(export_suppressions_csv(queryset=queryset))

    def import_view(self, request: HttpRequest) -> HttpResponse:
        form = ImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            text = form.cleaned_data["file"].read().decode("utf-8-sig", "replace")
            added = import_suppressions_csv(form.cleaned_data["domain"], text)
            messages.success(request, f"{added} addresses added.")
            return HttpResponseRedirect(reverse("admin:mailcore_suppression_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Import suppressions",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/mailcore/suppression/import.html", context)


class DkimKeyForm(forms.ModelForm):
    class Meta:
        model = DkimKey
        fields = ["domain", "selector"]

    selector = forms.CharField(required=False, help_text="Leave empty for mrYYYYMM.")


@admin.action(description="Make the selected key the signing key")
def activate_selected(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
) -> None:
    for key in queryset:
        dkim.activate_key(key)
    modeladmin.message_user(request, f"{len(queryset)} keys activated.")


@admin.register(DkimKey)
class DkimKeyAdmin(admin.ModelAdmin):
    """Adding a key generates a 2048-bit pair and makes it the signing key (rotation)."""

    list_display = ["domain", "selector", "is_active", "created_at", "retired_at"]
    list_filter = ["is_active"]
    search_fields = ["domain__name", "selector"]
    readonly_fields = ["dns_name", "dns_value", "dns_zone_line", "is_active", "created_at",
                       "retired_at"]  # fmt: skip
    actions = [activate_selected]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm[Any]]:
        if obj is None:
            kwargs["form"] = DkimKeyForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(
        self, request: HttpRequest, obj: Any = None
    ) -> list[str | list[str] | tuple[str, ...]]:
        if obj is None:
            return ["domain", "selector"]
        return ["domain", "selector", *self.readonly_fields]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None

    def save_model(self, request: HttpRequest, obj: DkimKey, form: Any, change: bool) -> None:
        created = dkim.create_key(form.cleaned_data["domain"], form.cleaned_data["selector"])
        obj.pk = created.pk
        messages.info(request, f"Publish: {dkim.dns_zone_line(created)}")

    @admin.display(description="DNS name")
    def dns_name(self, obj: DkimKey) -> str:
        return dkim.dns_record_name(obj)

    @admin.display(description="TXT value")
    def dns_value(self, obj: DkimKey) -> str:
        return dkim.dns_record_value(obj)

    @admin.display(description="Zone file line")
    def dns_zone_line(self, obj: DkimKey) -> str:
        return dkim.dns_zone_line(obj)
