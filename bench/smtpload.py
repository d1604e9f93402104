"""Asyncio SMTP load client (stdlib only), in the spirit of Postfix's smtp-source.

`sessions` concurrent connections each send EHLO once, then MAIL/RCPT/DATA transactions on the
same connection (pipelined in one write when PIPELINING is advertised). For every message it
records the time from writing the end-of-data "." to reading the final reply ("time-to-250").

    python bench/smtpload.py --host 127.0.0.1 --port 2525 --messages 2000 --sessions 20 \\
        --to user@bench.test --size 4096
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from email.utils import formatdate

MessageFactory = Callable[[int], tuple[str, list[str], bytes]]
_BARE_LF = re.compile(rb"(?<!\r)\n")


@dataclass
class LoadResult:
    requested: int
    sent: int = 0  # transactions attempted (MAIL written)
    ok: int = 0  # 2xx final reply
    temp_fail: int = 0  # 4xx at any step
    perm_fail: int = 0  # 5xx at any step
    conn_errors: int = 0  # connect failures, resets, timeouts, bad replies
    wall_s: float = 0.0
    msgs_per_s: float = 0.0  # ok / wall_s
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    codes: dict[int, int] = field(default_factory=dict)  # final reply code -> messages

    def summary(self) -> str:
        return (
            f"{self.ok}/{self.requested} accepted (4xx {self.temp_fail}, 5xx {self.perm_fail}, "
            f"conn errors {self.conn_errors}) in {self.wall_s:.2f}s = {self.msgs_per_s:.0f} msg/s;"
            f" time-to-reply after '.' p50 {self.p50_ms:.2f} ms, p95 {self.p95_ms:.2f} ms,"
            f" p99 {self.p99_ms:.2f} ms, max {self.max_ms:.2f} ms"
        )


class SmtpError(Exception):
    pass


def dot_stuff(body: bytes) -> bytes:
    """CRLF-normalise, dot-stuff and terminate a message for the DATA phase."""
    body = _BARE_LF.sub(b"\r\n", body)
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    if body.startswith(b"."):
        body = b"." + body
    return body.replace(b"\r\n.", b"\r\n..") + b".\r\n"


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending sequence (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * pct // 100))
    return sorted_values[int(rank) - 1]


async def _reply(reader: asyncio.StreamReader, timeout: float) -> tuple[int, bytes]:
    lines = []
    while True:
        line = await asyncio.wait_for(reader.readline(), timeout)
        if len(line) < 4 or not line[:3].isdigit():
            raise SmtpError(f"bad or missing reply: {line!r}")
        lines.append(line[4:].rstrip())
        if line[3:4] != b"-":
            return int(line[:3]), b"\n".join(lines)


def _count(result: LoadResult, code: int) -> None:
    result.codes[code] = result.codes.get(code, 0) + 1
    if code < 300:
        result.ok += 1
    elif code < 500:
        result.temp_fail += 1
    else:
        result.perm_fail += 1


async def _send_one(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    message: tuple[str, list[str], bytes],
    pipelining: bool,
    result: LoadResult,
    timeout: float,
) -> int:
    """One transaction on an open session; counts it and returns the reply code that decided it."""
    sender, rcpts, body = message
    cmds = [f"MAIL FROM:<{sender}>\r\n".encode()]
    cmds += [f"RCPT TO:<{r}>\r\n".encode() for r in rcpts] + [b"DATA\r\n"]
    result.sent += 1
    codes: list[int] = []
    if pipelining:  # MAIL + RCPTs + DATA in one write, as smtp-source does
        writer.write(b"".join(cmds))
        codes = [(await _reply(reader, timeout))[0] for _ in cmds]
    else:
        for cmd in cmds:
            writer.write(cmd)
            codes.append((await _reply(reader, timeout))[0])
            if codes[-1] >= 400 and cmd.startswith(b"MAIL"):
                break
    if codes[-1] == 354:
        payload = dot_stuff(body)
        started = time.perf_counter()
        writer.write(payload)
        code, _ = await _reply(reader, timeout)
        result.latencies_ms.append((time.perf_counter() - started) * 1000)
        _count(result, code)
        return code
    failed = [c for c in codes if c >= 400]
    if not failed:
        raise SmtpError(f"unexpected reply to DATA: {codes[-1]}")
    _count(result, failed[0])
    if 421 in failed:
        return 421
    writer.write(b"RSET\r\n")
    await _reply(reader, timeout)
    return failed[0]


async def _ehlo(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, helo: str, timeout: float
) -> tuple[int, bool]:
    """Greeting and EHLO: (the code that ended them, whether PIPELINING is offered)."""
    code, _ = await _reply(reader, timeout)
    if code != 220:
        return code, False
    writer.write(b"EHLO " + helo.encode() + b"\r\n")
    code, text = await _reply(reader, timeout)
    return code, b"\nPIPELINING" in b"\n" + text.upper()


async def _session(
    host: str,
    port: int,
    claim: Callable[[], int | None],
    make_message: MessageFactory,
    per_session: int | None,
    result: LoadResult,
    timeout: float,
    helo: str,
) -> None:
    failures = 0  # consecutive connection failures; the session gives up after 3
    index = claim()
    while index is not None and failures < 3:
        writer: asyncio.StreamWriter | None = None
        in_flight = False
        try:
            reader, conn = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            writer = conn
            code, pipelining = await _ehlo(reader, conn, helo, timeout)
            if code != 250:
                raise SmtpError(f"greeting or EHLO {code}")
            failures, done = 0, 0
            while index is not None and (per_session is None or done < per_session):
                in_flight = True
                message = make_message(index)
                code = await _send_one(reader, conn, message, pipelining, result, timeout)
                if code == 421:
                    raise SmtpError("421: server closing connection")
                in_flight = False
                done += 1
                index = claim()
            conn.write(b"QUIT\r\n")
            await asyncio.wait_for(_reply(reader, timeout), timeout)
        except (OSError, TimeoutError, SmtpError, asyncio.IncompleteReadError):
            result.conn_errors += 1
            failures += 1
            if in_flight:  # that message is lost (counted here only); go on with the next one
                index = claim()
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                    await writer.wait_closed()


async def run_load(
    host: str,
    port: int,
    *,
    messages: int,
    sessions: int,
    messages_per_session: int | None,
    make_message: MessageFactory,
    timeout: float = 60.0,
    helo: str = "smtpload.localhost",
) -> LoadResult:
    """Send `messages` messages over `sessions` concurrent connections and measure them.

    messages_per_session=None keeps each connection for as many messages as it can claim;
    otherwise a session QUITs and reconnects after that many. make_message(i) returns
    (envelope sender, envelope recipients, raw message bytes) for message number i.
    """
    result = LoadResult(requested=messages)
    counter = iter(range(messages))

    def claim() -> int | None:
        return next(counter, None)

    started = time.perf_counter()
    await asyncio.gather(
        *(
            _session(host, port, claim, make_message, messages_per_session, result, timeout, helo)
            for _ in range(max(1, min(sessions, messages)))
        )
    )
    result.wall_s = time.perf_counter() - started
    result.msgs_per_s = result.ok / result.wall_s if result.wall_s else 0.0
    lat = sorted(result.latencies_ms)
    result.p50_ms, result.p95_ms, result.p99_ms = (percentile(lat, p) for p in (50, 95, 99))
    result.max_ms = lat[-1] if lat else 0.0
    return result


async def send_message(
    host: str,
    port: int,
    message: tuple[str, list[str], bytes],
    result: LoadResult,
    *,
    timeout: float = 60.0,
    helo: str = "smtpload.localhost",
) -> int:
    """Send one message on a connection of its own, as one of many independent MTAs would.

    Returns the reply code that decided it (a refusal at the greeting or EHLO counts as that
    code) and counts it into result. Connection failures raise OSError, TimeoutError,
    SmtpError or asyncio.IncompleteReadError.
    """
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        code, pipelining = await _ehlo(reader, writer, helo, timeout)
        if code != 250:
            _count(result, code)
            return code
        code = await _send_one(reader, writer, message, pipelining, result, timeout)
        if code != 421:
            writer.write(b"QUIT\r\n")
            with contextlib.suppress(OSError, TimeoutError, SmtpError, asyncio.IncompleteReadError):
                await _reply(reader, timeout)
        return code
    finally:
        writer.close()
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await writer.wait_closed()


def text_message_factory(
    sender: str, rcpts: list[str], size: int, cycle: int = 0
) -> MessageFactory:
    """Plain-text messages of about `size` bytes; "{n}" in a recipient becomes i % cycle."""
    run = uuid.uuid4().hex[:12]
    date = formatdate(localtime=False)
    line = b"The quick brown fox jumps over the lazy dog, again and again and again.\r\n"

    def make(i: int) -> tuple[str, list[str], bytes]:
        to = [r.replace("{n}", str(i % cycle if cycle else i)) for r in rcpts]
        head = (
            f"From: <{sender}>\r\nTo: {', '.join(f'<{r}>' for r in to)}\r\n"
            f"Subject: smtpload message {i}\r\nDate: {date}\r\n"
            f"Message-ID: <{i}.{run}@smtpload.localhost>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n\r\n.this line is dot-stuffed\r\n"
        ).encode()
        fill = max(0, size - len(head))
        body = (line * (fill // len(line) + 1))[:fill]
        return sender, to, head + body.rstrip(b"\r") + (b"" if body.endswith(b"\n") else b"\r\n")

    return make


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=2525)
    p.add_argument("--messages", type=int, default=2000)
    p.add_argument("--sessions", type=int, default=20)
    p.add_argument("--per-session", type=int, default=None, help="reconnect after N messages")
    p.add_argument("--from", dest="sender", default="loadgen@smtpload.localhost")
    p.add_argument("--to", action="append", help="recipient (repeatable); '{n}' = i %% cycle")
    p.add_argument("--cycle", type=int, default=0, help="number of distinct {n} recipients")
    p.add_argument("--size", type=int, default=4096, help="approximate message size in bytes")
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    a = p.parse_args(argv)
    make = text_message_factory(a.sender, a.to or ["user@bench.test"], a.size, a.cycle)
    res = asyncio.run(
        run_load(
            a.host,
            a.port,
            messages=a.messages,
            sessions=a.sessions,
            messages_per_session=a.per_session,
            make_message=make,
            timeout=a.timeout,
        )
    )
    if a.json:
        print(json.dumps({k: v for k, v in asdict(res).items() if k != "latencies_ms"}))
    else:
        print(res.summary())
    return 0 if res.ok == res.requested else 1


if __name__ == "__main__":
    sys.exit(main())
