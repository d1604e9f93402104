"""Servers and clients the tests of several apps share."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import uvicorn
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

ROOT = Path(__file__).resolve().parents[1]
BOUNCE_CORPUS = ROOT / "tests" / "fixtures" / "bounces"  # see its README.md
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@contextlib.contextmanager
def serve_asgi() -> Iterator[str]:
    """config.asgi under uvicorn on a free loopback port, in a thread; yields its base URL."""
    from config.asgi import application

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        application, lifespan="off", log_level="warning", ws="websockets-sansio"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


async def ws_connect(user, path: str = "/ws/mail/") -> WebsocketCommunicator:  # type: ignore[no-untyped-def]
    """A websocket to ``path`` signed in as ``user`` through a real session cookie."""
    from config.asgi import application

    client = Client()
    await database_sync_to_async(client.force_login)(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    communicator = WebsocketCommunicator(
        application, path, headers=[(b"cookie", cookie), (b"origin", b"http://localhost")]
    )
    connected, _ = await communicator.connect()
    assert connected
    return communicator


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def receiver_log(port: int) -> Path:
    """Where :func:`start_receiver_process` writes the child's output (kept after a failure)."""
    return ROOT / "tests" / "artifacts" / f"smtpd-{port}.log"


def start_receiver_process(
    port: int, *, env: dict[str, str] | None = None, args: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    """``manage.py smtpd`` as a child process on the test database (unless ``env`` names
    another); ``args`` are more smtpd options. Returns once it greets."""
    from tests.factories import child_database_url

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "DATABASE_URL": child_database_url(),
        **(env or {}),
    }
    log = receiver_log(port)
    log.parent.mkdir(exist_ok=True)
    with log.open("wb") as output:  # kept for reading when a test fails
        process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "smtpd",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *args,
            ],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(100).startswith(b"220"):
                    return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("receiver did not start")


def read_line(sock: socket.socket) -> bytes:
    """One reply line from a raw SMTP socket (empty when the server closed it)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def smtp_command(sock: socket.socket, line: bytes) -> bytes:
    """Send one command; returns the last line of its (possibly multi-line) reply."""
    sock.sendall(line + b"\r\n")
    reply = read_line(sock)
    while reply[3:4] == b"-":
        reply = read_line(sock)
    return reply
