"""Native API ``/api/v1/``: sending, outbound messages, domains, suppressions, events, stats."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from analytics.services.domain_tracking import set_domain_tracking
from api import serializers as s
from api.compose import Attachment, Draft, split_addresses
from api.errors import ApiError
from api.services import events as event_service
from api.services.domains import describe_domain
from api.services.sending import SendError, SendOptions, send_draft, send_raw
from api.services.stats import RESOLUTIONS, event_counts
from api.views.base import ApiView, int_param
from mailcore import access
from mailcore.models import Domain, OutboundMessage, Suppression
from mailcore.services.outbound.suppression import remove_suppression, suppress_address

Q_CURSOR = OpenApiParameter("cursor", str, description="Opaque cursor of the next page.")
Q_LIMIT = OpenApiParameter("limit", int)


def _options(data: dict[str, Any], idempotency_key: str) -> SendOptions:
    return SendOptions(
        tags=data["tags"],
        metadata=data["metadata"],
        send_at=data["send_at"],
        track_opens=data["track_opens"],
        track_clicks=data["track_clicks"],
        idempotency_key=idempotency_key,
    )


def _send_error(exc: SendError) -> ApiError:
    return ApiError(str(exc), code=exc.code, fields={exc.field or "non_field_errors": [str(exc)]})


def _sent(message: OutboundMessage | None) -> Response:
    if message is None:
        return Response({"id": 0, "message_id": "", "status": "test_mode"}, status=202)
    return Response(
        {"id": message.id, "message_id": message.message_id, "status": "queued"}, status=202
    )


def _message_out(message: OutboundMessage, deliveries: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": message.id,
        "message_id": message.message_id,
        "from": message.mail_from,
        "subject": message.subject,
        "size": message.size,
        "tags": message.tags,
        "metadata": message.metadata,
        "send_at": message.send_at.isoformat() if message.send_at else None,
        "created_at": message.created_at.isoformat(),
    }
    if deliveries:
        out["deliveries"] = [
            {
                "recipient": d.recipient,
                "status": d.status,
                "attempts": d.attempt_count,
                "reply_code": d.reply_code,
                "enhanced_status": d.enhanced_status,
                "reply": d.reply,
                "next_attempt_at": d.next_attempt_at.isoformat(),
                "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
            }
            for d in message.deliveries.order_by("id")
        ]
    return out


class MessagesView(ApiView):
    required_scope = "send"
    is_send_endpoint = True

    @extend_schema(request=s.SendIn, responses={202: s.SendOut}, operation_id="send_message")
    def post(self, request: Request) -> Response:
        return self.run_idempotent(request, lambda: self.send(request))

    def send(self, request: Request) -> Response:
        serializer = s.SendIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        draft = Draft(
            sender=data["from"],
            to=split_addresses(data["to"]),
            cc=split_addresses(data["cc"]),
            bcc=split_addresses(data["bcc"]),
            subject=data["subject"],
            text=data["text"],
            html=data["html"],
            headers=dict(data["headers"]),
            attachments=[Attachment(**a) for a in data["attachments"]],
        )
        try:
            options = _options(data, self.outbound_idempotency_key)
            return _sent(send_draft(self.api_key, draft, options))
        except SendError as exc:
            raise _send_error(exc) from exc

    @extend_schema(parameters=[Q_CURSOR, Q_LIMIT], responses={200: dict})
    def get(self, request: Request) -> Response:
        limit = int_param(request.query_params.get("limit"), "limit", 50, low=1, high=200)
        messages = OutboundMessage.objects.filter(organization_id=self.organization_id)
        cursor = request.query_params.get("cursor", "")
        if cursor:
            if not cursor.isdigit() or len(cursor) > 18:
                raise ApiError("Invalid cursor.", fields={"cursor": ["Invalid cursor."]})
            messages = messages.filter(id__lt=int(cursor))
        page = list(messages.order_by("-id")[: limit + 1])
        next_cursor = str(page[limit - 1].id) if len(page) > limit else ""
        return Response({"items": [_message_out(m) for m in page[:limit]], "next": next_cursor})


class RawMessageView(ApiView):
    required_scope = "send"
    is_send_endpoint = True

    @extend_schema(request=s.SendRawIn, responses={202: s.SendOut}, operation_id="send_raw")
    def post(self, request: Request) -> Response:
        return self.run_idempotent(request, lambda: self.send(request))

    def send(self, request: Request) -> Response:
        serializer = s.SendRawIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        sender = data["from"] or header_address(data["mime"], "from")
        try:
            message = send_raw(
                self.api_key,
                sender=sender,
                recipients=[a for a in split_addresses(data["to"])],
                raw=data["mime"],
                options=_options(data, self.outbound_idempotency_key),
            )
        except SendError as exc:
            raise _send_error(exc) from exc
        return _sent(message)


def header_address(raw: bytes, name: str) -> str:
    from email.parser import BytesHeaderParser
    from email.utils import parseaddr

    headers = BytesHeaderParser().parsebytes(raw[:65536])
    return parseaddr(str(headers.get(name, "")))[1]


class MessageDetailView(ApiView):
    required_scope = "send"

    @extend_schema(responses={200: dict})
    def get(self, request: Request, message_id: int) -> Response:
        message = access.get_outbound_message_for_organization(self.organization_id, message_id)
        return Response(_message_out(message, deliveries=True))


class DomainsView(ApiView):
    required_scope = "domains"

    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> Response:
        domains = (
            Domain.objects.filter(organization_id=self.organization_id)
            .select_related("tracking")
            .order_by("name")
        )
        return Response({"items": [describe_domain(d) for d in domains]})


class DomainDetailView(ApiView):
    required_scope = "domains"

    @extend_schema(responses={200: dict})
    def get(self, request: Request, name: str) -> Response:
        domain = access.get_domain_for_organization(self.organization_id, name)
        return Response(describe_domain(domain))

    @extend_schema(request=s.DomainUpdateIn, responses={200: dict})
    def patch(self, request: Request, name: str) -> Response:
        domain = access.get_domain_for_organization(self.organization_id, name)
        serializer = s.DomainUpdateIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        set_domain_tracking(domain, serializer.validated_data["tracking"])
        return Response(describe_domain(domain))


def _suppression_out(item: Suppression) -> dict[str, Any]:
    return {
        "domain": item.domain.name,
        "address": item.address,
        "reason": item.reason,
        "source": item.source,
        "detail": item.detail,
        "created_at": item.created_at.isoformat(),
    }


class SuppressionsView(ApiView):
    required_scope = "suppressions"

    @extend_schema(
        parameters=[
            OpenApiParameter("domain", str),
            OpenApiParameter("reason", str),
            Q_CURSOR,
            Q_LIMIT,
        ],
        responses={200: dict},
    )
    def get(self, request: Request) -> Response:
        limit = int_param(request.query_params.get("limit"), "limit", 100, low=1, high=1000)
        items = Suppression.objects.filter(organization_id=self.organization_id).select_related(
            "domain"
        )
        if request.query_params.get("domain"):
            domain = access.get_domain_for_organization(
                self.organization_id, request.query_params["domain"]
            )
            items = items.filter(domain=domain)
        if request.query_params.get("reason"):
            items = items.filter(reason=request.query_params["reason"])
        cursor = request.query_params.get("cursor", "")
        if cursor:
            if not cursor.isdigit() or len(cursor) > 18:
                raise ApiError("Invalid cursor.", fields={"cursor": ["Invalid cursor."]})
            items = items.filter(id__gt=int(cursor))
        page = list(items.order_by("id")[: limit + 1])
        next_cursor = str(page[limit - 1].id) if len(page) > limit else ""
        return Response({"items": [_suppression_out(i) for i in page[:limit]], "next": next_cursor})

    @extend_schema(request=s.SuppressionIn, responses={201: dict, 200: dict})
    def post(self, request: Request) -> Response:
        serializer = s.SuppressionIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        domain = access.get_domain_for_organization(self.organization_id, data["domain"])
        is_new = suppress_address(domain, data["address"], reason=data["reason"], source="api")
        item = Suppression.objects.select_related("domain").get(
            domain=domain, address=data["address"].strip().lower()
        )
        return Response(_suppression_out(item), status=201 if is_new else 200)


class SuppressionDetailView(ApiView):
    required_scope = "suppressions"

    @extend_schema(responses={204: None})
    def delete(self, request: Request, domain: str, address: str) -> Response:
        found = access.get_domain_for_organization(self.organization_id, domain)
        if not remove_suppression(found, address):
            raise ApiError("No such suppression.", status_code=404)
        return Response(status=status.HTTP_204_NO_CONTENT)


def parse_time(value: str | None, name: str) -> Any:
    if not value:
        return None
    moment = parse_datetime(value)
    if moment is None:
        message = "Enter an ISO 8601 date-time."
        raise ApiError(message, fields={name: [message]})
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    return moment


class EventsView(ApiView):
    required_scope = "events"

    @extend_schema(
        parameters=[
            OpenApiParameter("begin", str),
            OpenApiParameter("end", str),
            OpenApiParameter("type", str, many=True),
            OpenApiParameter("recipient", str),
            OpenApiParameter("tag", str),
            OpenApiParameter("message", str),
            OpenApiParameter("domain", str),
            OpenApiParameter("ascending", bool),
            Q_CURSOR,
            Q_LIMIT,
        ],
        responses={200: dict},
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        query = event_service.EventFilter(
            organization_id=self.organization_id,
            begin=parse_time(params.get("begin"), "begin"),
            end=parse_time(params.get("end"), "end"),
            types=params.getlist("type"),
            recipient=params.get("recipient", ""),
            tag=params.get("tag", ""),
            message_id=params.get("message", ""),
            domain=params.get("domain", ""),
            is_ascending=params.get("ascending", "").lower() in ("1", "true", "yes"),
        )
        limit = int_param(params.get("limit"), "limit", 100, low=1, high=300)
        try:
            page, next_cursor = event_service.list_events(
                query, cursor=params.get("cursor", ""), limit=limit
            )
        except event_service.EventQueryError as exc:
            raise ApiError(str(exc), fields={exc.field: [str(exc)]}) from exc
        return Response(
            {"items": [event_service.native_event(e) for e in page], "next": next_cursor}
        )


class StatsView(ApiView):
    required_scope = "events"

    @extend_schema(
        parameters=[
            OpenApiParameter("start", str),
            OpenApiParameter("end", str),
            OpenApiParameter("resolution", str, enum=list(RESOLUTIONS)),
            OpenApiParameter("type", str, many=True),
            OpenApiParameter("domain", str),
            OpenApiParameter("tag", str),
        ],
        responses={200: dict},
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        resolution = params.get("resolution", "day")
        if resolution not in RESOLUTIONS:
            message = f"Choose one of {', '.join(RESOLUTIONS)}."
            raise ApiError(message, fields={"resolution": [message]})
        end = parse_time(params.get("end"), "end") or timezone.now()
        start = parse_time(params.get("start"), "start") or end - timedelta(days=7)
        if start >= end:
            raise ApiError("start must be before end.", fields={"start": ["Must be before end."]})
        types = params.getlist("type")
        unknown = sorted(set(types) - set(event_service.NATIVE_TYPES))
        if unknown:
            message = f"Unknown event type {unknown[0]!r}."
            raise ApiError(message, fields={"type": [message]})
        try:
            rows = event_counts(
                organization_id=self.organization_id,
                start=start,
                end=end,
                resolution=resolution,
                event_types=types or None,
                domain=params.get("domain") or None,
                tag=params.get("tag") or None,
            )
        except ValueError as exc:
            raise ApiError(str(exc), fields={"resolution": [str(exc)]}) from exc
        buckets: dict[str, dict[str, int]] = {}
        for bucket, event_type, count in rows:
            buckets.setdefault(bucket.isoformat(), {})[event_type] = count
        return Response(
            {
                "start": start.isoformat(),
                "end": end.isoformat(),
                "resolution": resolution,
                "stats": [{"time": t, "counts": c} for t, c in buckets.items()],
            }
        )
