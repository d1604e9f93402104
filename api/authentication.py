"""API key authentication: ``Authorization: Bearer KEY`` or HTTP Basic ``api:KEY`` (Mailgun)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from api.models import ApiKey
from api.services.keys import find_api_key


@dataclass(frozen=True, slots=True)
class ApiPrincipal:
    """What ``request.user`` is for API requests: the key, acting for its organization."""

    api_key: ApiKey

    @property
    def organization_id(self) -> int:
        return self.api_key.organization_id

    is_authenticated = True
    is_anonymous = False
    pk = None


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiPrincipal, ApiKey] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            secret = value.strip()
        elif scheme == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise exceptions.AuthenticationFailed("Malformed Basic credentials.") from exc
            _, _, secret = decoded.partition(":")
        else:
            return None
        api_key = find_api_key(secret)
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        return ApiPrincipal(api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        return 'Basic realm="MG API"'


try:  # the schema generator's description of this authenticator
    from drf_spectacular.extensions import OpenApiAuthenticationExtension

    class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):  # type: ignore[misc]
        target_class = "api.authentication.ApiKeyAuthentication"
        name = ["bearer", "basic"]

        def get_security_definition(self, auto_schema):  # type: ignore[no-untyped-def]
            return [
                {"type": "http", "scheme": "bearer"},
                {"type": "http", "scheme": "basic", "description": "user `api`, password KEY"},
            ]
except ImportError:  # pragma: no cover
    pass
