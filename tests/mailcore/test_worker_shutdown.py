"""SIGTERM to a real Celery worker mid-batch: the SMTP transactions in progress finish and are
recorded, claimed rows not yet started are released at once (not left to their lease), and after
another worker drains the rest every recipient is delivered exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.utils import timezone

from mailcore.models import Delivery, Mailbox
from mailcore.services.outbound import submit_outbound
from mailcore.tasks import dispatch_outbound
from tests.factories import child_database_url, make_email
from tests.mailcore.outbound_peer import Peer, PeerHandler

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = 150
LEASE_SECONDS = 600  # far longer than the test: only an explicit release frees a row

pytestmark = [pytest.mark.django_db(transaction=True)]


def _env(peer_port: int) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "DATABASE_URL": child_database_url(),
        "MAILROOM_RELAY_HOST": f"127.0.0.1:{peer_port}",
        "MAILROOM_OUTBOUND_LEASE_SECONDS": str(LEASE_SECONDS),
        "MAILROOM_OUTBOUND_CONNECTIONS": "4",
        "MAILROOM_OUTBOUND_BATCH_SIZE": "20",
        "PYTHONFAULTHANDLER": "1",
    }


def start_celery_worker(peer_port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "outbound",
               "--pool", "prefork", "--concurrency", "1", "--without-heartbeat",
               "--without-gossip", "--without-mingle", "-l", "info",
               "-n", f"shutdown-test-{os.getpid()}@%h"]  # fmt: skip
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=_env(peer_port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, as under a supervisor
    )


@pytest.fixture
def peer() -> Iterator[tuple[Peer, PeerHandler]]:
    server = Peer().start()
    server.handler.slow_seconds = 0.1  # every DATA takes a while: SIGTERM lands mid-transaction
    yield server, server.handler
    server.stop()


@pytest.mark.parametrize("target", ["main process", "process group"])
def test_sigterm_finishes_transactions_in_flight_and_releases_the_rest(
    alice: Mailbox, peer: tuple[Peer, PeerHandler], target: str
) -> None:
    server, handler = peer
    for number in range(MESSAGES):
        recipient = f"slow{number}@remote.test"
        submit_outbound(
            organization_id=alice.organization_id,
            mail_from="alice@example.test",
            recipients=[recipient],
            raw=make_email(sender="alice@example.test", to=recipient),
            source="api",
        )
    worker = start_celery_worker(server.port)
    try:
        dispatch_outbound.delay()
        deadline = time.monotonic() + 60
        while len(handler.transactions) < 12 and time.monotonic() < deadline:
            assert worker.poll() is None, worker.stdout.read().decode()[-3000:]  # type: ignore[union-attr]
            time.sleep(0.01)
        assert len(handler.transactions) >= 12, "the worker never started delivering"
        signalled = time.monotonic()
        if target == "main process":
            worker.send_signal(signal.SIGTERM)
        else:
            os.killpg(worker.pid, signal.SIGTERM)
        try:
            output, _ = worker.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            # SIGABRT makes every process of the worker print its threads' stacks (faulthandler).
            os.killpg(worker.pid, signal.SIGABRT)
            try:
                output, _ = worker.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                output, _ = worker.communicate()
            raise AssertionError(output.decode(errors="replace")[-8000:]) from None
        took = time.monotonic() - signalled
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    log = output.decode(errors="replace")
    sent_by_first = Counter(r for t in handler.transactions for r in t.recipients)

    assert worker.returncode == 0, log[-3000:]
    assert took < 15, f"warm shutdown took {took:.1f}s"
    assert len(sent_by_first) < MESSAGES, "the worker kept delivering after SIGTERM"
    assert not Delivery.objects.filter(status="sending").exists(), log[-3000:]
    delivered = set(Delivery.objects.filter(status="delivered").values_list("recipient", flat=True))
    assert delivered == set(sent_by_first)  # every transaction the peer took was recorded
    released = Delivery.objects.exclude(status="delivered")
    assert released.count() == MESSAGES - len(delivered)
    assert not released.exclude(lease_token="").exists()
    assert not released.filter(next_attempt_at__gt=timezone.now()).exists()  # due at once

    drain = subprocess.run(
        [sys.executable, "manage.py", "deliver", "--once"],
        cwd=ROOT, env=_env(server.port), capture_output=True, timeout=120,
    )  # fmt: skip
    assert drain.returncode == 0, drain.stderr.decode()[-2000:]
    assert set(Delivery.objects.values_list("status", flat=True)) == {"delivered"}
    received = Counter(r for t in handler.transactions for r in t.recipients)
    assert len(received) == MESSAGES
    assert max(received.values()) == 1  # nobody got it twice
