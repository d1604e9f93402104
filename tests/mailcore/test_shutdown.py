"""SIGTERM to the receiver: in-flight transactions finish, new ones get 421, nothing is lost."""

from __future__ import annotations

import signal
import socket
import time

import pytest

from mailcore.models import Message
from mailcore.services.provisioning import create_mailbox
from tests.factories import PASSWORD, make_email
from tests.support import ROOT, free_port, read_line, smtp_command, start_receiver_process


@pytest.mark.django_db(transaction=True)
def test_sigterm_finishes_data_in_flight_and_refuses_new_transactions() -> None:
    address = "alice@example.test"
    mailbox = create_mailbox(address, PASSWORD)
    port = free_port()
    process = start_receiver_process(port)
    try:
        busy = socket.create_connection(("127.0.0.1", port), timeout=10)
        idle = socket.create_connection(("127.0.0.1", port), timeout=10)
        for sock in (busy, idle):
            read_line(sock)
            smtp_command(sock, b"EHLO client.test")
        assert smtp_command(busy, b"MAIL FROM:<dana@remote.test>").startswith(b"250")
        assert smtp_command(busy, f"RCPT TO:<{address}>".encode()).startswith(b"250")
        assert smtp_command(busy, b"DATA").startswith(b"354")
        raw = make_email(subject="in flight")
        busy.sendall(raw[:50])  # mid-DATA when the signal arrives

        process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert smtp_command(idle, b"MAIL FROM:<dana@remote.test>").startswith(b"421 4.3.2")
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).recv(10)

        busy.sendall(raw[50:] + b".\r\n")
        reply = read_line(busy)
        log = ROOT / "tests" / "artifacts" / f"smtpd-{port}.log"
        assert reply.startswith(b"250 2.0.0"), log.read_text(errors="replace")[-3000:]
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert list(Message.objects.filter(mailbox=mailbox).values_list("subject", flat=True)) == [
        "in flight"
    ]
