"""Group commit for the SMTP receiver.

Sessions submit accepted transactions; a few writer tasks take whatever is waiting (up to a
batch size) and store it in one database transaction on a worker thread. Each session gets its
own outcome after the commit. Under load, batches grow and the cost of a commit is shared; when
idle, a batch is one message and nothing waits for a timer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from django.db import close_old_connections

from config.metrics import count_if_database_error, count_redis_error
from mailcore.services.inbound import InboundItem, InboundOutcome, Status, deliver_inbound
from mailcore.services.realtime import send_pushes
from mailcore.smtp import faults
from mailcore.smtp.threads import shutdown_with_connections

log = logging.getLogger(__name__)

StoreFunction = Callable[[Sequence[InboundItem]], list[InboundOutcome]]


def _store_on_thread(items: Sequence[InboundItem]) -> list[InboundOutcome]:
    close_old_connections()  # drops connections that broke (database restart) or aged out
    faults.pause("before_commit")
    outcomes = deliver_inbound(items, push=False)
    faults.pause("after_commit")
    return outcomes


class IngestQueue:
    def __init__(
        self, *, batch_size: int = 64, writers: int = 2, store: StoreFunction = _store_on_thread
    ) -> None:
        self.batch_size = batch_size
        self.writers = writers
        self.store = store
        self.executor = ThreadPoolExecutor(max_workers=writers, thread_name_prefix="ingest")
        self._queue: asyncio.Queue[tuple[InboundItem, asyncio.Future[InboundOutcome]]] = (
            asyncio.Queue()
        )
        self._tasks: list[asyncio.Task[None]] = []
        self.in_flight = 0

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._writer()) for _ in range(self.writers)]

    async def stop(self) -> None:
        """Finish what was submitted, then stop the writers."""
        await self._queue.join()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.to_thread(shutdown_with_connections, self.executor, self.writers)

    async def submit(self, item: InboundItem) -> InboundOutcome:
        future: asyncio.Future[InboundOutcome] = asyncio.get_running_loop().create_future()
        self.in_flight += 1
        try:
            await self._queue.put((item, future))
            return await asyncio.shield(future)
        finally:
            self.in_flight -= 1

    async def _writer(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._store(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _store(self, batch: list[tuple[InboundItem, asyncio.Future[InboundOutcome]]]) -> None:
        """Store one batch and resolve every future in it, whatever happens."""
        items = [item for item, _ in batch]
        try:
            outcomes = await asyncio.get_running_loop().run_in_executor(
                self.executor, self.store, items
            )
        except Exception as exc:
            count_if_database_error("smtp_ingest", exc)
            log.exception("ingest batch failed")
            outcomes = [InboundOutcome(Status.FAILED) for _ in items]
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)
        try:
            await send_pushes([push for outcome in outcomes for push in outcome.pushes])
        except Exception:  # a push is a hint; never let it stop the writer
            count_redis_error("new_mail_push")
            log.warning("new-mail pushes failed", exc_info=True)
