"""Event ingestion, live lag, rollup lag and stats query times.

    python bench/events.py [--seconds 20] [--connections 32] [--worker-rate 3000]
                           [--events 10000000] [--skip-ingest] [--skip-stats] [--reseed]
                           [--live publisher|timer]

Runs in a private database (``mailroom_bench_events``) and Redis database 11.

1. Ingest: ``gunicorn -k uvicorn.workers.UvicornWorker config.asgi:application`` (2 workers)
   serves the signed open pixel and click redirect; an asyncio client (keep-alive, stdlib)
   fetches them over ``--connections`` connections while a worker process records delivery
   events the way outbound workers do (``record_events`` batches of 200 per transaction) at
   ``--worker-rate`` events/s. Live updates come from ``manage.py live_publisher`` in its own
   process (``--live publisher``: pushed within 0.25 s of a committed batch, plus a tick each
   second) or, with ``--live timer``, from a thread playing the beat task (one update per
   second, aligned to the second) as before; the minute rollup is filled every 5 s. Marker
   events (type ``complained``, not otherwise produced) measure the lag from commit to the live
   stream (the operators' Channels group) and to the minute rollup. Prints events/s stored
   (counted in the table).
2. Stats: seeds ``--events`` events over 90 days with ``COPY`` (psycopg 3), fills the rollups
   in SQL (timed), then times ``analytics.services.stats.event_counts`` and the event search.

Goals: >= 5,000 events/s with live lag < 1 s; stats queries < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, bench_database_url, free_port, recreate_database  # noqa: E402
from bench.httpload import http_request  # noqa: E402

DATABASE_NAME = "mailroom_bench_events"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
TYPES = ["sent", "delivered", "delivered", "delivered", "opened", "opened", "clicked", "bounced"]
DOMAINS = [f"brand{n}.test" for n in range(20)]
TAGS = ["newsletter", "receipt", "promo", "welcome", "digest", "alert"]


def setup(url: str) -> None:
    os.environ.update(DATABASE_URL=url, REDIS_URL=REDIS_URL, DEBUG="0", LOG_LEVEL="WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from analytics.services.partitions import ensure_partitions

    ensure_partitions()


# --- 1. ingest ----------------------------------------------------------------------------------


async def http_client(host: str, port: int, paths: list[str], stop_at: float, counts: list[int]):
    reader, writer = await asyncio.open_connection(host, port)
    index = random.randrange(len(paths))
    while time.monotonic() < stop_at:
        path = paths[index % len(paths)]
        index += 1
        headers = {"User-Agent": "bench/1"}
        response = await http_request(reader, writer, "GET", path, headers=headers)
        if response.status in (200, 302):
            counts[0] += 1
        else:
            counts[1] += 1
    writer.close()


def delivery_worker(url: str, rate: int, seconds: float, result: multiprocessing.Queue) -> None:
    setup(url)
    from django.db import transaction

    from analytics.services.events import EventInput, record_events

    batch, sent, start = 200, 0, time.monotonic()
    while time.monotonic() - start < seconds:
        with transaction.atomic():
            record_events(
                EventInput(
                    organization_id=1,
                    type=random.choice(["delivered", "delivered", "deferred", "bounced"]),
                    message_id=random.randrange(10**6),
                    recipient=f"user{random.randrange(10**5)}@remote.test",
                    tags=[random.choice(TAGS)],
                    payload={"domain": random.choice(DOMAINS), "delivery_id": sent},
                )
                for _ in range(batch)
            )
        sent += batch
        ahead = sent / rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)
    result.put(sent)


def live_listener(marks: dict[int, float], lags: list[float], stop: threading.Event) -> None:
    from channels.layers import get_channel_layer

    from analytics.services.live import OPERATORS_GROUP

    async def run() -> None:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(OPERATORS_GROUP, channel)
        while not stop.is_set():
            try:
                message = await asyncio.wait_for(layer.receive(channel), 1.0)
            except TimeoutError:
                continue
            seen = message["hour"].get("complained", 0)
            now = time.time()
            for number in sorted(marks):
                if number <= seen:
                    lags.append(now - marks.pop(number))

    try:
        asyncio.run(run())
    except Exception as exc:  # noqa: BLE001 - report, the rest of the bench goes on
        print("live listener failed:", repr(exc))


def ingest(url: str, args: argparse.Namespace) -> None:
    from django.db import connection, transaction
    from django_redis import get_redis_connection

    from analytics.models import EventRollup
    from analytics.services import live, rollups, tracking
    from analytics.services.events import record_event
    from analytics.services.publisher import is_publisher_running

    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": REDIS_URL,
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "ALLOWED_HOSTS": "127.0.0.1",
    }
    kind = (
        ["-k", "uvicorn.workers.UvicornWorker", "config.asgi:application"]
        if args.server == "asgi"
        else ["-k", "gthread", "--threads", "8", "config.wsgi:application"]
    )
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            str(args.workers),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            *kind,
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        time.sleep(4)
        paths = []
        for n in range(200):
            target = tracking.Target(1, None, n, f"https://shop.test/item/{n}")
            paths.append(urlsplit(tracking.tracking_url("open", target)).path)
            paths.append(urlsplit(tracking.tracking_url("click", target)).path)
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE analytics_event, analytics_eventrollup, analytics_fillstate")
        get_redis_connection("default").flushdb()  # Redis database 11: the bench's own
        rollups.fill_rollup("minute")  # the fill state starts at now

        stop = threading.Event()
        marks: dict[int, float] = {}
        live_lags: list[float] = []
        rollup_marks: dict[int, float] = {}
        rollup_lags: list[float] = []

        live_ready = threading.Event()

        def broadcaster() -> None:
            if args.live == "publisher":  # its own process, as in production
                publisher = subprocess.Popen(
                    [sys.executable, "manage.py", "live_publisher"],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                )
                for _ in range(300):  # running (as in production) before the load starts
                    if is_publisher_running() or publisher.poll() is not None:
                        break
                    time.sleep(0.1)
                live_ready.set()
                stop.wait()
                publisher.terminate()
                publisher.wait(timeout=10)
                return
            live_ready.set()
            while not stop.is_set():
                live.broadcast_live_update()
                stop.wait(1.0 - time.time() % 1.0)

        def filler() -> None:
            while not stop.is_set() or rollup_marks:
                rollups.fill_rollup("minute")
                done = EventRollup.objects.filter(
                    resolution="minute", type="complained", tag=""
                ).values_list("count", flat=True)
                total, now = sum(done), time.time()
                for number in sorted(rollup_marks):
                    if number <= total:
                        rollup_lags.append(now - rollup_marks.pop(number))
                time.sleep(5)
                if stop.is_set() and time.time() - stop_time > 120:
                    break
            connection.close()

        stop_time = float("inf")
        threads = [threading.Thread(target=t, daemon=True) for t in (broadcaster, filler)]
        threads.append(
            threading.Thread(target=live_listener, args=(marks, live_lags, stop), daemon=True)
        )
        for thread in threads:
            thread.start()
        live_ready.wait(60)
        spawn = multiprocessing.get_context("spawn")
        results: multiprocessing.Queue = spawn.Queue()
        worker = spawn.Process(
            target=delivery_worker, args=(url, args.worker_rate, args.seconds, results)
        )
        worker.start()

        counts = [0, 0]

        async def load() -> None:
            stop_at = time.monotonic() + args.seconds
            clients = [
                http_client("127.0.0.1", port, paths, stop_at, counts)
                for _ in range(args.connections)
            ]

            async def markers() -> None:
                number = 0
                while time.monotonic() < stop_at:
                    await asyncio.sleep(0.73)
                    number += 1
                    await asyncio.to_thread(_marker, number)

            await asyncio.gather(*clients, markers())

        def _marker(number: int) -> None:
            with transaction.atomic():
                record_event(2, "complained", payload={"domain": "marker.test"})
            committed = time.time()
            marks[number] = committed
            rollup_marks[number] = committed
            connection.close()

        started = time.time()
        asyncio.run(load())
        worker.join()
        worker_events = results.get()
        elapsed = time.time() - started
        time.sleep(0.5)  # the pixel servers' buffers flush within 100 ms
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM analytics_event WHERE organization_id = 1")
            stored = cursor.fetchone()[0]
        stop_time = time.time()
        stop.set()
        threads[0].join(timeout=15)  # the publisher process is stopped
        print("\n== Ingest ==")
        print(
            f"duration {elapsed:.1f} s; HTTP opens/clicks ok {counts[0]} "
            f"({counts[0] / elapsed:,.0f}/s), errors {counts[1]}"
        )
        print(
            f"delivery events recorded by the worker process: {worker_events} "
            f"({worker_events / elapsed:,.0f}/s)"
        )
        print(
            f"events stored: {stored} -> {stored / elapsed:,.0f} events/s "
            f"(expected {counts[0] + worker_events})"
        )
        if live_lags:
            print(
                f"live lag (commit -> operators' group, {args.live}): n={len(live_lags)} "
                f"p50 {statistics.median(live_lags):.3f} s, max {max(live_lags):.3f} s"
            )
        threads[1].join(timeout=150)
        if rollup_lags:
            print(
                f"minute-rollup lag: n={len(rollup_lags)} p50 "
                f"{statistics.median(rollup_lags):.1f} s, max {max(rollup_lags):.1f} s"
            )
    finally:
        server.terminate()
        server.wait(timeout=10)


# --- 2. stats over N events ---------------------------------------------------------------------


def seed(url: str, total: int) -> None:
    import psycopg

    from analytics.services.partitions import ensure_partitions

    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(days=90)
    for offset in range(92):
        ensure_partitions(today=(start + timedelta(days=offset)).date(), ahead=0)
    rng = random.Random(7)
    span = int((end - start).total_seconds())
    began = time.monotonic()
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        with cursor.copy(
            "COPY analytics_event (organization_id, type, occurred_at, message_id, recipient,"
            " tags, payload) FROM STDIN"
        ) as copy:
            for n in range(total):
                when = start + timedelta(seconds=rng.randrange(span))
                kind = rng.choice(TYPES)
                reason = "userunknown" if kind == "bounced" else ""
                copy.write_row(
                    (
                        1 + n % 50,
                        kind,
                        when,
                        n // 3,
                        f"user{n % 200_000}@remote.test",
                        "{" + rng.choice(TAGS) + "}",
                        f'{{"domain": "{rng.choice(DOMAINS)}", "reason": "{reason}"}}',
                    )
                )
        conn.commit()
        cursor.execute("ANALYZE analytics_event")
    print(f"seeded {total:,} events with COPY in {time.monotonic() - began:.0f} s")


def fill_until_done() -> int:
    """What successive beat runs do: each run fills at most 500 chunks per resolution."""
    from analytics.services import rollups

    total = 0
    while True:
        done = sum(rollups.fill_all_rollups().values())
        total += done
        if not done:
            return total


def stats(url: str, args: argparse.Namespace) -> None:
    from django.db import connection

    from analytics.services.search import EventQuery, search_events
    from analytics.services.stats import event_counts

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM analytics_event")
        existing = cursor.fetchone()[0]
    if args.reseed or existing < args.events:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE analytics_event, analytics_eventrollup, analytics_fillstate")
        seed(url, args.events)
    began = time.monotonic()
    chunks = fill_until_done()
    if chunks:
        print(f"rollups filled in {time.monotonic() - began:.0f} s ({chunks} chunks)")
    with connection.cursor() as cursor:
        cursor.execute("SELECT resolution, count(*) FROM analytics_eventrollup GROUP BY 1")
        print("rollup rows:", dict(cursor.fetchall()))
    now = datetime.now(UTC)
    cases = {
        "90 days by day": {"start": now - timedelta(days=90), "resolution": "day"},
        "7 days by hour": {"start": now - timedelta(days=7), "resolution": "hour"},
        "1 year by month": {"start": now - timedelta(days=365), "resolution": "month"},
        "30 days by day, one domain": {
            "start": now - timedelta(days=30),
            "resolution": "day",
            "domain": "brand3.test",
        },
        "30 days by day, one tag": {
            "start": now - timedelta(days=30),
            "resolution": "day",
            "tag": "promo",
        },
        "2 days by hour, 2 types": {
            "start": now - timedelta(days=2),
            "resolution": "hour",
            "event_types": ["delivered", "bounced"],
        },
    }
    print("\n== Stats (event_counts, 20 runs each, organization 7) ==")
    for name, kwargs in cases.items():
        times = []
        for _ in range(20):
            began = time.perf_counter()
            rows = event_counts(organization_id=7, end=now, **kwargs)  # type: ignore[arg-type]
            times.append((time.perf_counter() - began) * 1000)
        total = sum(sum(r["counts"].values()) for r in rows)
        print(
            f"{name:32} p50 {statistics.median(times):6.1f} ms  max {max(times):6.1f} ms"
            f"  ({len(rows)} buckets, {total:,} events)"
        )
    for label, days in (("event search by recipient", None), ("  same, last 7 days", 7)):
        times, found_total = [], 0
        for n in range(20):
            index = 1 + n * 9973
            query = EventQuery(
                organization_id=1 + index % 50,
                recipient=f"user{index}@remote.test",
                start=now - timedelta(days=days) if days else None,
            )
            began = time.perf_counter()
            found_total += len(search_events(query))
            times.append((time.perf_counter() - began) * 1000)
        print(
            f"{label:32} p50 {statistics.median(times):6.1f} ms  max {max(times):6.1f} ms"
            f"  ({found_total / 20:.0f} events per search)"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--worker-rate", type=int, default=3000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-stats", action="store_true")
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--server", choices=["asgi", "wsgi"], default="asgi")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--fresh-db", action="store_true")
    parser.add_argument("--live", choices=["publisher", "timer"], default="publisher")
    args = parser.parse_args()
    url = bench_database_url(DATABASE_NAME)
    if args.fresh_db:
        recreate_database(url)
    try:
        setup(url)
        migrate()
    except Exception:  # noqa: BLE001 - first run: the database does not exist yet
        recreate_database(url)
        from django.db import connection

        connection.close()
        migrate()
    if not args.skip_ingest:
        ingest(url, args)
    if not args.skip_stats:
        stats(url, args)


if __name__ == "__main__":
    main()
