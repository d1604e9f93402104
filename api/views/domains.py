"""Domain DNS verification: native ``/api/v1/domains/{name}/verify/`` and Mailgun's
``/v3/domains/{name}`` and ``PUT /v3/domains/{name}/verify``."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from api.services.dns_check import verify_domain_dns
from api.services.domains import describe_domain, mailgun_domain
from api.views.base import ApiView
from api.views.mailgun import MailgunView
from mailcore import access


class DomainVerifyView(ApiView):
    required_scope = "domains"

    @extend_schema(request=None, responses={200: dict}, operation_id="verify_domain")
    def post(self, request: Request, name: str) -> Response:
        domain = access.get_domain_for_organization(self.organization_id, name)
        verify_domain_dns(domain)
        return Response(describe_domain(domain))


class MailgunDomainView(MailgunView):
    required_scope = "domains"

    @extend_schema(responses={200: dict}, operation_id="mailgun_domain")
    def get(self, request: Request, name: str) -> Response:
        return Response(mailgun_domain(self.domain(name)))


class MailgunDomainVerifyView(MailgunView):
    required_scope = "domains"

    @extend_schema(request=None, responses={200: dict}, operation_id="mailgun_verify_domain")
    def put(self, request: Request, name: str) -> Response:
        domain = self.domain(name)
        verify_domain_dns(domain)
        return Response(
            {**mailgun_domain(domain), "message": "Domain DNS records have been updated"}
        )
