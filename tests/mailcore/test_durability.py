"""kill -9 the receiver while a client sends: every message that got 250 is stored once."""

from __future__ import annotations

import random
import signal
import smtplib
import threading
import time

import pytest

from mailcore.models import Mailbox, Message
from tests.factories import make_email
from tests.support import free_port, start_receiver_process


def sender(port: int, first: int, acked: list[int], stop: threading.Event) -> None:
    """Send numbered messages over reused sessions until stopped or refused."""
    number = first
    while not stop.is_set():
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:
                while not stop.is_set():
                    raw = make_email(
                        subject=f"durable {number}", message_id=f"<durable-{number}@remote.test>"
                    )
                    smtp.sendmail("dana@remote.test", ["alice@example.test"], raw)
                    acked.append(number)
                    number += 1
        except (OSError, smtplib.SMTPException):
            return


@pytest.mark.django_db(transaction=True)
def test_every_acknowledged_message_survives_sigkill(alice: Mailbox) -> None:
    port = free_port()
    acked: list[int] = []
    rng = random.Random(7)
    for round_number in range(3):
        process = start_receiver_process(port)
        stop = threading.Event()
        threads = [
            threading.Thread(
                target=sender, args=(port, 100_000 * (round_number * 4 + i), acked, stop)
            )
            for i in range(4)
        ]
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(0.5, 1.5))
        process.send_signal(signal.SIGKILL)
        process.wait()
        stop.set()
        for thread in threads:
            thread.join(10)
    assert len(acked) > 20, "the client should have had time to send"
    stored = list(Message.objects.filter(mailbox=alice).values_list("subject", flat=True))
    stored_numbers = [int(subject.split()[1]) for subject in stored]
    assert len(stored_numbers) == len(set(stored_numbers)), "a message was stored twice"
    missing = set(acked) - set(stored_numbers)
    assert not missing, f"acknowledged but lost: {sorted(missing)[:10]}"
    # Whatever was stored but not acknowledged was cut between commit and reply.
    assert len(set(stored_numbers) - set(acked)) <= 4 * 3
