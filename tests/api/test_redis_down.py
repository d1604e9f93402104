"""Redis down (cache, rate limits, live counters and the Celery broker all on it): sends are still
accepted and queued in the database, and a dispatcher delivers them from there."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django_redis import get_redis_connection
from redis.exceptions import ConnectionError as RedisConnectionError

from config.celery import app
from mailcore.models import Delivery, Mailbox, OutboundMessage
from mailcore.services.outbound.delivery import DispatchOptions, run_dispatcher
from tests.api.conftest import Keys, client_for, send_json
from tests.mailcore.outbound_peer import Peer

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture
def redis_down(settings) -> Iterator[None]:  # type: ignore[no-untyped-def]
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": DEAD_REDIS}}
    broker = app.conf.broker_url
    app.conf.broker_url = DEAD_REDIS
    app._pool = None  # the producer pool was made for the live broker
    try:
        yield
    finally:
        app.conf.broker_url = broker
        app._pool = None


@pytest.mark.django_db(transaction=True)
def test_sends_are_accepted_and_delivered_with_redis_down(
    keys: Keys, alice: Mailbox, redis_down: None, settings
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RedisConnectionError):
        get_redis_connection("default").ping()
    assert cache.get("anything") is None  # the cache answers (a miss), it does not raise
    peer = Peer().start()
    settings.MAILROOM_RELAY_HOST = f"127.0.0.1:{peer.port}"
    try:
        started = time.monotonic()
        native = client_for(keys.full).post(
            "/api/v1/messages/", send_json(to=["one@remote.test"]), format="json"
        )
        mailgun = client_for(keys.full, basic=True).post(
            "/v3/example.test/messages",
            {"from": "alice@example.test", "to": "two@remote.test", "subject": "S", "text": "T"},
        )
        assert native.status_code == 202, native.content
        assert mailgun.status_code == 200, mailgun.content
        assert time.monotonic() - started < 15  # no hang on the dead broker or cache
        assert OutboundMessage.objects.count() == 2
        assert set(Delivery.objects.values_list("status", flat=True)) == {"queued"}

        stats = run_dispatcher(DispatchOptions(idle_seconds=0.0, wait_for_leases=True))
    finally:
        peer.stop()
    assert stats.delivered == 2
    assert set(Delivery.objects.values_list("status", flat=True)) == {"delivered"}
    assert sorted(r for t in peer.handler.transactions for r in t.recipients) == [
        "one@remote.test",
        "two@remote.test",
    ]
