"""kill -9 the SMTP receiver at each point of a transaction, with clients that retry.

What the receiver guarantees (DESIGN.md "Data flow" 1 and "Consistency"):

- ``250`` is written only after the commit, so every message that got a ``250`` is stored.
- A kill before the commit (mid-DATA, or after the end of data) leaves nothing: the client saw
  no ``250`` and sends again.
- A kill between the commit and the ``250`` leaves a stored message the client does not know
  about, so it sends again. Inbound mail is deduplicated by (mailbox, Message-ID) within
  ``MAILROOM_INBOUND_DEDUPE_SECONDS``: the second copy is answered ``250`` and not stored, so
  a message with a Message-ID is stored exactly once whatever the kill. Only a message without
  a Message-ID can be stored twice, and only from that window.
- A kill after the ``250`` loses nothing.

The fault points (mailcore/smtp/faults.py) make the receiver wait inside each window and say
so in its log; the test kills it then, so each window is hit on every run. The randomized test
kills at arbitrary moments under load.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections import Counter

import pytest

from mailcore.models import Mailbox, Message
from mailcore.smtp.faults import POINTS
from tests.resilience.clients import RetryingClient, outgoing
from tests.support import free_port, receiver_log, start_receiver_process

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.resilience]


def wait_for_fault(port: int, point: str, timeout: float = 20.0) -> None:
    needle = f"fault point {point} reached".encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in receiver_log(port).read_bytes():
            return
        time.sleep(0.01)
    raise AssertionError(f"the receiver never reached {point}")


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(10)


def stored(mailbox: Mailbox) -> Counter[str]:
    return Counter(Message.objects.filter(mailbox=mailbox).values_list("subject", flat=True))


def test_kill_at_each_point_loses_nothing_and_stores_once(alice: Mailbox) -> None:
    """One message is killed at every point in turn: each restart arms the next point, and
    the client's retry of the same message walks into it."""
    port = free_port()
    messages = [outgoing(f"points-{n}") for n in range(3)]
    first = messages[0].key
    client = RetryingClient(port, messages)
    seen: dict[str, tuple[int, bool]] = {}  # point -> (copies stored, acknowledged) at the kill
    process = None
    try:
        for point in POINTS:
            process = start_receiver_process(
                port, env={"MAILROOM_FAULT_POINT": point, "MAILROOM_FAULT_DELAY": "60"}
            )
            if not client.is_alive():
                client.start()
            wait_for_fault(port, point)
            kill(process)
            seen[point] = (stored(alice)[first], first in client.acked)
        process = start_receiver_process(port)
        client.join(30)
    finally:
        client.finish()
        if process is not None:
            kill(process)
    # Killed before the commit: nothing stored. Between commit and reply: stored, the client
    # does not know and sends again. The retry is answered 250 from the deduplication, and a
    # kill after that reply loses nothing.
    assert seen == {
        "mid_data": (0, False),
        "before_commit": (0, False),
        "after_commit": (1, False),
        "after_reply": (1, True),
    }
    assert client.attempts[first] == 4
    assert client.acked == [message.key for message in messages]
    assert not client.refused
    assert stored(alice) == Counter({message.key: 1 for message in messages})


def test_without_message_id_the_commit_to_reply_window_can_store_twice(alice: Mailbox) -> None:
    """The one duplicate the receiver allows: no Message-ID to deduplicate by, and a kill after
    the commit but before the ``250``."""
    port = free_port()
    message = outgoing("no-message-id", with_message_id=False)
    process = start_receiver_process(
        port, env={"MAILROOM_FAULT_POINT": "after_commit", "MAILROOM_FAULT_DELAY": "60"}
    )
    client = RetryingClient(port, [message])
    client.start()
    try:
        wait_for_fault(port, "after_commit")
        kill(process)
        process = start_receiver_process(port)
        client.join(30)
    finally:
        client.finish()
        kill(process)
    assert client.acked == [message.key]
    assert stored(alice) == Counter({message.key: 2})


def test_kills_at_random_moments_lose_nothing_and_duplicate_nothing(alice: Mailbox) -> None:
    port = free_port()
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    clients = [
        RetryingClient(port, [outgoing(f"random-{c}-{n}") for n in range(10_000)]) for c in range(4)
    ]
    process = start_receiver_process(port)
    for client in clients:
        client.start()
    acked_before: list[int] = []
    try:
        for _ in range(4):
            time.sleep(rng.uniform(0.3, 1.2))
            kill(process)
            acked_before.append(sum(len(client.acked) for client in clients))
            process = start_receiver_process(port)
        time.sleep(0.5)
        for client in clients:
            client.finish()  # after the message in flight is acknowledged
        for client in clients:
            client.join(30)
    finally:
        for client in clients:
            client.finish()
        kill(process)
    acked = [key for client in clients for key in client.acked]
    assert len(acked) >= 10, f"the clients should have had time to send (seed {seed})"
    assert acked_before == sorted(set(acked_before)), f"no progress between kills (seed {seed})"
    assert not any(client.refused or client.gave_up for client in clients)
    retried = sum(count > 1 for client in clients for count in client.attempts.values())
    assert retried >= 1, f"no kill hit a transaction in flight (seed {seed})"
    # Every acknowledged message is stored once; nothing is stored that was not acknowledged
    # (each client finished its message in flight, so a copy committed before a kill got its
    # 250 on the retry).
    assert stored(alice) == Counter({key: 1 for key in acked}), f"seed {seed}"
