"""Inbound SMTP: N messages over M concurrent sessions into real mailboxes, vs Postfix.

    python bench/inbound.py [--messages 5000] [--sessions 20] [--size 4096] [--processes 1]
                            [--no-postfix]

Prints accepted messages/s and p50/p99 time-to-250 for Mailroom's receiver (``manage.py
smtpd`` against a private ``mailroom_bench`` database) and, when Debian's postfix is installable,
for a private Postfix instance delivering the same load to maildirs, with the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    bench_database_url,
    free_port,
    recreate_database,
    setup_django,
    start_manage,
    wait_for_banner,
)
from bench.smtpload import LoadResult, run_load, text_message_factory  # noqa: E402

MAILBOXES = 10
DOMAIN = "bench.test"


def run_mailroom(args: argparse.Namespace) -> LoadResult:
    url = bench_database_url()
    recreate_database(url)
    setup_django(url)
    from mailcore.models import Message
    from mailcore.services.provisioning import create_mailbox

    for n in range(MAILBOXES):
        create_mailbox(f"user{n}@{DOMAIN}", "bench-password", quota_bytes=0)
    port = free_port()
    processes = [
        start_manage(
            ["smtpd", "--host", "127.0.0.1", "--port", str(port)],
            url,
            MAILROOM_SMTP_MAX_CONNECTIONS_PER_IP="10000",
            MAILROOM_SMTP_REUSE_PORT="1" if args.processes > 1 else "0",
        )
        for _ in range(args.processes)
    ]
    try:
        wait_for_banner(port)
        factory = text_message_factory(
            "loadgen@remote.test", [f"user{{n}}@{DOMAIN}"], args.size, cycle=MAILBOXES
        )
        result = asyncio.run(
            run_load(
                "127.0.0.1",
                port,
                messages=args.messages,
                sessions=args.sessions,
                messages_per_session=None,
                make_message=factory,
            )
        )
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                print("mailroom: receiver did not stop within 30 s of SIGTERM; killed")
                process.kill()
    stored = Message.objects.count()
    print(f"mailroom: stored {stored} messages for {result.ok} acknowledged")
    if stored < result.ok:
        raise SystemExit("LOST MAIL: fewer stored than acknowledged")
    return result


def run_postfix(args: argparse.Namespace) -> LoadResult | None:
    from bench import peers

    try:
        peers.ensure_postfix()
    except Exception as exc:  # no Debian package manager, no network to the mirror, ...
        print(f"postfix: not available ({exc}); skipping the comparison")
        return None
    port = free_port()
    instance = peers.start_postfix(port, domain=DOMAIN)
    try:
        factory = text_message_factory(
            "loadgen@remote.test", [f"user{{n}}@{DOMAIN}"], args.size, cycle=MAILBOXES
        )
        return asyncio.run(
            run_load(
                "127.0.0.1",
                port,
                messages=args.messages,
                sessions=args.sessions,
                messages_per_session=None,
                make_message=factory,
            )
        )
    finally:
        instance.stop()
        peers.stop_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--processes", type=int, default=int(os.environ.get("SMTPD_PROCS", 1)))
    parser.add_argument("--no-postfix", action="store_true")
    args = parser.parse_args()
    print(
        f"inbound: {args.messages} messages of {args.size} B over {args.sessions} sessions,"
        f" {os.cpu_count()} cores"
    )
    ours = run_mailroom(args)
    print(f"mailroom: {ours.summary()}")
    theirs = None if args.no_postfix else run_postfix(args)
    if theirs is not None:
        print(f"postfix:  {theirs.summary()}")
        if theirs.msgs_per_s:
            print(
                f"ratio mailroom/postfix: throughput {ours.msgs_per_s / theirs.msgs_per_s:.2f}x,"
                f" p99 {ours.p99_ms / max(theirs.p99_ms, 0.001):.2f}x"
            )


if __name__ == "__main__":
    main()
