from __future__ import annotations

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from api.views import domains, hooks, mailboxes, mailgun, native, tracking

app_name = "api"


def _suppression_routes(kind: str, plural: str) -> list:  # type: ignore[type-arg]
    return [
        path(
            f"v3/<str:domain>/{plural}",
            mailgun.SuppressionListView.as_view(kind=kind),
            name=f"mg-{plural}",
        ),
        path(
            f"v3/<str:domain>/{plural}/<str:address>",
            mailgun.SuppressionItemView.as_view(kind=kind),
            name=f"mg-{plural}-item",
        ),
    ]


urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
    path("api/v1/messages/", native.MessagesView.as_view(), name="messages"),
    path("api/v1/messages/raw/", native.RawMessageView.as_view(), name="messages-raw"),
    path("api/v1/messages/<int:message_id>/", native.MessageDetailView.as_view(), name="message"),
    path("api/v1/domains/", native.DomainsView.as_view(), name="domains"),
    path("api/v1/domains/<str:name>/", native.DomainDetailView.as_view(), name="domain"),
    path(
        "api/v1/domains/<str:name>/verify/",
        domains.DomainVerifyView.as_view(),
        name="domain-verify",
    ),
    path("api/v1/suppressions/", native.SuppressionsView.as_view(), name="suppressions"),
    path(
        "api/v1/suppressions/<str:domain>/<str:address>/",
        native.SuppressionDetailView.as_view(),
        name="suppression",
    ),
    path("api/v1/events/", native.EventsView.as_view(), name="events"),
    path("api/v1/stats/", native.StatsView.as_view(), name="stats"),
    path("api/v1/webhooks/", hooks.WebhooksView.as_view(), name="webhooks"),
    path("api/v1/webhooks/<int:webhook_id>/", hooks.WebhookDetailView.as_view(), name="webhook"),
    path(
        "api/v1/webhooks/<int:webhook_id>/test/",
        hooks.WebhookTestView.as_view(),
        name="webhook-test",
    ),
    path(
        "api/v1/webhooks/<int:webhook_id>/deliveries/",
        hooks.WebhookDeliveriesView.as_view(),
        name="webhook-deliveries",
    ),
    path("api/v1/mailboxes/", mailboxes.MailboxesView.as_view(), name="mailboxes"),
    path(
        "api/v1/mailboxes/<int:mailbox_id>/folders/",
        mailboxes.FoldersView.as_view(),
        name="folders",
    ),
    path(
        "api/v1/mailboxes/<int:mailbox_id>/messages/",
        mailboxes.MailboxMessagesView.as_view(),
        name="mailbox-messages",
    ),
    path(
        "api/v1/mailbox-messages/<int:message_id>/",
        mailboxes.MailboxMessageView.as_view(),
        name="mailbox-message",
    ),
    path(
        "api/v1/mailbox-messages/<int:message_id>/raw/",
        mailboxes.MailboxMessageRawView.as_view(),
        name="mailbox-message-raw",
    ),
    path("v3/domains/<str:name>", domains.MailgunDomainView.as_view(), name="mg-domain"),
    path(
        "v3/domains/<str:name>/verify",
        domains.MailgunDomainVerifyView.as_view(),
        name="mg-domain-verify",
    ),
    path("v3/<str:domain>/messages", mailgun.MessagesView.as_view(), name="mg-messages"),
    path("v3/<str:domain>/messages.mime", mailgun.MimeMessagesView.as_view(), name="mg-mime"),
    path("v3/<str:domain>/events", mailgun.EventsView.as_view(), name="mg-events"),
    path("v3/<str:domain>/stats/total", mailgun.StatsTotalView.as_view(), name="mg-stats"),
    path(
        "v3/domains/<str:domain>/tracking",
        tracking.DomainTrackingView.as_view(),
        name="mg-tracking",
    ),
    path(
        "v3/domains/<str:domain>/tracking/<str:kind>",
        tracking.DomainTrackingKindView.as_view(),
        name="mg-tracking-kind",
    ),
    *_suppression_routes("bounce", "bounces"),
    *_suppression_routes("unsubscribe", "unsubscribes"),
    *_suppression_routes("complaint", "complaints"),
]
