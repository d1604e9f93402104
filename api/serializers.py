"""Input validation and output shapes of the native API."""

from __future__ import annotations

import base64
import binascii

from rest_framework import serializers

from api.models import WebhookDelivery, WebhookEndpoint


class AddressList(serializers.ListField):
    """A list of addresses, or one comma-separated string."""

    child = serializers.CharField(max_length=998)

    def to_internal_value(self, data):  # type: ignore[no-untyped-def]
        if isinstance(data, str):
            data = [data]
        return super().to_internal_value(data)


class Base64Field(serializers.CharField):
    def to_internal_value(self, data):  # type: ignore[no-untyped-def]
        text = super().to_internal_value(data)
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise serializers.ValidationError("Enter valid base64.") from None


class AttachmentIn(serializers.Serializer):
    filename = serializers.CharField(max_length=255)
    content_type = serializers.CharField(max_length=127, default="application/octet-stream")
    content = Base64Field(help_text="Base64 of the file.", trim_whitespace=True)
    content_id = serializers.CharField(
        max_length=255, required=False, default="", help_text="Set for an inline part."
    )


class SendOptionsIn(serializers.Serializer):
    tags = serializers.ListField(
        child=serializers.CharField(max_length=128), required=False, default=list, max_length=10
    )
    metadata = serializers.DictField(required=False, default=dict)
    send_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    track_opens = serializers.BooleanField(required=False, allow_null=True, default=None)
    track_clicks = serializers.BooleanField(required=False, allow_null=True, default=None)


class SendIn(SendOptionsIn):
    sender = serializers.CharField(max_length=998)
    to = AddressList(required=False, default=list)
    cc = AddressList(required=False, default=list)
    bcc = AddressList(required=False, default=list)
    subject = serializers.CharField(max_length=998, required=False, default="", allow_blank=True)
    text = serializers.CharField(
        required=False, default="", allow_blank=True, trim_whitespace=False
    )
    html = serializers.CharField(
        required=False, default="", allow_blank=True, trim_whitespace=False
    )
    headers = serializers.DictField(
        child=serializers.CharField(max_length=998), required=False, default=dict
    )
    attachments = AttachmentIn(many=True, required=False, default=list)

    def get_fields(self):  # type: ignore[no-untyped-def]
        fields = super().get_fields()
        fields["from"] = fields.pop("sender")
        return fields


class SendRawIn(SendOptionsIn):
    sender = serializers.CharField(max_length=254, required=False, default="")
    to = AddressList(min_length=1)
    mime = Base64Field(help_text="Base64 of the RFC 5322 message.", trim_whitespace=True)

    def get_fields(self):  # type: ignore[no-untyped-def]
        fields = super().get_fields()
        fields["from"] = fields.pop("sender")
        return fields


class SendOut(serializers.Serializer):
    id = serializers.IntegerField()
    message_id = serializers.CharField()
    status = serializers.CharField()


class TrackingIn(serializers.Serializer):
    open = serializers.BooleanField(required=False)
    click = serializers.BooleanField(required=False)
    unsubscribe = serializers.BooleanField(required=False)

    def to_internal_value(self, data):  # type: ignore[no-untyped-def]
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, dict) else []
        if unknown:
            raise serializers.ValidationError(
                {
                    name: ["Unknown tracking kind: use open, click or unsubscribe."]
                    for name in unknown
                }
            )
        return super().to_internal_value(data)

    def validate(self, attrs):  # type: ignore[no-untyped-def]
        if not attrs:
            raise serializers.ValidationError("Give at least one of open, click, unsubscribe.")
        return attrs


class DomainUpdateIn(serializers.Serializer):
    tracking = TrackingIn()


class SuppressionIn(serializers.Serializer):
    domain = serializers.CharField(max_length=253)
    address = serializers.EmailField(max_length=254)
    reason = serializers.ChoiceField(
        choices=["bounce", "complaint", "unsubscribe", "manual"], default="manual"
    )


class WebhookIn(serializers.Serializer):
    url = serializers.URLField(max_length=1000)
    format = serializers.ChoiceField(choices=WebhookEndpoint.Format.values, default="native")
    event_types = serializers.ListField(
        child=serializers.CharField(max_length=32), required=False, default=list
    )


class WebhookOut(serializers.ModelSerializer):
    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "format",
            "event_types",
            "is_active",
            "disabled_reason",
            "last_event_id",
            "consecutive_failures",
            "created_at",
        ]


class WebhookCreatedOut(WebhookOut):
    class Meta(WebhookOut.Meta):
        fields = [*WebhookOut.Meta.fields, "signing_key"]


class WebhookDeliveryOut(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event_id",
            "event_type",
            "attempt",
            "status_code",
            "is_success",
            "error",
            "duration_ms",
            "is_test",
            "created_at",
        ]


class FlagsIn(serializers.Serializer):
    is_seen = serializers.BooleanField(required=False)
    is_flagged = serializers.BooleanField(required=False)
    folder_id = serializers.IntegerField(required=False, min_value=1, max_value=2**62)
