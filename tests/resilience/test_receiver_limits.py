"""A connection flood and a slowloris against the receiver process stay within its caps.

Every address in 127.0.0.0/8 is loopback on Linux, so one test can be many clients: binding the
source address makes per-address and total limits separately visible. (The single-limit cases
in-process are in tests/mailcore/test_smtp_receiver.py.)
"""

from __future__ import annotations

import contextlib
import smtplib
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from mailcore.models import Mailbox, Message
from tests.resilience.clients import outgoing
from tests.support import free_port, read_line, start_receiver_process

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.resilience]

LIMITS = {
    "MAILROOM_SMTP_MAX_CONNECTIONS": "12",
    "MAILROOM_SMTP_MAX_CONNECTIONS_PER_IP": "5",
    "MAILROOM_SMTP_COMMAND_TIMEOUT": "2",
    "MAILROOM_SMTP_DATA_TIMEOUT": "3",
}


@pytest.fixture
def receiver_port() -> Iterator[int]:
    port = free_port()
    process: subprocess.Popen[bytes] = start_receiver_process(port, env=LIMITS)
    time.sleep(0.3)  # the start-up probe's slot is released
    yield port
    process.kill()
    process.wait(10)


def connect(port: int, source: str) -> socket.socket:
    sock = socket.socket()
    sock.settimeout(10)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def send_normal_message(port: int, key: str) -> None:
    message = outgoing(key)
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.sendmail(message.mail_from, list(message.recipients), message.raw)


def test_flood_is_refused_421_per_address_and_in_total(alice: Mailbox, receiver_port: int) -> None:
    port = receiver_port
    held = [connect(port, "127.0.0.2") for _ in range(5)]
    assert all(read_line(sock).startswith(b"220 ") for sock in held)
    extra = connect(port, "127.0.0.2")
    assert read_line(extra).startswith(b"421 4.7.0 Too many connections from your address")
    assert extra.recv(10) == b""  # and closed
    extra.close()
    others = [connect(port, source) for source in ["127.0.0.3"] * 5 + ["127.0.0.4"] * 2]
    assert all(read_line(sock).startswith(b"220 ") for sock in others)
    held += others  # 12: the total cap
    flood = [connect(port, f"127.0.1.{n % 20 + 1}") for n in range(200)]
    replies = [read_line(sock) for sock in flood]
    assert all(reply.startswith(b"421 4.7.0 Too many connections, try") for reply in replies)
    for sock in flood:
        sock.close()
    # The held sessions still work, and a slot freed is a slot a normal client gets.
    held[0].sendall(b"NOOP\r\n")
    assert read_line(held[0]).startswith(b"250")
    held.pop().close()
    time.sleep(0.3)
    send_normal_message(port, "after-flood")
    for sock in held:
        sock.close()
    assert list(Message.objects.filter(mailbox=alice).values_list("subject", flat=True)) == [
        "after-flood"
    ]


def test_slowloris_is_cut_off_by_the_timeouts_and_the_slots_come_back(
    alice: Mailbox, receiver_port: int
) -> None:
    port = receiver_port
    # Five trickle a command a byte at a time and never end the line; five reach DATA and
    # trickle the message. Twelve slots, so together with two idle ones the receiver is full.
    in_command = [connect(port, "127.0.0.5") for _ in range(5)]
    in_data = [connect(port, "127.0.0.6") for _ in range(5)]
    idle = [connect(port, "127.0.0.7") for _ in range(2)]
    for sock in in_command + in_data + idle:
        assert read_line(sock).startswith(b"220 ")
    for sock in in_data:
        sock.sendall(b"HELO slow\r\nMAIL FROM:<d@remote.test>\r\nRCPT TO:<alice@example.test>\r\n")
        assert [read_line(sock)[:3] for _ in range(3)] == [b"250", b"250", b"250"]
        sock.sendall(b"DATA\r\n")
        assert read_line(sock).startswith(b"354")
    started = time.monotonic()
    with pytest.raises(smtplib.SMTPConnectError) as refused:
        send_normal_message(port, "during-attack")
    assert refused.value.smtp_code == 421
    closed_at: dict[socket.socket, float] = {}
    replies: dict[socket.socket, bytes] = {}
    for sock in in_command + in_data:
        sock.setblocking(False)
    while len(closed_at) < 10 and time.monotonic() - started < 10:
        for sock in in_command + in_data:
            if sock in closed_at:
                continue
            with contextlib.suppress(BlockingIOError):
                data = sock.recv(1024)
                replies[sock] = replies.get(sock, b"") + data
                if not data:
                    closed_at[sock] = time.monotonic() - started
                    continue
            with contextlib.suppress(OSError):
                sock.send(b"x")
        time.sleep(0.25)
    assert len(closed_at) == 10, "a trickling connection was never cut off"
    # Command timeout 2 s (no complete line resets it), DATA deadline 3 s from the DATA.
    assert all(1.5 <= closed_at[sock] <= 5 for sock in in_command), closed_at
    assert all(2.5 <= closed_at[sock] <= 6 for sock in in_data), closed_at
    assert all(replies[sock].startswith(b"421 4.4.2") for sock in in_data)
    # The idle sessions time out too, and every slot is free again.
    for sock in idle:
        assert sock.recv(10) == b""
    time.sleep(0.3)
    again = [connect(port, "127.0.0.5") for _ in range(5)]
    assert all(read_line(sock).startswith(b"220 ") for sock in again)
    for sock in again + in_command + in_data + idle:
        sock.close()
    send_normal_message(port, "after-attack")
    assert list(Message.objects.filter(mailbox=alice).values_list("subject", flat=True)) == [
        "after-attack"
    ]
