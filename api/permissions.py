"""Scope checks: a view names the scope it needs in ``required_scope``."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from api.models import ApiKey


class HasScope(BasePermission):
    message = "This API key lacks the scope this endpoint needs."

    def has_permission(self, request: Request, view: Any) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            return False
        needed = getattr(view, "required_scope", None)
        if needed is None:
            return True
        if isinstance(needed, dict):
            needed = needed.get(request.method, needed.get("*"))
        return needed in api_key.scopes
