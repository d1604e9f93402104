"""Worker threads that hold Django database connections."""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

from django.db import connections


def shutdown_with_connections(executor: ThreadPoolExecutor, workers: int) -> None:
    """Close each worker thread's database connection, then shut the pool down.

    A barrier makes every one of the ``workers`` threads run exactly one closing task.
    """
    barrier = threading.Barrier(workers, timeout=10)

    def close() -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()
        connections.close_all()

    futures = [executor.submit(close) for _ in range(workers)]
    for future in futures:
        future.result(timeout=15)
    executor.shutdown(wait=True)
