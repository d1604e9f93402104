"""kill -9 a delivery worker mid-batch, restart it: every recipient ends delivered, and only a
transaction whose 250 was in flight at the kill may arrive twice."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from mailcore.models import Delivery, Mailbox
from mailcore.services.outbound import submit_outbound
from tests.factories import child_database_url, make_email
from tests.mailcore.outbound_peer import Peer, PeerHandler
from tests.support import ROOT

CONNECTIONS = 4

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.resilience]


def start_worker(peer_port: int, *extra: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "DATABASE_URL": child_database_url(),
        "MAILROOM_RELAY_HOST": f"127.0.0.1:{peer_port}",
        "MAILROOM_OUTBOUND_LEASE_SECONDS": "2",
        "MAILROOM_OUTBOUND_TICK_SECONDS": "1",
    }
    command = [
        sys.executable,
        "manage.py",
        "deliver",
        "--connections",
        str(CONNECTIONS),
        "--batch-size",
        "20",
        *extra,
    ]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


@pytest.fixture
def peer() -> Iterator[tuple[Peer, PeerHandler]]:
    server = Peer().start()
    server.handler.slow_seconds = 0.02
    yield server, server.handler
    server.stop()


def test_sigkill_mid_batch_loses_nothing(alice: Mailbox, peer: tuple[Peer, PeerHandler]) -> None:
    server, handler = peer
    expected: Counter[str] = Counter()
    for number in range(60):
        recipients = [f"slow{number}-{k}@remote.test" for k in range(1 + number % 3)]
        expected.update(recipients)
        submit_outbound(
            organization_id=alice.organization_id,
            mail_from="alice@example.test",
            recipients=recipients,
            raw=make_email(
                sender="alice@example.test",
                to=recipients[0],
                message_id=f"<crash-{number}@example.test>",
            ),
            source="api",
        )
    worker = start_worker(server.port)
    deadline = time.monotonic() + 60
    while len(handler.transactions) < 15 and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    received_at_kill = len(handler.transactions)
    assert 15 <= received_at_kill < 60, "the kill should land mid-batch"
    assert Delivery.objects.exclude(status="delivered").exists()

    restarted = start_worker(server.port, "--once")
    out, err = restarted.communicate(timeout=120)
    assert restarted.returncode == 0, err.decode()[-2000:]

    assert set(Delivery.objects.values_list("status", flat=True)) == {"delivered"}
    received = Counter(r for t in handler.transactions for r in t.recipients)
    assert set(received) == set(expected)
    # Only messages in flight at the kill (one per connection) may have arrived twice.
    duplicated = {message_id(t.data) for t in handler.transactions if received[t.recipients[0]] > 1}
    assert len(duplicated) <= CONNECTIONS
    for key in duplicated:
        first = next(i for i, t in enumerate(handler.transactions) if message_id(t.data) == key)
        assert first < received_at_kill  # the first copy was the one cut off by the kill
    assert all(count <= 2 for count in received.values())


def message_id(data: bytes) -> bytes:
    match = re.search(rb"Message-ID: <([^>]+)>", data)
    assert match is not None
    return match.group(1)
