"""Shared benchmark plumbing: a private database, Django setup, child processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


def bench_database_url(name: str = "mailroom_bench") -> str:
    """DATABASE_URL with the database name replaced: benchmarks never touch dev or test data."""
    url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/mailroom")
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def recreate_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_banner(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(100).startswith(b"220"):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answered on port {port}")


def start_manage(args: list[str], database_url: str, **env: str) -> subprocess.Popen[bytes]:
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOG_LEVEL": "WARNING",
        "DEBUG": "0",
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environment, stdout=subprocess.DEVNULL
    )


def start_web(
    database_url: str,
    port: int,
    *,
    workers: int = 2,
    server: str = "asgi",
    settings_module: str = "config.settings",
    log: Path | None = None,
    **env: str,
) -> subprocess.Popen[bytes]:
    """gunicorn on 127.0.0.1:port: uvicorn workers on config.asgi, or sync ones on config.wsgi.

    Its output goes to the log file when one is given, else to this process's.
    """
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": settings_module,
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        **env,
    }
    kind = (
        ["-k", "uvicorn.workers.UvicornWorker", "config.asgi:application"]
        if server == "asgi"
        else ["-k", "sync", "config.wsgi:application"]
    )
    output = log.open("ab") if log else None
    try:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), *kind, "-b", f"127.0.0.1:{port}",
             "-w", str(workers), "--log-level", "warning"],
            cwd=ROOT,
            env=environment,
            stdout=output,
            stderr=output,
        )  # fmt: skip
    finally:
        if output:
            output.close()


def wait_for_http(url: str, timeout: float = 60) -> None:
    """Until a GET of url answers 2xx (the server has imported Django and is listening)."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=5).read()  # noqa: S310 - a loopback URL
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def stop_processes(processes: list[subprocess.Popen[bytes]], timeout: float = 30) -> None:
    """SIGTERM every process, then wait for each; one that outlives the timeout is killed."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            print(f"pid {process.pid} did not stop within {timeout:.0f} s of SIGTERM; killed")
            process.kill()
            process.wait()
