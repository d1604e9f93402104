"""Celery tasks of the API: thin shells over :mod:`api.services` functions."""

from __future__ import annotations

from celery import shared_task

from api.services.dns_check import verify_all_domains
from api.services.idempotency import purge_expired_idempotency_keys
from api.services.webhooks import deliver_endpoint, due_endpoint_ids


@shared_task(ignore_result=True)
def deliver_webhooks() -> int:
    """Beat: every due endpoint, each claimed by lease (idempotent, safe to overlap)."""
    return sum(deliver_endpoint(endpoint_id) for endpoint_id in due_endpoint_ids())


@shared_task(ignore_result=True)
def purge_idempotency_keys() -> int:
    """Beat: forget Idempotency-Keys past their window."""
    return purge_expired_idempotency_keys()


@shared_task(ignore_result=True)
def check_domains_dns() -> int:
    """Beat: look every active domain's DNS records up again."""
    return verify_all_domains()
