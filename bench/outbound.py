"""Outbound delivery end to end: submit_outbound -> dispatcher -> relay -> Postfix's smtp-sink,
next to Postfix relaying the same load to the same kind of sink (smtp-source style load ->
postfix -> smtp-sink). Also the bounce parser's speed over the corpus.

    python bench/outbound.py [--messages 5000] [--submitters 2] [--threads 16] [--workers 1]
                             [--connections 30] [--size 4096] [--no-dkim-run] [--no-postfix]

Mailroom: ``--submitters`` processes call ``submit_outbound`` (as API or webmail workers would),
``--workers`` ``manage.py deliver`` processes deliver through MAILROOM_RELAY_HOST to smtp-sink.
End to end is from the first submit until the database records the last delivery; latency is
each delivery's ``delivered_at - created_at`` (accept to delivered), p50/p99.
Everything runs on 127.0.0.1 against a private ``mailroom_bench_outbound`` database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    bench_database_url,
    free_port,
    recreate_database,
    setup_django,
    start_manage,
)
from bench.smtpload import run_load, text_message_factory  # noqa: E402

SENDER_DOMAIN = "bench-out.test"
CORPUS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "bounces"


def _submit_chunk(
    first: int, count: int, size: int, organization_id: int, threads: int, ready, go, out
) -> None:  # type: ignore[no-untyped-def]  # noqa: E501
    """A spawned submitter: set up Django, wait for the start signal, submit ``count`` from
    ``threads`` threads (as an API or submission server's threads would; concurrent callers
    share group commits)."""
    from concurrent.futures import ThreadPoolExecutor

    import django

    django.setup()
    from django.db import connections

    from mailcore.services.outbound import submit_outbound

    make = text_message_factory(f"sender@{SENDER_DOMAIN}", ["user{n}@sink.test"], size)
    messages = [make(i) for i in range(first, first + count)]
    submit_outbound(organization_id=organization_id, mail_from=messages[0][0],
                    recipients=["warmup@sink.test"], raw=messages[0][2], source="api")  # fmt: skip
    ready.put(1)
    go.wait()
    started = time.perf_counter()

    def one(message: tuple[str, list[str], bytes]) -> None:
        sender, rcpts, raw = message
        submit_outbound(organization_id=organization_id, mail_from=sender, recipients=rcpts,
                        raw=raw, source="api")  # fmt: skip

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, messages))
    out.put(time.perf_counter() - started)
    connections.close_all()


def run_mailroom(args: argparse.Namespace, url: str, *, dkim: bool) -> dict[str, float]:
    from django.db import connection, connections
    from django_redis import get_redis_connection

    from bench.peers import start_smtp_sink, stop_smtp_sink
    from mailcore.models import Delivery
    from mailcore.services.outbound import dkim as dkim_keys
    from mailcore.services.provisioning import create_domain

    get_redis_connection("default").flushdb()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE mailcore_outboundmessage, mailcore_delivery, mailcore_deliveryattempt,"
            " mailcore_dkimkey, mailcore_blob, analytics_event CASCADE"
        )
    domain = create_domain(SENDER_DOMAIN)
    if dkim:
        dkim_keys.create_key(domain, "bench")
    organization_id = domain.organization_id
    sink_port = free_port()
    sink = start_smtp_sink(sink_port, "-c")
    env = {"MAILROOM_RELAY_HOST": f"127.0.0.1:{sink_port}",
           "MAILROOM_OUTBOUND_CONNECTIONS": str(args.connections)}  # fmt: skip
    workers = [start_manage(["deliver"], url, **env) for _ in range(args.workers)]
    connections.close_all()
    time.sleep(2)  # workers import Django and start polling
    try:
        context = multiprocessing.get_context("spawn")
        queue, ready, go = context.Queue(), context.Queue(), context.Event()
        per = args.messages // args.submitters
        children = [
            context.Process(
                target=_submit_chunk,
                args=(n * per, per, args.size, organization_id, args.threads, ready, go, queue),
            )  # fmt: skip
            for n in range(args.submitters)
        ]
        for child in children:
            child.start()
        for _ in children:
            ready.get(timeout=120)
        time.sleep(1)  # the warm-up messages are delivered before the clock starts
        Delivery.objects.filter(recipient="warmup@sink.test").delete()
        connections.close_all()
        started = time.perf_counter()
        go.set()
        total = per * args.submitters
        accept_s = max(queue.get() for _ in children)
        for child in children:
            child.join()
        delivered = 0
        while time.perf_counter() - started < 600:
            delivered = Delivery.objects.filter(status="delivered").count()
            if delivered >= total:
                break
            time.sleep(0.05)
        e2e_s = time.perf_counter() - started
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP"
                " (ORDER BY extract(epoch FROM delivered_at - created_at))"
                " FROM mailcore_delivery WHERE status = 'delivered'"
            )
            p50, p99 = cursor.fetchone()[0]
            cursor.execute(
                "SELECT count(*), count(DISTINCT m.id) FROM mailcore_deliveryattempt a"
                " JOIN mailcore_delivery d ON d.id = a.delivery_id"
                " JOIN mailcore_outboundmessage m ON m.id = d.message_id"
            )
            attempts, _ = cursor.fetchone()
        figures = {
            "messages": total, "delivered": delivered, "attempts": attempts,
            "accept_msgs_per_s": total / accept_s, "end_to_end_s": e2e_s,
            "end_to_end_msgs_per_s": delivered / e2e_s, "p50_ms": p50 * 1000, "p99_ms": p99 * 1000,
            "sink_count": sink.messages(),
        }  # fmt: skip
        label = "with DKIM" if dkim else "without DKIM"
        print(
            f"mailroom {label}: {total} accepted in {accept_s:.2f}s"
            f" = {figures['accept_msgs_per_s']:.0f} msg/s; {delivered} delivered after"
            f" {e2e_s:.2f}s = {figures['end_to_end_msgs_per_s']:.0f} msg/s end to end;"
            f" accept-to-delivered p50 {figures['p50_ms']:.0f} ms, p99 {figures['p99_ms']:.0f} ms;"
            f" {attempts} attempts, smtp-sink counted {figures['sink_count']}"
        )
        return figures
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(20)
            except Exception:
                worker.kill()
        stop_smtp_sink(sink)
        connections.close_all()


def run_postfix(args: argparse.Namespace) -> dict[str, float]:
    from bench.peers import start_postfix, start_smtp_sink, stop_all, stop_smtp_sink

    sink_port, port = free_port(), free_port()
    sink = start_smtp_sink(sink_port, "-c")
    try:
        start_postfix(port, relay_port=sink_port)
        make = text_message_factory("loadgen@smtpload.localhost", ["user{n}@sink.test"], args.size)
        started = time.perf_counter()
        result = asyncio.run(run_load("127.0.0.1", port, messages=args.messages, sessions=20,
                                      messages_per_session=None, make_message=make))  # fmt: skip
        while sink.messages() < result.ok and time.perf_counter() - started < 600:
            time.sleep(0.05)
        e2e = time.perf_counter() - started
        figures = {"accepted": result.ok, "accept_msgs_per_s": result.msgs_per_s,
                   "end_to_end_s": e2e, "end_to_end_msgs_per_s": sink.messages() / e2e}  # fmt: skip
        print(
            f"postfix relay: {result.ok} accepted = {result.msgs_per_s:.0f} msg/s;"
            f" {sink.messages()} at the sink after {e2e:.2f}s = "
            f"{figures['end_to_end_msgs_per_s']:.0f} msg/s end to end"
        )
        return figures
    finally:
        stop_smtp_sink(sink)
        stop_all()


def run_bounce_parser() -> dict[str, float]:
    from mailcore.bounces import parse_bounce

    files = sorted((CORPUS / "maildir").rglob("*.eml"))
    blobs = [path.read_bytes() for path in files]
    for blob in blobs:
        parse_bounce(blob)
    started = time.perf_counter()
    rounds = 5
    for _ in range(rounds):
        for blob in blobs:
            parse_bounce(blob)
    elapsed = time.perf_counter() - started
    rate = len(blobs) * rounds / elapsed
    print(f"bounce parser: {len(blobs)} corpus files x {rounds} = {rate:.0f} msg/s")
    return {"files": len(blobs), "msgs_per_s": rate}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)  # fmt: skip
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--submitters", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16, help="per submitter process")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--connections", type=int, default=30, help="per worker")
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--no-dkim-run", action="store_true", help="skip the DKIM-signed run")
    parser.add_argument("--no-postfix", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
    url = bench_database_url("mailroom_bench_outbound")
    recreate_database(url)
    setup_django(url)
    figures: dict[str, dict[str, float]] = {}
    figures["mailroom"] = run_mailroom(args, url, dkim=False)
    if not args.no_dkim_run:
        figures["mailroom_dkim"] = run_mailroom(args, url, dkim=True)
    if not args.no_postfix:
        figures["postfix"] = run_postfix(args)
        ratio = (
            figures["mailroom"]["end_to_end_msgs_per_s"]
            / figures["postfix"]["end_to_end_msgs_per_s"]
        )
        print(f"ratio mailroom/postfix end to end (same load, no DKIM on either): {ratio:.2f}")
        if "mailroom_dkim" in figures:
            ratio = (figures["mailroom_dkim"]["end_to_end_msgs_per_s"]
                     / figures["postfix"]["end_to_end_msgs_per_s"])  # fmt: skip
            print(f"ratio mailroom with DKIM/postfix without: {ratio:.2f}")
    if CORPUS.exists():
        figures["bounce_parser"] = run_bounce_parser()
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
