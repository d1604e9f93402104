"""A 10x spike against a running Mailroom: the API send endpoint and the SMTP receiver together.

    python bench/spike.py [--quick] [--steady-seconds 120] [--spike-seconds 60] [--factor 10]
                          [--api-rate 10] [--smtp-rate 10] [--api-limit N]
                          [--smtp-max-connections 16] [--recovery-seconds 300]

1. Recreates the ``mailroom_bench_spike`` database (Redis database 13, or ``BENCH_REDIS_URL``),
   creates 10 mailboxes and an API key, and starts what production runs: gunicorn with uvicorn
   workers (``--web-workers``), the SMTP receiver (``manage.py smtpd``, connection cap
   ``--smtp-max-connections``), ``--delivery-workers`` outbound workers relaying to Postfix's
   ``smtp-sink``. The API runs with a tenant token bucket of ``--api-limit`` sends/s (default
   3x the steady API rate), so a 10x spike meets the rate limiter.
2. Offers open-loop load (arrivals on a fixed schedule, whatever the answers): ``--api-rate``
   ``POST /api/v1/messages/`` per second over up to ``--api-connections`` keep-alive connections
   (a request waits for a free one, and its latency counts from its scheduled arrival), and
   ``--smtp-rate`` inbound messages per second, each on a connection of its own (many
   independent MTAs). Steady for ``--steady-seconds``, then ``--factor`` times that for
   ``--spike-seconds``, then steady again until the outbound queue has recovered (at most
   ``--recovery-seconds``).
3. Prints, per phase: accepted, refused (API: 429 or 503 with Retry-After; SMTP: 421/451/452)
   and errors, latency p50/p99; then **lost** (accepted but not in the database: every accepted
   send id and every 250'd Message-ID is looked up; must be 0) and the **recovery time**: from
   the end of the spike until the age of the oldest due outbound delivery is back under normal
   (``--normal-age``, default twice the steady phase's p95, at least 1 s) for 3 samples in a row.

``--quick`` is a 1-minute smoke run at lower rates (steady 15 s, spike 15 s, recovery <= 60 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    bench_database_url,
    free_port,
    recreate_database,
    setup_django,
    start_manage,
    start_web,
    stop_processes,
    wait_for_banner,
    wait_for_http,
)
from bench.httpload import http_request  # noqa: E402
from bench.smtpload import (  # noqa: E402
    LoadResult,
    SmtpError,
    percentile,
    send_message,
    text_message_factory,
)

DOMAIN = "spike.test"
MAILBOXES = 10
PHASES = ("steady", "spike", "after")
PRESETS = {
    "full": {"steady_seconds": 120, "spike_seconds": 60, "recovery_seconds": 300,
             "api_rate": 10.0, "smtp_rate": 10.0},
    "quick": {"steady_seconds": 15, "spike_seconds": 15, "recovery_seconds": 60,
              "api_rate": 4.0, "smtp_rate": 4.0},
}  # fmt: skip
SMTP_REFUSALS = (421, 451, 452)
IDLE_RECONNECT_SECONDS = 1.0  # gunicorn closes idle keep-alive connections after 2 s
WARM_UP = 10
WEB_LOG = Path(tempfile.gettempdir()) / "mailroom-bench-spike-web.log"
_MESSAGE_ID = re.compile(rb"Message-ID: <([^>]+)>")


@dataclass
class ApiTally:
    accepted_ids: list[int] = field(default_factory=list)
    refused: dict[int, int] = field(default_factory=dict)  # 429/503 with Retry-After
    refused_without_retry_after: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # other statuses, connection failures
    latencies_ms: list[float] = field(default_factory=list)


@dataclass
class SmtpTally:
    result: LoadResult = field(default_factory=lambda: LoadResult(requested=0))
    accepted_ids: list[str] = field(default_factory=list)
    connection_errors: int = 0


class Schedule:
    """Which phase a moment belongs to, and the offered rate then."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.started = time.monotonic()
        self.spike_at = self.started + args.steady_seconds
        self.spike_end = self.spike_at + args.spike_seconds
        self.factor = args.factor
        self.stop = asyncio.Event()

    def phase(self, moment: float) -> str:
        if moment < self.spike_at:
            return "steady"
        return "spike" if moment < self.spike_end else "after"

    def rate(self, base: float, moment: float) -> float:
        return base * (self.factor if self.phase(moment) == "spike" else 1)


async def arrivals(schedule: Schedule, base_rate: float, emit: Callable[[int, float], None]):  # type: ignore[no-untyped-def]
    """Call emit(sequence number, scheduled time) on a fixed schedule until told to stop."""
    number, due = 0, schedule.started
    while not schedule.stop.is_set():
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        emit(number, due)
        number += 1
        due += 1 / schedule.rate(base_rate, due)


async def api_connection(port: int, queue: asyncio.Queue, key: str, tallies: dict) -> None:  # type: ignore[type-arg]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    last_used = 0.0
    while True:
        item = await queue.get()
        if item is None:
            break
        if connection is not None and time.monotonic() - last_used > IDLE_RECONNECT_SECONDS:
            connection[1].close()  # the server may be closing it right now
            connection = None
        number, due, phase = item
        tally: ApiTally = tallies[phase]
        body = json.dumps({
            "from": f"Spike <sender@{DOMAIN}>", "to": [f"rcpt{number}@sink.test"],
            "subject": f"spike {number}", "text": "Hello from the spike benchmark.\n" * 40,
        }).encode()  # fmt: skip
        try:
            if connection is None:
                connection = await asyncio.open_connection("127.0.0.1", port)
            response = await asyncio.wait_for(
                http_request(*connection, "POST", "/api/v1/messages/", headers=headers, body=body),
                60,
            )
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            tally.errors[type(exc).__name__] = tally.errors.get(type(exc).__name__, 0) + 1
            if connection is not None:
                connection[1].close()
            connection = None
            continue
        last_used = time.monotonic()
        tally.latencies_ms.append((last_used - due) * 1000)
        if response.status == 202:
            tally.accepted_ids.append(json.loads(response.body)["id"])
        elif response.status in (429, 503) and response.headers.get("retry-after"):
            tally.refused[response.status] = tally.refused.get(response.status, 0) + 1
        elif response.status in (429, 503):
            tally.refused_without_retry_after += 1
        else:
            name = f"HTTP {response.status}"
            tally.errors[name] = tally.errors.get(name, 0) + 1
    if connection is not None:
        connection[1].close()


async def smtp_message(port: int, message: tuple[str, list[str], bytes], tally: SmtpTally) -> None:
    try:
        code = await send_message("127.0.0.1", port, message, tally.result, timeout=60)
    except (OSError, TimeoutError, SmtpError, asyncio.IncompleteReadError):
        tally.connection_errors += 1
        return
    if code < 300:
        found = _MESSAGE_ID.search(message[2])
        assert found is not None
        tally.accepted_ids.append(found[1].decode())


def queue_age() -> tuple[int, float]:
    """(due outbound deliveries, age in seconds of the oldest one), from the database."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), coalesce(extract(epoch FROM now() - min(next_attempt_at)), 0)"
            " FROM mailcore_delivery WHERE status IN ('queued', 'deferred')"
            " AND next_attempt_at <= now()"
        )
        count, age = cursor.fetchone()
    return int(count), float(age)


@dataclass
class Recovery:
    samples: list[tuple[float, str, int, float]] = field(default_factory=list)  # t, phase, n, age
    threshold: float = 0.0
    seconds: float | None = None  # from the end of the spike; None = not within the limit


async def watch_queue(schedule: Schedule, args: argparse.Namespace, recovery: Recovery) -> None:
    """Sample the queue age twice a second; stop the load once it is back to normal."""
    under = 0
    while True:
        count, age = await asyncio.to_thread(queue_age)
        now = time.monotonic()
        phase = schedule.phase(now)
        recovery.samples.append((now - schedule.started, phase, count, age))
        if phase == "spike" and not recovery.threshold:
            steady = sorted(a for _, p, _, a in recovery.samples if p == "steady")
            recovery.threshold = args.normal_age or max(1.0, 2 * percentile(steady, 95))
        if phase == "after":
            under = under + 1 if age <= recovery.threshold else 0
            if under == 3:
                first_normal = recovery.samples[-3][0] + schedule.started
                recovery.seconds = max(0.0, first_normal - schedule.spike_end)
                break
            if now - schedule.spike_end > args.recovery_seconds:
                break
        await asyncio.sleep(0.5)
    schedule.stop.set()


async def drive(args: argparse.Namespace, web_port: int, smtp_port: int, key: str):  # type: ignore[no-untyped-def]
    api = {phase: ApiTally() for phase in ("warm-up", *PHASES)}
    smtp = {phase: SmtpTally() for phase in ("warm-up", *PHASES)}
    make = text_message_factory("sender@remote.test", [f"user{{n}}@{DOMAIN}"], args.size, MAILBOXES)
    # A few untimed sends first (first requests import code and open pools); counted as lost
    # like the rest if they go missing.
    warm_up: asyncio.Queue = asyncio.Queue()  # type: ignore[type-arg]
    for number in range(WARM_UP):
        warm_up.put_nowait((10**9 + number, time.monotonic(), "warm-up"))
    warm_up.put_nowait(None)
    await asyncio.gather(
        api_connection(web_port, warm_up, key, api),
        *(smtp_message(smtp_port, make(10**9 + n), smtp["warm-up"]) for n in range(WARM_UP)),
    )
    schedule = Schedule(args)
    recovery = Recovery()
    queue: asyncio.Queue = asyncio.Queue()  # type: ignore[type-arg]
    in_flight: set[asyncio.Task[None]] = set()

    def emit_api(number: int, due: float) -> None:
        queue.put_nowait((number, due, schedule.phase(due)))

    def emit_smtp(number: int, due: float) -> None:
        tally = smtp[schedule.phase(due)]
        tally.result.requested += 1
        task = asyncio.create_task(smtp_message(smtp_port, make(number), tally))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)

    connections = [
        asyncio.create_task(api_connection(web_port, queue, key, api))
        for _ in range(args.api_connections)
    ]
    await asyncio.gather(
        arrivals(schedule, args.api_rate, emit_api),
        arrivals(schedule, args.smtp_rate, emit_smtp),
        watch_queue(schedule, args, recovery),
    )
    for _ in connections:
        queue.put_nowait(None)
    await asyncio.gather(*connections, *in_flight)
    elapsed = {
        "steady": args.steady_seconds,
        "spike": args.spike_seconds,
        "after": time.monotonic() - schedule.spike_end,
    }
    return api, smtp, recovery, elapsed


def count_lost(api: dict[str, ApiTally], smtp: dict[str, SmtpTally]) -> tuple[int, int]:
    """Accepted sends without their OutboundMessage and deliveries; 250'd mail not stored."""
    from django.db.models import Count

    from mailcore.models import Message, OutboundMessage

    send_ids = {i for tally in api.values() for i in tally.accepted_ids}
    found = set(
        OutboundMessage.objects.filter(id__in=send_ids)
        .annotate(delivery_count=Count("deliveries"))
        .filter(delivery_count=1)
        .values_list("id", flat=True)
    )
    message_ids = {i for tally in smtp.values() for i in tally.accepted_ids}
    stored = set(
        Message.objects.filter(message_id__in=message_ids).values_list("message_id", flat=True)
    )
    return len(send_ids - found), len(message_ids - stored)


def outbound_outcome() -> dict[str, int]:
    from django.db.models import Count

    from mailcore.models import Delivery

    rows = Delivery.objects.values("status").annotate(n=Count("id")).order_by("status")
    return {row["status"]: row["n"] for row in rows}


def pct(values: list[float], p: float) -> float:
    return percentile(sorted(values), p)


def print_report(args, api, smtp, recovery, elapsed, lost, load) -> None:  # type: ignore[no-untyped-def]
    print(
        f"\nspike: steady {args.api_rate:g} API sends/s + {args.smtp_rate:g} inbound msg/s for"
        f" {args.steady_seconds} s, x{args.factor:g} for {args.spike_seconds} s, then steady"
        f" until recovered; API limit {args.api_limit:g}/s per tenant, receiver cap"
        f" {args.smtp_max_connections} connections, web workers {args.web_workers},"
        f" delivery workers {args.delivery_workers}; {os.cpu_count()} cores, load average"
        f" {load[0]:.1f} -> {load[1]:.1f}{' (quick run)' if args.quick else ''}"
    )
    print(
        f"{'phase':7} {'s':>4} | {'API offered':>11} {'accepted':>8} {'refused':>7}"
        f" {'errors':>6} {'p50 ms':>7} {'p99 ms':>7} | {'SMTP offered':>12} {'accepted':>8}"
        f" {'refused':>7} {'errors':>6} {'p50 ms':>7} {'p99 ms':>7}"
    )
    for phase in PHASES:
        a, s = api[phase], smtp[phase]
        offered = len(a.accepted_ids) + sum(a.refused.values()) + sum(a.errors.values())
        offered += a.refused_without_retry_after
        refused_smtp = sum(n for code, n in s.result.codes.items() if code in SMTP_REFUSALS)
        other = sum(n for code, n in s.result.codes.items() if code >= 300) - refused_smtp
        print(
            f"{phase:7} {elapsed[phase]:4.0f} | {offered:11d} {len(a.accepted_ids):8d}"
            f" {sum(a.refused.values()) + a.refused_without_retry_after:7d}"
            f" {sum(a.errors.values()):6d} {pct(a.latencies_ms, 50):7.0f}"
            f" {pct(a.latencies_ms, 99):7.0f} | {s.result.requested:12d} {len(s.accepted_ids):8d}"
            f" {refused_smtp:7d} {other + s.connection_errors:6d}"
            f" {pct(s.result.latencies_ms, 50):7.0f} {pct(s.result.latencies_ms, 99):7.0f}"
        )
    for phase in PHASES:
        a, s = api[phase], smtp[phase]
        details = {
            "API refused": a.refused,
            "API refused without Retry-After": a.refused_without_retry_after,
            "API errors": a.errors,
            "SMTP replies": s.result.codes,
            "SMTP connection errors": s.connection_errors,
        }
        shown = ", ".join(f"{name} {value}" for name, value in details.items() if value)
        print(f"  {phase}: {shown}")
    print("  (API latency: scheduled arrival to response; SMTP: end of DATA to the final reply)")
    ages = [age for _, _, _, age in recovery.samples]
    depth = max((count for _, _, count, _ in recovery.samples), default=0)
    steady = [age for _, phase, _, age in recovery.samples if phase == "steady"]
    print(
        f"outbound queue: oldest due delivery p95 {pct(steady, 95):.2f} s in the steady phase,"
        f" peak {max(ages, default=0):.1f} s and {depth} due deliveries; normal <="
        f" {recovery.threshold:.2f} s"
    )
    if recovery.seconds is None:
        print(f"recovery: NOT back to normal within {args.recovery_seconds} s of the spike's end")
    else:
        print(f"recovery: queue age back to normal {recovery.seconds:.1f} s after the spike ended")
    print(f"lost: {lost[0]} API sends, {lost[1]} inbound messages (accepted but not stored)")


def resolve(args: argparse.Namespace) -> argparse.Namespace:
    for name, value in PRESETS["quick" if args.quick else "full"].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.api_limit is None:
        args.api_limit = 3 * args.api_rate
    return args


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a short run at lower rates")
    parser.add_argument("--steady-seconds", type=int, help="default 120 (quick: 15)")
    parser.add_argument("--spike-seconds", type=int, help="default 60 (quick: 15)")
    parser.add_argument("--recovery-seconds", type=int, help="at most; default 300 (quick: 60)")
    parser.add_argument("--factor", type=float, default=10.0, help="spike rate / steady rate")
    parser.add_argument("--api-rate", type=float, help="steady sends/s; default 10 (quick: 4)")
    parser.add_argument("--smtp-rate", type=float, help="steady msg/s; default 10 (quick: 4)")
    parser.add_argument("--api-limit", type=float, help="tenant sends/s; default 3x --api-rate")
    parser.add_argument("--api-connections", type=int, default=128)
    parser.add_argument("--smtp-max-connections", type=int, default=16)
    parser.add_argument("--normal-age", type=float, help="normal queue age, s (default: measured)")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--delivery-workers", type=int, default=1)
    parser.add_argument("--size", type=int, default=4096, help="inbound message size, bytes")
    args = resolve(parser.parse_args())
    load_before = os.getloadavg()[0]
    os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
    url = bench_database_url("mailroom_bench_spike")
    recreate_database(url)
    setup_django(url)
    from django.db import connections
    from django_redis import get_redis_connection

    from api.services.keys import create_api_key
    from bench.peers import start_smtp_sink, stop_smtp_sink
    from mailcore.services.provisioning import create_mailbox

    get_redis_connection("default").flushdb()  # the bench's own Redis database
    for n in range(MAILBOXES):
        mailbox = create_mailbox(f"user{n}@{DOMAIN}", "bench-password-123", quota_bytes=0)
    key = create_api_key(organization_id=mailbox.organization_id).secret
    connections.close_all()
    web_port, smtp_port, sink_port = free_port(), free_port(), free_port()
    sink = start_smtp_sink(sink_port, "-c")
    limit = str(max(1, round(args.api_limit)))
    caps = str(args.smtp_max_connections)
    processes = [
        start_web(url, web_port, workers=args.web_workers, MAILROOM_API_KEY_RATE=limit,
                  MAILROOM_API_TENANT_RATE=limit, log=WEB_LOG),  # every 429 logs a line
        start_manage(["smtpd", "--host", "127.0.0.1", "--port", str(smtp_port)], url,
                     MAILROOM_SMTP_MAX_CONNECTIONS=caps, MAILROOM_SMTP_MAX_CONNECTIONS_PER_IP=caps),
        *(start_manage(["deliver"], url, MAILROOM_RELAY_HOST=f"127.0.0.1:{sink_port}")
          for _ in range(args.delivery_workers)),
    ]  # fmt: skip
    try:
        wait_for_banner(smtp_port)
        wait_for_http(f"http://127.0.0.1:{web_port}/healthz")
        api, smtp, recovery, elapsed = asyncio.run(drive(args, web_port, smtp_port, key))
        lost = count_lost(api, smtp)
        outcome = outbound_outcome()
    finally:
        stop_processes(processes)
        stop_smtp_sink(sink)
    print_report(args, api, smtp, recovery, elapsed, lost, (load_before, os.getloadavg()[0]))
    print(f"outbound deliveries at the end: {outcome}; smtp-sink counted {sink.messages()}")
    return 1 if any(lost) else 0


if __name__ == "__main__":
    sys.exit(main())
