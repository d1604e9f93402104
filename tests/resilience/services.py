"""PostgreSQL and Redis that the fault tests own, so they can restart and flush them.

The machine's PostgreSQL (5432) and Redis (6379) serve other test runs and this pytest process
itself; they are never restarted or flushed. Instead a session gets a cluster of its own
(``pg_createcluster 15 mrresil<pid>`` on a free port, trust auth, data under a temporary
directory, restarted with ``pg_ctlcluster ... restart -m immediate`` and dropped at the end)
and a ``redis-server`` child on a free port.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis

from tests.support import ROOT, free_port

CLUSTER_PREFIX = "mrresil"


def _postgres_version() -> str:
    versions = sorted(Path("/usr/lib/postgresql").iterdir(), key=lambda p: int(p.name))
    return versions[-1].name


def _ctl(*args: str) -> None:
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", *args],
        check=True,
        capture_output=True,
        timeout=60,
    )


def drop_stale_clusters(version: str) -> None:
    """Clusters left by a test session that was killed (its pid is gone)."""
    listing = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True).stdout
    for line in listing.splitlines():
        fields = line.split()
        match = re.fullmatch(rf"{CLUSTER_PREFIX}(\d+)", fields[1]) if len(fields) > 1 else None
        if match and fields[0] == version and not Path(f"/proc/{match.group(1)}").exists():
            subprocess.run(["pg_dropcluster", "--stop", version, fields[1]], capture_output=True)


@dataclass
class PrivatePostgres:
    version: str
    name: str
    port: int
    directory: Path

    @classmethod
    def create(cls, directory: Path) -> PrivatePostgres:
        version = _postgres_version()
        drop_stale_clusters(version)
        name, port = f"{CLUSTER_PREFIX}{os.getpid()}", free_port()
        subprocess.run(
            ["pg_createcluster", version, name, "-p", str(port), "-d", str(directory / "data")]
            + ["-o", "fsync=off", "-o", "ssl=off"]  # listens on localhost only
            + ["--", "--auth=trust"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        server = cls(version, name, port, directory)
        try:
            server.start()
            with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
                conn.execute("CREATE DATABASE mailroom")
        except BaseException:
            server.drop()
            raise
        return server

    def url(self, database: str = "mailroom") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        _ctl(self.version, self.name, "start")
        self.wait_ready()

    def restart_immediate(self) -> None:
        """What a crash looks like to clients: every connection is cut, no checkpoint."""
        _ctl(self.version, self.name, "restart", "-m", "immediate")
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                time.sleep(0.1)
        raise RuntimeError("the private PostgreSQL did not come up")

    def drop(self) -> None:
        subprocess.run(
            ["pg_dropcluster", "--stop", self.version, self.name], capture_output=True, timeout=60
        )
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class PrivateRedis:
    port: int
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def create(cls) -> PrivateRedis:
        server = cls(free_port())
        server.start()
        return server

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("the private Redis did not come up")

    def flush_and_restart(self) -> None:
        """FLUSHALL (broker queues, caches, leases of connection slots), then kill -9 and
        start again: both what an operator might do and what a crash does."""
        redis.Redis(port=self.port).flushall()
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


class Child:
    """A project process (celery, smtpd) in a process group of its own, so kill -9 reaches
    its pool children too; output goes to tests/artifacts/<name>.log."""

    def __init__(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.name, self.args, self.env = name, args, env
        self.log = ROOT / "tests" / "artifacts" / f"resilience-{name}.log"
        self.log.parent.mkdir(exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                self.args,
                cwd=ROOT,
                env={**os.environ, **self.env},
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def restart(self) -> None:
        self.kill()
        self.start()


def manage(*args: str) -> list[str]:
    return [sys.executable, "manage.py", *args]


def celery(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "config", *args]
