"""Native API: mailboxes, folders and stored messages of the key's organization."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from api import serializers as s
from api.errors import ApiError
from api.services import mailboxes as service
from api.views.base import ApiView, int_param
from mailcore import access
from mailcore.models import Folder, Message


def _message_out(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "mailbox_id": message.mailbox_id,
        "folder_id": message.folder_id,
        "message_id": message.message_id,
        "subject": message.subject,
        "from": {"name": message.from_name, "address": message.from_address},
        "to": message.to_addresses,
        "cc": message.cc_addresses,
        "received_at": message.received_at.isoformat(),
        "size": message.size,
        "snippet": message.snippet,
        "has_attachments": message.has_attachments,
        "is_seen": message.is_seen,
        "is_flagged": message.is_flagged,
        "is_answered": message.is_answered,
        "is_draft": message.is_draft,
    }


class MailboxesView(ApiView):
    required_scope = "mailboxes"

    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> Response:
        mailboxes = access.mailboxes_for_organization(self.organization_id).order_by("address")
        items = [
            {
                "id": m.id,
                "address": m.address,
                "display_name": m.display_name,
                "quota_bytes": m.quota_bytes,
                "used_bytes": m.used_bytes,
            }
            for m in mailboxes
        ]
        return Response({"items": items})


class FoldersView(ApiView):
    required_scope = "mailboxes"

    @extend_schema(responses={200: dict})
    def get(self, request: Request, mailbox_id: int) -> Response:
        mailbox = access.get_mailbox_for_organization(self.organization_id, mailbox_id)
        folders = Folder.objects.filter(mailbox=mailbox).order_by("id")
        items = [
            {
                "id": f.id,
                "name": f.name,
                "role": f.role,
                "total_count": f.total_count,
                "unread_count": f.unread_count,
            }
            for f in folders
        ]
        return Response({"items": items})


class MailboxMessagesView(ApiView):
    required_scope = "mailboxes"

    @extend_schema(
        parameters=[
            OpenApiParameter("q", str, description="Webmail search syntax (from:, is:unread…)"),
            OpenApiParameter("folder", int),
            OpenApiParameter("cursor", str),
            OpenApiParameter("limit", int),
        ],
        responses={200: dict},
    )
    def get(self, request: Request, mailbox_id: int) -> Response:
        mailbox = access.get_mailbox_for_organization(self.organization_id, mailbox_id)
        params = request.query_params
        folder = None
        if params.get("folder"):
            folder_id = int_param(params.get("folder"), "folder", 0, low=1, high=2**62)
            folder = access.get_folder_for_organization(self.organization_id, folder_id)
            if folder.mailbox_id != mailbox.id:
                raise ApiError("No such folder.", status_code=404)
        limit = int_param(params.get("limit"), "limit", 50, low=1, high=200)
        try:
            page, next_cursor = service.list_messages(
                mailbox,
                query=params.get("q", ""),
                folder=folder,
                cursor=params.get("cursor", ""),
                limit=limit,
            )
        except service.MailboxQueryError as exc:
            raise ApiError(str(exc), fields={exc.field: [str(exc)]}) from exc
        return Response({"items": [_message_out(m) for m in page], "next": next_cursor})


class MailboxMessageView(ApiView):
    required_scope = "mailboxes"

    def _get(self, message_id: int) -> Message:
        return access.get_message_for_organization(self.organization_id, message_id)

    @extend_schema(responses={200: dict})
    def get(self, request: Request, message_id: int) -> Response:
        message = self._get(message_id)
        out = _message_out(message)
        out["attachments"] = [
            {"id": a.id, "filename": a.filename, "content_type": a.content_type, "size": a.size}
            for a in message.attachments.order_by("id")
        ]
        return Response(out)

    @extend_schema(request=s.FlagsIn, responses={200: dict})
    def patch(self, request: Request, message_id: int) -> Response:
        message = self._get(message_id)
        serializer = s.FlagsIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        folder = None
        if "folder_id" in data:
            folder = access.get_folder_for_organization(self.organization_id, data["folder_id"])
        try:
            service.update_message(
                message,
                is_seen=data.get("is_seen"),
                is_flagged=data.get("is_flagged"),
                folder=folder,
            )
        except service.MailboxQueryError as exc:
            raise ApiError(str(exc), fields={exc.field: [str(exc)]}) from exc
        return Response(_message_out(self._get(message_id)))

    @extend_schema(parameters=[OpenApiParameter("permanent", bool)], responses={200: dict})
    def delete(self, request: Request, message_id: int) -> Response:
        message = self._get(message_id)
        is_permanent = request.query_params.get("permanent", "").lower() in ("1", "true", "yes")
        try:
            outcome = service.delete_message(message, is_permanent=is_permanent)
        except service.MailboxQueryError as exc:
            raise ApiError(str(exc), fields={exc.field: [str(exc)]}) from exc
        return Response({"id": message_id, "result": outcome}, status=status.HTTP_200_OK)


class MailboxMessageRawView(ApiView):
    required_scope = "mailboxes"

    @extend_schema(responses={(200, "message/rfc822"): bytes})
    def get(self, request: Request, message_id: int) -> HttpResponse:
        message = access.get_message_for_organization(self.organization_id, message_id)
        return HttpResponse(bytes(message.blob.data), content_type="message/rfc822")
