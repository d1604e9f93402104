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
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection
from django.utils import timezone

from mailcore.services.outbound import dispatch, throttle, verp
from mailcore.services.outbound.dispatch import Claim, ClaimedDelivery, ClaimedMessage
from mailcore.services.outbound.dkim import SigningKey, active_key, sign
from mailcore.services.outbound.local import deliver_locally
from mailcore.services.outbound.mx import Route, RouteError, resolve_hosts, route_for
from mailcore.services.outbound.results import AttemptResult, record_results
from mailcore.services.outbound.retry import Kind, kind_of_reply
from mailcore.services.outbound.smtp_client import SmtpConnection, SmtpConnectionError
from mailcore.smtp.threads import shutdown_with_connections

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_RECIPIENTS_PER_TRANSACTION = 50
MAX_TRANSACTIONS_PER_CONNECTION = 1000
LINGER_SECONDS = 2.0
DOWN_SECONDS = 30.0  # after a failed connect, a lane defers its jobs without trying
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


@dataclass(slots=True)
class Job:
    route: Route
    message: ClaimedMessage
    deliveries: list[ClaimedDelivery]


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


class Lane:
    """The jobs of one route and the connections working them."""

    def __init__(self, dispatcher: Dispatcher, route: Route) -> None:
        self.dispatcher = dispatcher
        self.route = route
        self.limits = throttle.destination_limits(route.key, route.domain)
        self.queue: deque[Job] = deque()
        self.tasks: set[asyncio.Task[None]] = set()
        self.idle = 0
        self.wakeup = asyncio.Condition()
        self.down_until = 0.0
        self.down_reply = ""

    def put(self, job: Job) -> None:
        self.queue.append(job)
        if self.idle:
            asyncio.get_running_loop().create_task(self._notify())
            return
        dispatcher = self.dispatcher
        cap = 1 if self.route.kind == "local" else self.limits.connections or 10**6
        if len(self.tasks) < cap and (
            dispatcher.open_connections < dispatcher.options.connections or not self.tasks
        ):
            if self.route.kind != "local":
                dispatcher.open_connections += 1  # counted from now: put() runs in bursts
            task = asyncio.get_running_loop().create_task(self._work())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _notify(self) -> None:
        async with self.wakeup:
            self.wakeup.notify(1)

    def wake_all(self) -> None:
        async def notify_all() -> None:
            async with self.wakeup:
                self.wakeup.notify_all()

        asyncio.get_running_loop().create_task(notify_all())

    def drain(self) -> list[Job]:
        jobs = list(self.queue)
        self.queue.clear()
        return jobs

    async def _next_job(self) -> Job | None:
        if self.queue and not self.dispatcher.stopping:
            return self.queue.popleft()
        async with self.wakeup:
            self.idle += 1
            try:
                await asyncio.wait_for(
                    self.wakeup.wait_for(lambda: bool(self.queue) or self.dispatcher.stopping),
                    LINGER_SECONDS,
                )
            except TimeoutError:
                return None
            finally:
                self.idle -= 1
        if self.dispatcher.stopping or not self.queue:
            return None
        return self.queue.popleft()

    async def _work(self) -> None:
        if self.route.kind == "local":
            await self._work_local()
            return
        dispatcher = self.dispatcher
        member = uuid.uuid4().hex
        has_slot = await asyncio.to_thread(
            throttle.acquire_connection, self.route.key, member, self.limits.connections
        )
        smtp: SmtpConnection | None = None
        try:
            if not has_slot:
                if len(self.tasks) <= 1:  # nobody else works this lane: come back later
                    retry_at = dispatcher.options.clock() + timedelta(seconds=15)
                    await dispatcher.release(self.drain(), retry_at)
                return
            while (job := await self._next_job()) is not None:
                try:
                    smtp = await self._deliver(smtp, job)
                except Exception:
                    log.exception("delivering job of message %s failed", job.message.id)
                    if smtp is not None:
                        smtp.abort()
                        smtp = None
                    await self._abandon(job)
                if smtp is not None and smtp.transactions >= MAX_TRANSACTIONS_PER_CONNECTION:
                    await smtp.quit()
                    smtp = None
        finally:
            if smtp is not None:
                await smtp.quit()
            dispatcher.open_connections -= 1
            if has_slot:
                await asyncio.to_thread(throttle.release_connection, self.route.key, member)

    async def _work_local(self) -> None:
        while (job := await self._next_job()) is not None:
            jobs = [job]
            while self.queue and len(jobs) < 64:
                jobs.append(self.queue.popleft())
            deliveries = [d for job in jobs for d in job.deliveries]
            messages = {job.message.id: job.message for job in jobs}
            try:
                results = await self.dispatcher.db_call(deliver_locally, deliveries, messages)
                await self.dispatcher.record(results)
            except Exception:
                log.exception("local delivery of %d deliveries failed", len(deliveries))
                for job in jobs:
                    await self._abandon(job)

    async def _abandon(self, job: Job) -> None:
        """Give up on a job after an internal error: defer it, or leave it to its lease."""
        try:
            await self._finish(job, None, self.dispatcher.options.clock(), error="internal error")
        except Exception:
            log.exception("could not record the failure; the lease will expire")

    async def _connect(self) -> SmtpConnection:
        hosts = await resolve_hosts(self.route)
        error: SmtpConnectionError | None = None
        for host, port in hosts[:5]:
            try:
                smtp = await SmtpConnection.open(
                    host,
                    port,
                    helo=settings.MAILROOM_HOSTNAME,
                    timeout=settings.MAILROOM_SMTP_CLIENT_TIMEOUT,
                    use_tls=settings.MAILROOM_OUTBOUND_STARTTLS,
                )
                self.dispatcher.stats.connections += 1
                return smtp
            except SmtpConnectionError as exc:
                error = exc
        raise error or SmtpConnectionError(f"no host to connect to for {self.route.domain}")

    async def _deliver(self, smtp: SmtpConnection | None, job: Job) -> SmtpConnection | None:
        """Send one job; returns the connection to reuse (None if it broke)."""
        clock = self.dispatcher.options.clock
        started = clock()
        if self.down_until > time.monotonic():
            await self._finish(job, None, started, error=self.down_reply)
            return None
        for is_retry in (False, True):
            is_reused = smtp is not None
            if smtp is None:
                try:
                    smtp = await self._connect()
                except RouteError as exc:
                    kind = Kind.PERMANENT if exc.is_permanent else Kind.TEMPORARY
                    await self._finish(job, None, started, error=str(exc), kind=kind,
                                       status=exc.enhanced_status)  # fmt: skip
                    return None
                except SmtpConnectionError as exc:
                    self.down_until = time.monotonic() + DOWN_SECONDS
                    self.down_reply = str(exc)
                    await self._finish(job, None, started, error=str(exc))
                    return None
            data = await self._payload(job)
            mail_from = (
                verp.return_path(job.deliveries[0].id, job.message.domain_name)
                if settings.MAILROOM_VERP_ENABLED
                else job.message.mail_from
            )
            recipients = [delivery.recipient for delivery in job.deliveries]
            try:
                result = await smtp.send(mail_from, recipients, data)
            except SmtpConnectionError as exc:
                smtp.abort()
                smtp = None
                # A cached connection the peer had closed: try once more on a fresh one.
                if is_reused and not is_retry and "closed the connection" in str(exc):
                    continue
                await self._finish(job, None, started, error=str(exc))
                return None
            self.dispatcher.stats.transactions += 1
            await self._finish(job, smtp, started, replies=result.replies)
            return smtp
        return None

    async def _payload(self, job: Job) -> bytes:
        message = job.message
        if message.raw is None:
            message.raw = await self.dispatcher.db_call(dispatch.load_raw, message.id)
        key = self.dispatcher.keys.get(message.domain_name)
        if key is None:
            return message.raw
        try:
            return sign(message.raw, key)
        except Exception:
            log.exception("DKIM signing of message %s failed; sending unsigned", message.id)
            return message.raw

    async def _finish(
        self,
        job: Job,
        smtp: SmtpConnection | None,
        started: datetime,
        *,
        replies: dict[str, Any] | None = None,
        error: str = "",
        kind: Kind = Kind.TEMPORARY,
        status: str = "4.4.1",
    ) -> None:
        finished = self.dispatcher.options.clock()
        results = []
        for delivery in job.deliveries:
            reply = (replies or {}).get(delivery.recipient)
            if reply is None:
                results.append(
                    AttemptResult(
                        delivery,
                        job.message,
                        kind,
                        None,
                        status,
                        error or "no reply",
                        remote_host=smtp.host if smtp else self.route.key,
                        started_at=started,
                        finished_at=finished,
                    )  # fmt: skip
                )
                continue
            results.append(
                AttemptResult(
                    delivery,
                    job.message,
                    kind_of_reply(reply.code),
                    reply.code,
                    reply.enhanced_status,
                    str(reply),
                    remote_host=smtp.host if smtp else "",
                    is_tls=bool(smtp and smtp.is_tls),
                    started_at=started,
                    finished_at=finished,
                )  # fmt: skip
            )
        await self.dispatcher.record(results)
