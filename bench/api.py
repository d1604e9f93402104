"""API send throughput: ``POST /v3/{domain}/messages`` and ``POST /api/v1/messages/`` under
concurrent clients, next to a bare Django + DRF endpoint doing one INSERT (the ceiling).

1. Recreates the ``mailroom_bench_api`` database, creates a domain, a mailbox and an API key.
2. Starts ``gunicorn -k uvicorn.workers.UvicornWorker`` (``--workers``, default 2) with
   ``bench.api_settings`` (the project plus ``/bench/ceiling/``).
3. Drives each endpoint with ``wrk`` (Debian's package; a Lua script makes the POST bodies)
   for ``--seconds`` with ``--connections`` keep-alive clients, and prints accepted requests/s
   (2xx only), p50/p99 latency and the ratio to the ceiling. Then checks the rows in the
   database match the accepted count.

Run: ``.venv/bin/python bench/api.py [--seconds 20] [--connections 16] [--workers 2]``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    bench_database_url,
    free_port,
    recreate_database,
    setup_django,
    start_web,
    stop_processes,
    wait_for_http,
)

DOMAIN = "bench.test"

LUA = """
wrk.method = "POST"
wrk.headers["Authorization"] = "%(auth)s"
wrk.headers["Content-Type"] = "%(content_type)s"
wrk.body = %(body)s
local accepted = 0
function response(status, headers, body)
  if status >= 200 and status < 300 then accepted = accepted + 1 end
end
function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%%d errors_status=%%d p50=%%.3f p99=%%.3f\\n",
    summary.requests, summary.errors.status, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000))
end
"""


def lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def scenarios(key: str) -> list[tuple[str, str, str, str]]:
    """(label, path, content type, body)"""
    basic = "Basic " + base64.b64encode(f"api:{key}".encode()).decode()
    form = (
        "from=Bench%20%3Csender%40bench.test%3E&to=rcpt%40remote.test&subject=Hello"
        "&text=Hello%20from%20the%20benchmark&o%3Atag=bench&v%3Aorder=17"
    )
    native = json.dumps(
        {
            "from": "Bench <sender@bench.test>",
            "to": ["rcpt@remote.test"],
            "subject": "Hello",
            "text": "Hello from the benchmark",
            "tags": ["bench"],
            "metadata": {"order": 17},
        }
    )
    return [
        (
            "ceiling: bare DRF view, one INSERT",
            "/bench/ceiling/",
            "application/json",
            json.dumps({"to": "rcpt@remote.test"}),
            "",
        ),
        (
            f"POST /v3/{DOMAIN}/messages (urlencoded)",
            f"/v3/{DOMAIN}/messages",
            "application/x-www-form-urlencoded",
            form,
            basic,
        ),
        (
            "POST /api/v1/messages/ (JSON)",
            "/api/v1/messages/",
            "application/json",
            native,
            f"Bearer {key}",
        ),
    ]  # type: ignore[return-value]


def run_wrk(base: str, path: str, content_type: str, body: str, auth: str, args) -> dict:  # type: ignore[no-untyped-def]
    script = LUA % {"auth": auth, "content_type": content_type, "body": lua_string(body)}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        output = subprocess.run(
            [
                "wrk",
                "-t",
                "2",
                "-c",
                str(args.connections),
                "-d",
                f"{args.seconds}s",
                "--latency",
                "-s",
                handle.name,
                base + path,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(handle.name)
    match = re.search(
        r"RESULT requests=(\d+) errors_status=(\d+) p50=([\d.]+) p99=([\d.]+)", output
    )
    if not match:
        raise SystemExit(output)
    requests, errors = int(match[1]), int(match[2])
    return {
        "accepted": requests - errors,
        "refused": errors,
        "rate": (requests - errors) / args.seconds,
        "p50": float(match[3]),
        "p99": float(match[4]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--server",
        choices=["asgi", "wsgi"],
        default="asgi",
        help="asgi: uvicorn workers on config.asgi (default); wsgi: gunicorn sync workers",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    url = bench_database_url("mailroom_bench_api")
    recreate_database(url)
    setup_django(url)
    from api.services.keys import create_api_key
    from mailcore.services.provisioning import create_mailbox

    mailbox = create_mailbox(f"sender@{DOMAIN}", "bench-password-123")
    key = create_api_key(organization_id=mailbox.organization_id).secret
    port = free_port()
    server = start_web(
        url,
        port,
        workers=args.workers,
        server=args.server,
        settings_module="bench.api_settings",
        CACHE_KEY_PREFIX="mr-bench-api",
        CHANNELS_PREFIX="mr-bench-api",
        MAILROOM_API_KEY_RATE="1000000",
        MAILROOM_API_TENANT_RATE="1000000",
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(base + "/api/schema/")
        results = []
        for label, path, content_type, body, auth in scenarios(key):
            run_wrk(
                base,
                path,
                content_type,
                body,
                auth,
                argparse.Namespace(connections=args.connections, seconds=2),
            )  # warm-up
            before = stored_rows(path)
            result = run_wrk(base, path, content_type, body, auth, args)
            time.sleep(1)  # requests still in flight when wrk stopped
            result["stored"] = stored_rows(path) - before
            results.append((label, result))
    finally:
        stop_processes([server])
    print_results(results, args)
    check_rows(results)
    time_in_process(key, scenarios(key))


def time_in_process(key: str, plan: list[tuple[str, str, str, str, str]], count: int = 300) -> None:
    """The same requests through Django's test client: no HTTP, no server, one at a time."""
    from django.test import Client, override_settings

    print(f"\nIn process (Django test client, sequential, {count} requests each):")
    ceiling = 0.0
    with override_settings(ROOT_URLCONF="bench.api_urls", ALLOWED_HOSTS=["*"]):
        for label, path, content_type, body, auth in plan:
            client = Client(HTTP_AUTHORIZATION=auth) if auth else Client()
            for _ in range(20):
                client.post(path, body, content_type=content_type)
            started = time.perf_counter()
            for _ in range(count):
                response = client.post(path, body, content_type=content_type)
                if response.status_code >= 300:
                    raise SystemExit(f"{label}: HTTP {response.status_code} {response.content!r}")
            per_request = (time.perf_counter() - started) / count * 1000
            ceiling = ceiling or per_request
            print(f"  {label:44} {per_request:6.2f} ms/request  {ceiling / per_request:5.2f}x")


def print_results(results: list[tuple[str, dict]], args) -> None:  # type: ignore[no-untyped-def,type-arg]
    cores = os.cpu_count()
    kind = "uvicorn" if args.server == "asgi" else "sync (WSGI)"
    print(
        f"\nAPI sends: gunicorn + {kind} workers={args.workers}, wrk -c {args.connections} "
        f"for {args.seconds}s each, {cores} cores (load generator on the same machine)"
    )
    ceiling = results[0][1]["rate"]
    print(
        f"{'endpoint':44} {'accepted/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'refused':>8} "
        f"{'vs ceiling':>10}"
    )
    for label, result in results:
        print(
            f"{label:44} {result['rate']:10.0f} {result['p50']:8.1f} {result['p99']:8.1f} "
            f"{result['refused']:8d} {result['rate'] / ceiling:10.2f}"
        )


def stored_rows(path: str) -> int:
    """Rows the endpoint writes: outbound messages for sends, events for the ceiling."""
    from analytics.models import Event
    from mailcore.models import OutboundMessage

    if path.startswith("/bench/"):
        return Event.objects.filter(organization_id=0).count()
    return OutboundMessage.objects.count()


def check_rows(results: list[tuple[str, dict]]) -> None:  # type: ignore[type-arg]
    """Every accepted request of a timed run left exactly one row."""
    for label, result in results:
        extra = result["stored"] - result["accepted"]
        # wrk drops its connections at the deadline; those requests may still complete.
        verdict = f"ok (+{extra} cut off by wrk's deadline)" if 0 <= extra <= 64 else "MISMATCH"
        print(f"rows {label}: {result['accepted']} accepted, {result['stored']} stored: {verdict}")


if __name__ == "__main__":
    main()
