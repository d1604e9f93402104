"""Mailgun-compatible API ``/v3/{domain}/…`` (what django-anymail and Mailgun SDKs speak)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from api.compose import Attachment, Draft, split_addresses
from api.errors import ApiError
from api.services import events as event_service
from api.services.sending import SendError, SendOptions, send_batch, send_draft, send_raw
from api.services.stats import event_counts
from api.views.base import ApiView, int_param
from api.views.native import header_address
from mailcore import access
from mailcore.models import Domain, Suppression
from mailcore.services.outbound.suppression import remove_suppression, suppress_address

QUEUED = "Queued. Thank you."
_YES = {"yes", "true", "1", "htmlonly"}
_NO = {"no", "false", "0"}


def _bad(message: str) -> ApiError:
    return ApiError(message, status_code=400)


def _tristate(value: str | None, name: str) -> bool | None:
    if value is None or value == "":
        return None
    if value.lower() in _YES:
        return True
    if value.lower() in _NO:
        return False
    raise _bad(f"'{name}' parameter is not valid")


class MailgunView(ApiView):
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def domain(self, name: str) -> Domain:
        domain = access.get_domain_for_organization(self.organization_id, name)
        if self.api_key.domain_id not in (None, domain.id):
            raise ApiError("Domain not found", status_code=404)
        return domain


class MessagesView(MailgunView):
    required_scope = "send"
    is_send_endpoint = True

    @extend_schema(request={"multipart/form-data": dict}, responses={200: dict})
    def post(self, request: Request, domain: str) -> Response:
        return self.run_idempotent(request, lambda: self.send(request, domain))

    def send(self, request: Request, domain: str) -> Response:
        found = self.domain(domain)
        data = request.data
        get_list = data.getlist if hasattr(data, "getlist") else lambda k: _as_list(data.get(k))
        sender = _first(get_list("from"))
        if not sender:
            raise _bad("from parameter is missing")
        to = split_addresses([str(v) for v in get_list("to")])
        if not to:
            raise _bad("to parameter is missing")
        attachments = [
            Attachment(
                f.name or "attachment", f.read(), f.content_type or "application/octet-stream"
            )
            for f in request.FILES.getlist("attachment")
        ] + [
            Attachment(
                f.name or "inline",
                f.read(),
                f.content_type or "application/octet-stream",
                content_id=f.name or "inline",
            )
            for f in request.FILES.getlist("inline")
        ]
        headers: dict[str, str] = {}
        metadata: dict[str, Any] = {}
        for key in data:
            if key.startswith("h:"):
                headers[key[2:]] = str(_first(get_list(key)))
            elif key.startswith("v:"):
                value = _first(get_list(key))
                try:
                    metadata[key[2:]] = json.loads(value) if value[:1] in "{[" else value
                except ValueError:
                    metadata[key[2:]] = value
        draft = Draft(
            sender=sender,
            to=to,
            cc=split_addresses([str(v) for v in get_list("cc")]),
            bcc=split_addresses([str(v) for v in get_list("bcc")]),
            subject=_first(get_list("subject")),
            text=_first(get_list("text")),
            html=_first(get_list("html")),
            headers=headers,
            attachments=attachments,
        )
        options = self.options(get_list, metadata)
        variables_text = _first(get_list("recipient-variables"))
        try:
            if variables_text:
                try:
                    variables = json.loads(variables_text)
                except ValueError:
                    raise _bad("recipient-variables parameter is not a valid JSON") from None
                if not isinstance(variables, dict):
                    raise _bad("recipient-variables parameter is not a valid JSON")
                messages = send_batch(self.api_key, draft, options, variables, domain=found.name)
                message = messages[0] if messages else None
            else:
                message = send_draft(self.api_key, draft, options, domain=found.name)
        except SendError as exc:
            raise _bad(str(exc)) from exc
        return _queued(message, found)

    def options(self, get_list: Any, metadata: dict[str, Any]) -> SendOptions:
        delivery_time = _first(get_list("o:deliverytime"))
        send_at = None
        if delivery_time:
            try:
                send_at = parsedate_to_datetime(delivery_time)
            except (TypeError, ValueError, IndexError):
                raise _bad("o:deliverytime parameter is not valid") from None
            if send_at is None or timezone.is_naive(send_at):
                raise _bad("o:deliverytime parameter is not valid")
        tags = [str(t) for t in get_list("o:tag")]
        if len(tags) > 10:
            raise _bad("Too many tags (max 10)")
        # o:tracking sets both; o:tracking-opens/-clicks win over it; none of them: the
        # domain's tracking settings apply (None).
        both = _tristate(_first(get_list("o:tracking")) or None, "o:tracking")
        opens = _tristate(_first(get_list("o:tracking-opens")) or None, "o:tracking-opens")
        clicks = _tristate(_first(get_list("o:tracking-clicks")) or None, "o:tracking-clicks")
        return SendOptions(
            tags=tags,
            metadata=metadata,
            send_at=send_at,
            track_opens=both if opens is None else opens,
            track_clicks=both if clicks is None else clicks,
            idempotency_key=self.outbound_idempotency_key,
            is_test_mode=_tristate(_first(get_list("o:testmode")) or None, "o:testmode") or False,
        )


class MimeMessagesView(MessagesView):
    """Inherits ``post`` (the Idempotency-Key wrapper); only the send differs."""

    def send(self, request: Request, domain: str) -> Response:
        found = self.domain(domain)
        data = request.data
        get_list = data.getlist if hasattr(data, "getlist") else lambda k: _as_list(data.get(k))
        upload = request.FILES.get("message")
        raw = upload.read() if upload is not None else str(_first(get_list("message"))).encode()
        if not raw.strip():
            raise _bad("message parameter is missing")
        to = split_addresses([str(v) for v in get_list("to")])
        if not to:
            raise _bad("to parameter is missing")
        options = self.options(get_list, {})
        try:
            message = send_raw(
                self.api_key,
                sender=header_address(raw, "from"),
                recipients=to,
                raw=raw,
                options=options,
                domain=found.name,
            )
        except SendError as exc:
            raise _bad(str(exc)) from exc
        return _queued(message, found)


def _queued(message: Any, domain: Domain) -> Response:
    message_id = message.message_id if message is not None else f"test-mode@{domain.name}"
    return Response({"id": f"<{message_id}>", "message": QUEUED})


def _first(values: list[Any]) -> str:
    return str(values[0]) if values else ""


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _mailgun_time(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        if value.replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(value), tz=UTC)
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError, OSError):
        raise _bad(f"'{name}' parameter is not valid") from None
    if moment is None or timezone.is_naive(moment):
        raise _bad(f"'{name}' parameter is not valid")
    return moment


_MAILGUN_TO_NATIVE: dict[str, list[str]] = {}
for _native, (_name, _sev, _reason) in event_service.MAILGUN_EVENTS.items():
    _MAILGUN_TO_NATIVE.setdefault(_name, []).append(_native)


class EventsView(MailgunView):
    required_scope = "events"

    @extend_schema(
        parameters=[
            OpenApiParameter(n, str)
            for n in (
                "begin",
                "end",
                "ascending",
                "limit",
                "event",
                "recipient",
                "tags",
                "message-id",
                "page",
            )
        ],
        responses={200: dict},
    )
    def get(self, request: Request, domain: str) -> Response:
        found = self.domain(domain)
        params = request.query_params
        event = params.get("event", "")
        if event and event not in _MAILGUN_TO_NATIVE:
            raise _bad("'event' parameter is not valid")
        query = event_service.EventFilter(
            organization_id=self.organization_id,
            begin=_mailgun_time(params.get("begin"), "begin"),
            end=_mailgun_time(params.get("end"), "end"),
            types=_MAILGUN_TO_NATIVE.get(event, []),
            recipient=params.get("recipient", ""),
            tag=params.get("tags", ""),
            message_id=params.get("message-id", ""),
            domain=found.name,
            is_ascending=params.get("ascending", "").lower() == "yes",
        )
        limit = int_param(params.get("limit"), "limit", 100, low=1, high=300)
        try:
            page, next_cursor = event_service.list_events(
                query, cursor=params.get("page", ""), limit=limit
            )
        except event_service.EventQueryError as exc:
            raise _bad(
                f"'{'page' if exc.field == 'cursor' else exc.field}' parameter is not valid"
            ) from exc
        base = request.build_absolute_uri(request.path)
        extra = "".join(f"&{k}={v}" for k, v in params.items() if k != "page")
        return Response(
            {
                "items": event_service.mailgun_events(page),
                "paging": {
                    "next": f"{base}?page={next_cursor}{extra}" if next_cursor else "",
                    "first": f"{base}?{extra.lstrip('&')}",
                },
            }
        )


class StatsTotalView(MailgunView):
    required_scope = "events"

    @extend_schema(
        parameters=[
            OpenApiParameter("event", str, many=True),
            OpenApiParameter("start", str),
            OpenApiParameter("end", str),
            OpenApiParameter("resolution", str),
            OpenApiParameter("duration", str),
        ],
        responses={200: dict},
    )
    def get(self, request: Request, domain: str) -> Response:
        found = self.domain(domain)
        params = request.query_params
        wanted = params.getlist("event")
        if not wanted:
            raise _bad("Missing required parameter: event")
        if any(name not in _MAILGUN_TO_NATIVE for name in wanted):
            raise _bad("'event' parameter is not valid")
        resolution = params.get("resolution", "day")
        if resolution not in ("hour", "day", "month"):
            raise _bad("'resolution' parameter is not valid")
        end = _mailgun_time(params.get("end"), "end") or timezone.now()
        start = _mailgun_time(params.get("start"), "start") or end - _duration(params)
        if start >= end:
            raise _bad("'start' parameter is not valid")
        try:
            rows = event_counts(
                organization_id=self.organization_id,
                start=start,
                end=end,
                resolution=resolution,
                domain=found.name,
                event_types=[n for name in wanted for n in _MAILGUN_TO_NATIVE[name]],
            )
        except ValueError as exc:
            raise _bad("'resolution' parameter is not valid for this range") from exc
        buckets: dict[datetime, dict[str, int]] = {}
        for bucket, native, count in rows:
            buckets.setdefault(bucket, {})[native] = count
        stats = [
            _mailgun_stat(bucket, counts, wanted) for bucket, counts in sorted(buckets.items())
        ]
        return Response(
            {
                "start": format_datetime(start, usegmt=True),
                "end": format_datetime(end, usegmt=True),
                "resolution": resolution,
                "stats": stats,
            }
        )


def _duration(params: Any) -> timedelta:
    text = params.get("duration", "7d")
    units = {"h": 3600, "d": 86400, "m": 30 * 86400}
    if len(text) < 2 or not text[:-1].isdigit() or text[-1] not in units or len(text) > 6:
        raise _bad("'duration' parameter is not valid")
    return timedelta(seconds=int(text[:-1]) * units[text[-1]])


def _mailgun_stat(bucket: datetime, counts: dict[str, int], wanted: list[str]) -> dict[str, Any]:
    stat: dict[str, Any] = {"time": format_datetime(bucket.astimezone(UTC), usegmt=True)}
    if "accepted" in wanted:
        sent = counts.get("sent", 0)
        stat["accepted"] = {"incoming": 0, "outgoing": sent, "total": sent}
    if "delivered" in wanted:
        n = counts.get("delivered", 0)
        stat["delivered"] = {"smtp": n, "http": 0, "total": n}
    if "failed" in wanted:
        permanent = {
            "bounce": counts.get("bounced", 0) + counts.get("failed", 0),
            "suppress-bounce": counts.get("suppressed", 0),
        }
        temporary = counts.get("deferred", 0)
        stat["failed"] = {
            "permanent": {**permanent, "total": sum(permanent.values())},
            "temporary": {"espblock": temporary, "total": temporary},
        }
    for name in ("opened", "clicked", "unsubscribed", "complained"):
        if name in wanted:
            stat[name] = {"total": counts.get(name, 0)}
    return stat


class SuppressionListView(MailgunView):
    """``/v3/{domain}/bounces|unsubscribes|complaints`` (``kind`` comes from the URL)."""

    required_scope = "suppressions"
    kind = "bounce"

    @extend_schema(parameters=[OpenApiParameter("limit", int)], responses={200: dict})
    def get(self, request: Request, domain: str) -> Response:
        found = self.domain(domain)
        limit = int_param(request.query_params.get("limit"), "limit", 100, low=1, high=10000)
        items = Suppression.objects.filter(domain=found, reason=self.kind).order_by("id")[:limit]
        return Response({"items": [_suppression(i) for i in items], "paging": {}})

    @extend_schema(request={"multipart/form-data": dict}, responses={200: dict})
    def post(self, request: Request, domain: str) -> Response:
        found = self.domain(domain)
        address = str(request.data.get("address", "")).strip()
        if "@" not in address or len(address) > 254 or " " in address:
            raise _bad("'address' parameter is not a valid address")
        detail = str(request.data.get("error", "") or request.data.get("code", ""))[:2000]
        suppress_address(found, address, reason=self.kind, source="api")
        if detail:
            Suppression.objects.filter(domain=found, address=address.lower(), detail="").update(
                detail=detail
            )
        label = {"bounce": "bounce", "unsubscribe": "unsubscribe", "complaint": "complaint"}
        return Response(
            {
                "message": f"Address has been added to the {label[self.kind]}s table",
                "address": address.lower(),
            }
        )


class SuppressionItemView(MailgunView):
    required_scope = "suppressions"
    kind = "bounce"

    @extend_schema(responses={200: dict})
    def get(self, request: Request, domain: str, address: str) -> Response:
        found = self.domain(domain)
        item = Suppression.objects.filter(
            domain=found, reason=self.kind, address=address.lower()
        ).first()
        if item is None:
            raise ApiError("Address not found in suppressions table", status_code=404)
        return Response(_suppression(item))

    @extend_schema(responses={200: dict})
    def delete(self, request: Request, domain: str, address: str) -> Response:
        found = self.domain(domain)
        exists = Suppression.objects.filter(
            domain=found, reason=self.kind, address=address.lower()
        ).exists()
        if not exists or not remove_suppression(found, address):
            raise ApiError("Address not found in suppressions table", status_code=404)
        return Response({"message": "Suppression has been removed", "address": address.lower()})


def _suppression(item: Suppression) -> dict[str, Any]:
    return {
        "address": item.address,
        "code": "550" if item.reason == "bounce" else "",
        "error": item.detail,
        "tags": ["*"],
        "created_at": format_datetime(item.created_at.astimezone(UTC), usegmt=True),
    }
