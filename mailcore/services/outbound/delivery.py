"""The dispatcher: claims due deliveries and sends them over reused SMTP connections.

One dispatcher is one asyncio event loop (in a Celery task or ``manage.py deliver``). It claims
batches (see ``dispatch.py``), groups them into jobs -- one message and up to
``MAX_RECIPIENTS_PER_TRANSACTION`` of its recipients on the same route -- and queues the jobs on
a lane per route (the relay, a destination domain's MX hosts, or local mailboxes). A lane opens
up to its connection limit (a Redis slot each, shared by all workers) and every connection
sends job after job until its lane stays empty for ``LINGER_SECONDS``.

Database work runs on a small thread pool. Results are committed in groups: every result that
arrived while the previous commit ran goes into the next one, so twenty busy connections cost
one commit, not twenty. A connection waits for its own results to be committed before starting
its next transaction, so a crash never re-sends to a recipient that was recorded delivered.

Trade-offs: DKIM signing (about 1 ms of RSA per message) runs on the event loop; with two cores
it is CPU-bound anyway and a pool would only add hand-offs. Claimed rows wait in memory at most
a few seconds (the in-flight cap is two claim batches); their lease is renewed while they do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection
from django.utils import timezone

from config.metrics import count_if_database_error
from mailcore.services.outbound import dispatch
from mailcore.services.outbound.dispatch import Claim
from mailcore.services.outbound.dkim import SigningKey, active_key
from mailcore.services.outbound.lanes import Job, Lane
from mailcore.services.outbound.mx import Route, route_for
from mailcore.services.outbound.results import AttemptResult, record_results
from mailcore.services.outbound.retry import Kind
from mailcore.smtp.threads import shutdown_with_connections

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_RECIPIENTS_PER_TRANSACTION = 50
DB_THREADS = 2


@dataclass(slots=True)
class DispatchOptions:
    connections: int = field(default_factory=lambda: settings.MAILROOM_OUTBOUND_CONNECTIONS)
    batch_size: int = field(default_factory=lambda: settings.MAILROOM_OUTBOUND_BATCH_SIZE)
    idle_seconds: float | None = 0.0  # exit after this long with nothing to do; None: never
    max_seconds: float | None = None  # stop claiming after this long
    poll_seconds: float = 0.05  # how often an idle dispatcher looks for due rows
    wait_for_leases: bool = False  # idle also means: no row leased by anyone (``--once``)
    clock: Callable[[], datetime] = timezone.now
    rand: Callable[[], float] = random.random
    stop: threading.Event = field(default_factory=threading.Event)


@dataclass(slots=True)
class DispatchStats:
    claimed: int = 0
    delivered: int = 0
    deferred: int = 0
    bounced: int = 0
    failed: int = 0
    connections: int = 0
    transactions: int = 0


def run_dispatcher(options: DispatchOptions | None = None) -> DispatchStats:
    """Run one dispatcher until it is idle (see ``DispatchOptions``) or stopped."""
    return asyncio.run(Dispatcher(options or DispatchOptions()).run())


def _on_db_thread(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    try:
        return function(*args, **kwargs)
    except Exception:
        connection.close_if_unusable_or_obsolete()
        raise


class Dispatcher:
    def __init__(self, options: DispatchOptions) -> None:
        self.options = options
        self.lease_token = uuid.uuid4().hex
        self.stats = DispatchStats()
        self.lanes: dict[str, Lane] = {}
        self.in_flight_ids: set[int] = set()  # claimed, not yet recorded or released
        self.open_connections = 0
        self.keys: dict[str, SigningKey | None] = {}  # DKIM keys, loaded with the claims
        self.progress = asyncio.Event()
        self.stopping = False
        self.db = ThreadPoolExecutor(max_workers=DB_THREADS, thread_name_prefix="outbound-db")
        self._pending: list[tuple[list[AttemptResult], asyncio.Future[None]]] = []
        self._pending_event = asyncio.Event()

    async def db_call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.db, partial(_on_db_thread, function, *args, **kwargs)
        )

    async def run(self) -> DispatchStats:
        options = self.options
        started = last_activity = time.monotonic()
        last_recover = last_renew = float("-inf")
        tick = settings.MAILROOM_OUTBOUND_TICK_SECONDS
        high_water = max(options.batch_size * 2, options.connections * 4)
        recorder = asyncio.create_task(self._record_loop())
        try:
            while not options.stop.is_set():
                now = time.monotonic()
                if now - last_recover >= tick:
                    last_recover = now
                    await self.db_call(dispatch.recover_expired_leases, now=options.clock())
                if (
                    self.in_flight
                    and now - last_renew >= settings.MAILROOM_OUTBOUND_LEASE_SECONDS / 3
                ):
                    last_renew = now
                    await self.db_call(dispatch.renew_leases, self.lease_token, now=options.clock())
                past_time = options.max_seconds is not None and now - started > options.max_seconds
                wanted = min(options.batch_size, high_water - self.in_flight)
                claimed = 0
                if wanted > 0 and not past_time:
                    claim = await self.db_call(self._claim_on_thread, wanted, options.clock())
                    claimed = len(claim.deliveries)
                    if claimed:
                        last_activity = time.monotonic()
                        self._distribute(claim)
                if claimed == 0 and self.in_flight == 0:
                    if past_time:
                        break
                    if await self._is_done(last_activity):
                        break
                if claimed < wanted or wanted <= 0:
                    self.progress.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.progress.wait(), options.poll_seconds)
        finally:
            await self._shutdown(recorder)
        return self.stats

    @property
    def in_flight(self) -> int:
        return len(self.in_flight_ids)

    def _claim_on_thread(self, limit: int, now: datetime) -> Claim:
        claim = dispatch.claim_due_deliveries(lease_token=self.lease_token, limit=limit, now=now)
        for message in claim.messages.values():
            if message.domain_name not in self.keys:
                self.keys[message.domain_name] = active_key(message.domain_name)
        return claim

    async def _is_done(self, last_activity: float) -> bool:
        idle = self.options.idle_seconds
        if idle is None or time.monotonic() - last_activity < idle:
            return False
        if not self.options.wait_for_leases:
            return True
        return not await self.db_call(dispatch.has_pending_work, now=self.options.clock())

    def _distribute(self, claim: Claim) -> None:
        self.in_flight_ids.update(delivery.id for delivery in claim.deliveries)
        self.stats.claimed += len(claim.deliveries)
        groups: dict[tuple[int, str], Job] = {}
        for delivery in claim.deliveries:
            route = route_for(delivery.recipient_domain, is_local=delivery.is_local)
            key = (delivery.message_id, route.key if route.kind == "relay" else route.domain)
            if claim.messages[delivery.message_id].is_tracked and not delivery.is_local:
                key = (delivery.message_id, f"delivery:{delivery.id}")  # its own tracked body
            job = groups.get(key)
            if job is None or len(job.deliveries) >= MAX_RECIPIENTS_PER_TRANSACTION:
                job = groups[key] = Job(route, claim.messages[delivery.message_id], [])
                self._lane(route).put(job)
            job.deliveries.append(delivery)

    def _lane(self, route: Route) -> Lane:
        lane = self.lanes.get(route.key)
        if lane is None:
            lane = self.lanes[route.key] = Lane(self, route)
        return lane

    async def record(self, results: list[AttemptResult]) -> None:
        """Commit ``results`` (grouped with others arriving meanwhile); returns after commit."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((results, future))
        self._pending_event.set()
        await future

    async def _record_loop(self) -> None:
        while True:
            await self._pending_event.wait()
            self._pending_event.clear()
            batch, self._pending = self._pending, []
            if not batch:
                continue
            results = [result for results, _ in batch for result in results]
            error: BaseException | None = None
            for delay in (0.1, 0.5, 1, 2, 5, None):
                try:
                    await self.db_call(
                        record_results,
                        results,
                        lease_token=self.lease_token,
                        now=self.options.clock(),
                        rand=self.options.rand,
                    )
                    error = None
                    break
                except Exception as exc:  # database trouble: retry, then give up this batch
                    error = exc
                    count_if_database_error("outbound_record", exc)
                    log.warning("recording %d results failed", len(results), exc_info=True)
                    if delay is not None:
                        await asyncio.sleep(delay)
            for result in results:
                self._count(result)
            self.in_flight_ids.difference_update(result.delivery.id for result in results)
            for _, future in batch:
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)
            self.progress.set()

    def _count(self, result: AttemptResult) -> None:
        if result.kind is Kind.DELIVERED:
            self.stats.delivered += 1
        elif result.kind is Kind.PERMANENT:
            self.stats.bounced += 1
        elif result.delivery.expires_at <= self.options.clock():
            self.stats.failed += 1
        else:
            self.stats.deferred += 1

    async def release(self, jobs: list[Job], retry_at: datetime) -> None:
        ids = [delivery.id for job in jobs for delivery in job.deliveries]
        if ids:
            await self.db_call(dispatch.release_claimed, self.lease_token, ids, retry_at=retry_at)
            self.in_flight_ids.difference_update(ids)
            self.progress.set()

    async def _shutdown(self, recorder: asyncio.Task[None]) -> None:
        self.stopping = True
        for lane in self.lanes.values():
            lane.wake_all()
        workers = [task for lane in self.lanes.values() for task in lane.tasks]
        if workers:
            await asyncio.gather(*workers, return_exceptions=True)
        leftovers = [job for lane in self.lanes.values() for job in lane.drain()]
        try:
            await self.release(leftovers, self.options.clock())
        except Exception:
            log.exception(
                "releasing %d unsent jobs failed; their leases will expire", len(leftovers)
            )
        while self._pending:
            await asyncio.sleep(0.01)
        recorder.cancel()
        await asyncio.gather(recorder, return_exceptions=True)
        await asyncio.to_thread(shutdown_with_connections, self.db, DB_THREADS)
