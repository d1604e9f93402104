"""Lanes: the jobs of one route (relay, a destination's MX hosts, local mailboxes) and the SMTP
connections working them; part of the dispatcher (``delivery.py``).

A lane opens connections up to its limit (a Redis slot each, shared by all workers) while jobs
wait and no connection is idle; a connection sends job after job, waits for its results to be
committed before the next transaction, and closes after ``LINGER_SECONDS`` without work. A
failed connect marks the lane down for ``DOWN_SECONDS``: its jobs are deferred without trying.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings

from analytics.services.tracking import instrument_message
from mailcore.services.outbound import dispatch, throttle, verp
from mailcore.services.outbound.dispatch import ClaimedDelivery, ClaimedMessage
from mailcore.services.outbound.dkim import sign
from mailcore.services.outbound.local import deliver_locally
from mailcore.services.outbound.mx import Route, RouteError, resolve_hosts
from mailcore.services.outbound.results import AttemptResult
from mailcore.services.outbound.retry import Kind, kind_of_reply
from mailcore.services.outbound.smtp_client import SmtpConnection, SmtpConnectionError

if TYPE_CHECKING:
    from mailcore.services.outbound.delivery import Dispatcher

log = logging.getLogger(__name__)

MAX_TRANSACTIONS_PER_CONNECTION = 1000
LINGER_SECONDS = 2.0
DOWN_SECONDS = 30.0


@dataclass(slots=True)
class Job:
    route: Route
    message: ClaimedMessage
    deliveries: list[ClaimedDelivery]


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
        raw = message.raw
        if message.is_tracked:
            # Per recipient (the job holds one delivery): tracked links, the open pixel and
            # RFC 8058 List-Unsubscribe, as far as each is on, all signed, added before the
            # DKIM signature.
            raw = instrument_message(
                raw,
                organization_id=message.organization_id,
                delivery_id=job.deliveries[0].id,
                message_id=message.id,
                track_opens=message.track_opens,
                track_clicks=message.track_clicks,
                add_unsubscribe=message.track_unsubscribes,
            )
        key = self.dispatcher.keys.get(message.domain_name)
        if key is None:
            return raw
        try:
            return sign(raw, key)
        except Exception:
            log.exception("DKIM signing of message %s failed; sending unsigned", message.id)
            return raw

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
