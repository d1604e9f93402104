"""Mail flows in (MX receiver) and out (submission -> Celery workers -> a faulty smtp-sink)
while workers are killed, Redis is flushed and restarted and PostgreSQL restarts as after a
crash. Everything runs as real processes on this session's private PostgreSQL and Redis.

Asserted: every message acknowledged by the receiver is stored once; every recipient of every
acknowledged submission ends delivered, bounced or failed before the deadline; no delivery
stays in ``sending`` long past its lease; permanent replies bounce and only they do; and each
retry waited what retry.py's policy says for its attempt number.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from bench.peers import start_smtp_sink
from tests.factories import PASSWORD
from tests.resilience.clients import RetryingClient, outgoing
from tests.resilience.services import Child, PrivatePostgres, PrivateRedis, celery
from tests.support import free_port, start_receiver_process

pytestmark = pytest.mark.resilience

RETRY_BASE, RETRY_CAP, LEASE, TICK = 1, 4, 3, 1
INTERRUPTED = "Delivery interrupted"  # the reply recover_expired_leases records


class LeaseWatch(threading.Thread):
    """Samples how far past its lease the most overdue ``sending`` delivery is."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.worst, self.stop = url, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.3):
            with contextlib.suppress(psycopg.Error):
                with psycopg.connect(self.url, connect_timeout=1) as conn:
                    (overdue,) = conn.execute(
                        "SELECT COALESCE(MAX(EXTRACT(EPOCH FROM now() - leased_until)), 0)"
                        " FROM mailcore_delivery WHERE status = 'sending'"
                    ).fetchone()  # type: ignore[misc]
                self.worst = max(self.worst, float(overdue))


def policy_delay(attempt: int) -> float:
    """retry.py's un-jittered wait after the ``attempt``-th try."""
    return min(RETRY_CAP, RETRY_BASE * 2 ** (attempt - 1))


def test_mail_flows_through_worker_redis_and_postgres_faults(
    private_postgres: PrivatePostgres, private_redis: PrivateRedis, tmp_path: Path
) -> None:
    url = private_postgres.url()
    sink_port, mx_port, submission_port = free_port(), free_port(), free_port()
    env = {
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "DATABASE_URL": url,
        "REDIS_URL": private_redis.url,
        "MAILROOM_RELAY_HOST": f"127.0.0.1:{sink_port}",
        "MAILROOM_OUTBOUND_STARTTLS": "0",
        "MAILROOM_RETRY_BASE_SECONDS": str(RETRY_BASE),
        "MAILROOM_RETRY_MAX_SECONDS": str(RETRY_CAP),
        "MAILROOM_MAX_RETRY_AGE": "45",
        "MAILROOM_OUTBOUND_LEASE_SECONDS": str(LEASE),
        "MAILROOM_OUTBOUND_TICK_SECONDS": str(TICK),
        "MAILROOM_SMTP_CLIENT_TIMEOUT": "3",
        "MAILROOM_SUBMISSION_ALLOW_INSECURE_LOOPBACK": "1",
    }
    base = tmp_path / "sink"
    sink = start_smtp_sink(sink_port, base=base)
    worker = Child("worker", celery("worker", "-Q", "celery,outbound", "-c", "2"), env)
    beat = Child("beat", celery("beat", "-s", str(tmp_path / "beat-schedule")), env)
    receivers = [
        start_receiver_process(mx_port, env=env),
        start_receiver_process(submission_port, env=env, args=["--submission"]),
    ]
    inbound = RetryingClient(
        mx_port, [outgoing(f"in-{n}") for n in range(40)], interval=0.3, deadline_seconds=90
    )
    submitted = [
        outgoing(
            f"out-{n}",
            mail_from="alice@example.test",
            to=tuple(f"r{n}-{k}@remote.test" for k in range(1 + n % 2)),
        )
        for n in range(40)
    ]
    outbound = RetryingClient(
        submission_port,
        submitted,
        login=("alice@example.test", PASSWORD),
        interval=0.3,
        deadline_seconds=90,
    )
    watch = LeaseWatch(url)

    def peer(*options: str) -> None:
        nonlocal sink
        sink.stop()
        sink = start_smtp_sink(sink_port, *options, base=base)

    faults = [
        lambda: peer("-r", "RCPT"),  # every recipient 4xx: deferred
        worker.restart,  # kill -9 mid-flight
        lambda: peer("-q", "."),  # hang up after the data: the result is unknown
        private_redis.flush_and_restart,
        lambda: peer("-f", "RCPT"),  # 5xx: bounced
        private_postgres.restart_immediate,
        lambda: peer("-Q", "MAIL", "-W", "DATA:1:50"),  # 421, slow replies
        worker.restart,
        lambda: peer(),  # healthy again
    ]
    try:
        for thread in (inbound, outbound, watch):
            thread.start()
        for fault in faults:
            time.sleep(1.5)
            fault()
        inbound.join(60)
        outbound.join(60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _open_deliveries(url):
            time.sleep(0.5)
        open_left = _open_deliveries(url)
    finally:
        watch.stop.set()
        for thread in (inbound, outbound):
            thread.finish()
        for receiver in receivers:
            receiver.kill()
        worker.kill()
        beat.kill()
        sink.stop()

    # Inbound: everything acknowledged, each stored once (deduplicated by Message-ID).
    assert not inbound.gave_up and not inbound.refused
    with psycopg.connect(url) as conn:
        subjects = Counter(
            row[0] for row in conn.execute("SELECT subject FROM mailcore_message").fetchall()
        )
        deliveries = conn.execute(
            "SELECT id, recipient, status, expires_at FROM mailcore_delivery"
        ).fetchall()
        attempts = conn.execute(
            "SELECT delivery_id, started_at, finished_at, outcome, reply_code, reply"
            " FROM mailcore_deliveryattempt ORDER BY delivery_id, started_at"
        ).fetchall()
        deferrals = conn.execute(
            "SELECT (payload->>'delivery_id')::bigint, (payload->>'attempt')::int, occurred_at,"
            " (payload->>'retry_at')::timestamptz FROM analytics_event"
            " WHERE type = 'deferred' AND payload ? 'attempt'"
        ).fetchall()
    assert subjects == Counter({key: 1 for key in inbound.acked})
    assert len(inbound.acked) == 40

    # Outbound: every acknowledged recipient has a delivery, and every delivery is final.
    assert not outbound.gave_up and not outbound.refused
    assert len(outbound.acked) == 40
    by_recipient = Counter(recipient for _, recipient, _, _ in deliveries)
    wanted = {r for m in submitted if m.key in outbound.acked for r in m.recipients}
    assert wanted <= set(by_recipient)
    # Only a submission cut between its commit and its 250 can be queued twice.
    assert all(count <= 2 for count in by_recipient.values())
    assert open_left == 0, "deliveries still queued, deferred or sending at the deadline"
    statuses = Counter(status for _, _, status, _ in deliveries)
    assert set(statuses) <= {"delivered", "bounced", "failed"}, statuses
    assert statuses["delivered"] > 0
    # Leases of killed workers were recovered: nothing sat in 'sending' long past its lease
    # (one tick, plus a worker's start-up after the kill, plus the database restart).
    assert watch.worst < 20, f"a delivery stayed {watch.worst:.1f}s past its lease"

    # Permanent replies bounce, and only they do.
    status_of = {row[0]: row[2] for row in deliveries}
    permanent = {a[0] for a in attempts if a[4] is not None and 500 <= a[4] < 600}
    assert {d for d, s in status_of.items() if s == "bounced"} == permanent

    # Retry spacing: each deferral scheduled the next try base * 2**(n-1) (capped) times a
    # jitter in [0.75, 1.25) later (or at the expiry), and the next try did not start earlier.
    expires = {row[0]: row[3] for row in deliveries}
    starts: dict[int, list] = {}
    for delivery_id, started_at, *_ in attempts:
        starts.setdefault(delivery_id, []).append(started_at)
    assert len(deferrals) >= 10, "the faults should have deferred deliveries"
    for delivery_id, attempt, finished_at, retry_at in deferrals:
        wait = (retry_at - finished_at).total_seconds()
        if retry_at < expires[delivery_id]:
            assert wait >= 0.75 * policy_delay(attempt) - 0.01, (delivery_id, attempt, wait)
        # The recording may lag the finish by the database's restart; never by more.
        assert wait <= 1.25 * policy_delay(attempt) + 15, (delivery_id, attempt, wait)
        later = [s for s in starts[delivery_id] if s > finished_at]
        if later:
            assert min(later) >= retry_at - timedelta(milliseconds=5), (delivery_id, attempt)
    print(f"deliveries {dict(statuses)}, deferrals {len(deferrals)}, worst {watch.worst:.1f}s")


def _open_deliveries(url: str) -> int:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            (count,) = conn.execute(
                "SELECT COUNT(*) FROM mailcore_delivery"
                " WHERE status IN ('queued', 'deferred', 'sending')"
            ).fetchone()  # type: ignore[misc]
            return int(count)
    except psycopg.Error:
        return -1
