"""Reference SMTP peers for benchmarks: a private Postfix instance and Postfix's smtp-sink.

Everything listens on 127.0.0.1 only and lives under one base directory
(default /tmp/mailroom-bench-postfix); the system Postfix (if any) is never configured or started.

    python bench/peers.py install
    python bench/peers.py postfix --port 2525 [--domain bench.test] [--relay-port 2526]
    python bench/peers.py sink --port 2526 [-- -c -M 5000]
    python bench/peers.py status
    python bench/peers.py baseline [--messages 5000 --sessions 20 --size 4096] [--json]
    python bench/peers.py stop            # stops Postfix and sinks, removes the base dir
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_BASE = Path("/tmp/mailroom-bench-postfix")
POSTFIX = "/usr/sbin/postfix"
SMTP_SINK = "/usr/sbin/smtp-sink"
MAIL_USER = "nobody"  # owner of the virtual maildirs (virtual_uid_maps)

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = {base}
maillog_file = {base}/maillog
myhostname = bench-postfix.localhost
mydomain = localhost
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = {relay_restrictions}
default_transport = {default_transport}
smtpd_peername_lookup = no
smtpd_client_connection_count_limit = 0
smtpd_tls_security_level = none
smtp_tls_security_level = none
smtp_dns_support_level = disabled
alias_maps =
alias_database =
local_recipient_maps =
biff = no
append_dot_mydomain = no
relayhost = {relayhost}
virtual_mailbox_domains = {domains}
virtual_mailbox_base = {mail}
virtual_mailbox_maps = {mailbox_maps}
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
virtual_transport = virtual
"""

# service type private unpriv chroot wakeup maxproc command
MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60  1 pickup
cleanup   unix  n - n -   0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n -   - trivial-rewrite
bounce    unix  - - n -   0 bounce
defer     unix  - - n -   0 bounce
trace     unix  - - n -   0 bounce
verify    unix  - - n -   1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -   - proxymap
smtp      unix  - - n -   - smtp
relay     unix  - - n -   - smtp
showq     unix  n - n -   - showq
error     unix  - - n -   - error
retry     unix  - - n -   - error
discard   unix  - - n -   - discard
local     unix  - n n -   - local
virtual   unix  - n n -   - virtual
anvil     unix  - - n -   1 anvil
scache    unix  - - n -   1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


@dataclass
class PostfixInstance:
    base: Path
    port: int
    domain: str
    relay_port: int | None

    @property
    def config_dir(self) -> Path:
        return self.base / "conf"

    @property
    def mail_dir(self) -> Path:
        return self.base / "mail"

    def delivered(self) -> int:
        """Messages delivered to the virtual maildirs so far (files in */new)."""
        root = self.mail_dir / self.domain
        return sum(len(os.listdir(d)) for d in root.glob("*/new")) if root.exists() else 0

    def queued(self) -> int:
        """Messages still in the queue (incoming, active, deferred)."""
        q = self.base / "queue"
        return sum(len(files) for name in ("incoming", "active", "deferred", "maildrop")
                   for _, _, files in os.walk(q / name))  # fmt: skip

    def stop(self) -> None:
        stop_postfix(self.base, remove=False)


@dataclass
class SmtpSink:
    proc: subprocess.Popen[bytes]
    port: int
    output: Path

    def messages(self) -> int:
        """Messages received so far, from the `-c` counters ("sess=N quit=N mesg=N\\r")."""
        text = self.output.read_bytes().decode(errors="replace")
        found = re.findall(r"mesg=(\d+)", text)
        return int(found[-1]) if found else 0

    def wait(self, timeout: float | None = None) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        stop_smtp_sink(self)


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, env={**os.environ, **env})


def _wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                if sock.recv(4).startswith(b"220"):
                    return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing answered SMTP on 127.0.0.1:{port}")


def ensure_postfix() -> None:
    """Install Debian's postfix (binaries only, "No configuration"), without starting it."""
    if not (Path(POSTFIX).exists() and Path(SMTP_SINK).exists()):
        preseed = "postfix postfix/main_mailer_type select No configuration\n"
        subprocess.run(["debconf-set-selections"], input=preseed, text=True, check=True)
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "postfix"]
        if _run(install, **env).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], check=True, stdout=subprocess.DEVNULL)
            subprocess.run(
                install, check=True, env={**os.environ, **env}, stdout=subprocess.DEVNULL
            )
    # With "No configuration" there is no /etc/postfix/main.cf and nothing starts; should a
    # configured system instance run on more than loopback, stop it.
    if Path("/etc/postfix/main.cf").exists() and _run([POSTFIX, "status"]).returncode == 0:
        interfaces = _run(["/usr/sbin/postconf", "-h", "inet_interfaces"]).stdout.strip()
        if interfaces not in ("loopback-only", "127.0.0.1", "localhost"):
            _run([POSTFIX, "stop"])


def start_postfix(
    port: int,
    *,
    domain: str = "bench.test",
    relay_port: int | None = None,
    users: Sequence[str] | None = None,
    base: Path = DEFAULT_BASE,
) -> PostfixInstance:
    """Start a private Postfix on 127.0.0.1:port.

    Without relay_port it is an MX for `domain` only and delivers to maildirs under
    base/mail/<domain>/: every recipient into one catch-all maildir `catchall/`, or, with
    `users`, only those local parts (others get 550) each into `<user>/`. Mail for other
    domains is refused and nothing is ever sent out. With relay_port it accepts mail for any
    domain from 127.0.0.0/8 and relays all of it to [127.0.0.1]:relay_port.
    """
    ensure_postfix()
    stop_postfix(base, remove=True)
    conf, queue, data, mail = base / "conf", base / "queue", base / "data", base / "mail"
    for d in (conf, queue, data, mail):
        d.mkdir(parents=True, exist_ok=True)
    user = pwd.getpwnam(MAIL_USER)
    os.chown(mail, user.pw_uid, user.pw_gid)
    postfix_user = pwd.getpwnam("postfix")
    os.chown(data, postfix_user.pw_uid, postfix_user.pw_gid)
    relayhost = f"[127.0.0.1]:{relay_port}" if relay_port else ""
    if users:
        lines = "".join(f"{u}@{domain} {domain}/{u}/\n" for u in users)
        (conf / "vmailbox").write_text(lines)
        mailbox_maps = f"texthash:{conf}/vmailbox"
    else:
        mailbox_maps = f"static:{domain}/catchall/"
    (conf / "main.cf").write_text(
        MAIN_CF.format(
            base=base,
            conf=conf,
            queue=queue,
            data=data,
            mail=mail,
            uid=user.pw_uid,
            gid=user.pw_gid,
            relayhost=relayhost,
            domains="" if relay_port else domain,
            mailbox_maps=mailbox_maps,
            relay_restrictions=("permit_mynetworks, " if relay_port else "")
            + "reject_unauth_destination",
            default_transport="smtp" if relay_port else "error:5.7.1 outbound mail disabled",
        )  # fmt: skip
    )
    (conf / "master.cf").write_text(MASTER_CF.format(port=port))
    for action in ("check", "start"):
        res = _run([POSTFIX, "-c", str(conf), action])
        if res.returncode != 0:
            raise RuntimeError(f"postfix {action} failed: {res.stdout}{res.stderr}")
    _wait_port(port)
    return PostfixInstance(base=base, port=port, domain=domain, relay_port=relay_port)


def stop_postfix(base: Path = DEFAULT_BASE, *, remove: bool = True) -> None:
    """Stop the private Postfix under base (if running); optionally delete its files.

    Sinks started under the same base are left alone (see stop_all).
    """
    conf = base / "conf"
    if (conf / "main.cf").exists() and _run([POSTFIX, "-c", str(conf), "status"]).returncode == 0:
        _run([POSTFIX, "-c", str(conf), "stop"])
        pidfile = base / "queue" / "pid" / "master.pid"
        for _ in range(100):
            if not pidfile.exists():
                break
            time.sleep(0.05)
    if remove:
        for name in ("conf", "queue", "data", "mail"):
            shutil.rmtree(base / name, ignore_errors=True)
        (base / "maillog").unlink(missing_ok=True)


def start_smtp_sink(
    port: int, *options: str, backlog: int = 1000, base: Path = DEFAULT_BASE
) -> SmtpSink:
    """Start `smtp-sink [options] -u postfix 127.0.0.1:port backlog` (options: "-c", "-M", "N").

    Its stdout/stderr go to base/sink-<port>.out; its pid to base/sink-<port>.pid.
    """
    ensure_postfix()
    base.mkdir(parents=True, exist_ok=True)
    out = base / f"sink-{port}.out"
    args = [SMTP_SINK, *options]
    if os.geteuid() == 0 and "-u" not in options:
        args += ["-u", "postfix"]
    args += [f"127.0.0.1:{port}", str(backlog)]
    with out.open("wb") as fh:
        proc = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    (base / f"sink-{port}.pid").write_text(str(proc.pid))
    _wait_port(port)
    return SmtpSink(proc=proc, port=port, output=out)


def stop_smtp_sink(sink: SmtpSink | int, base: Path = DEFAULT_BASE) -> None:
    """Stop a sink by handle or by port (reads base/sink-<port>.pid)."""
    if isinstance(sink, SmtpSink):
        if sink.proc.poll() is None:
            sink.proc.terminate()
            sink.proc.wait(5)
        port = sink.port
    else:
        port = sink
        pidfile = base / f"sink-{port}.pid"
        if pidfile.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pidfile.read_text()), signal.SIGTERM)
    (base / f"sink-{port}.pid").unlink(missing_ok=True)


def stop_all(base: Path = DEFAULT_BASE) -> None:
    """Stop every sink started under base, stop Postfix and delete base."""
    for pidfile in base.glob("sink-*.pid"):
        stop_smtp_sink(int(pidfile.stem.removeprefix("sink-")), base)
    stop_postfix(base, remove=True)
    shutil.rmtree(base, ignore_errors=True)


def run_baseline(
    messages: int = 5000,
    sessions: int = 20,
    size: int = 4096,
    *,
    port: int = 2525,
    sink_port: int = 2526,
    base: Path = DEFAULT_BASE,
) -> dict[str, dict[str, float]]:
    """Measure Postfix with smtpload: inbound to maildirs, then relaying to smtp-sink.

    "accept" figures are smtpload's (wall time until the last 250, time-to-reply after ".");
    "end to end" runs from the first connection until the last message is in a maildir
    (inbound) or counted by smtp-sink's -c counters (relay), polled every 50 ms.
    """
    if not __package__:  # run as `python bench/peers.py`: make the `bench` package importable
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench import smtpload

    make = smtpload.text_message_factory("loadgen@smtpload.localhost", ["user@bench.test"], size)
    figures: dict[str, dict[str, float]] = {}
    try:
        for mode in ("inbound", "relay"):
            sink = start_smtp_sink(sink_port, "-c", base=base) if mode == "relay" else None
            inst = start_postfix(port, relay_port=sink_port if sink else None, base=base)
            started = time.perf_counter()
            res = asyncio.run(
                smtpload.run_load(
                    "127.0.0.1",
                    port,
                    messages=messages,
                    sessions=sessions,
                    messages_per_session=None,
                    make_message=make,
                )  # fmt: skip
            )
            arrived = sink.messages if sink else inst.delivered
            while arrived() < res.ok and time.perf_counter() - started < 600:
                time.sleep(0.05)
            e2e = time.perf_counter() - started
            figures[mode] = {
                "accepted": res.ok, "accept_msgs_per_s": res.msgs_per_s, "p50_ms": res.p50_ms,
                "p95_ms": res.p95_ms, "p99_ms": res.p99_ms, "end_to_end_s": e2e,
                "arrived": arrived(), "end_to_end_msgs_per_s": arrived() / e2e,
            }  # fmt: skip
            where = "received by smtp-sink" if sink else "in maildirs"
            print(f"postfix {mode}: {res.summary()}")
            print(
                f"  end to end: {arrived()} {where} after {e2e:.2f}s = {arrived() / e2e:.0f} msg/s"
            )
            if sink:
                stop_smtp_sink(sink, base)
    finally:
        stop_all(base)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--base", type=Path, default=DEFAULT_BASE)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("install")
    pf = sub.add_parser("postfix")
    pf.add_argument("--port", type=int, default=2525)
    pf.add_argument("--domain", default="bench.test")
    pf.add_argument("--relay-port", type=int)
    sk = sub.add_parser("sink")
    sk.add_argument("--port", type=int, default=2526)
    sk.add_argument("--backlog", type=int, default=1000)
    sk.add_argument("options", nargs="*", help="smtp-sink options, after --")
    sub.add_parser("status")
    sub.add_parser("stop")
    bl = sub.add_parser("baseline", help="measure Postfix inbound and relay with smtpload")
    bl.add_argument("--messages", type=int, default=5000)
    bl.add_argument("--sessions", type=int, default=20)
    bl.add_argument("--size", type=int, default=4096)
    bl.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.cmd == "install":
        ensure_postfix()
    elif args.cmd == "postfix":
        inst = start_postfix(
            args.port, domain=args.domain, relay_port=args.relay_port, base=args.base
        )
        mode = f"relay to [127.0.0.1]:{args.relay_port}" if args.relay_port else "maildir"
        print(f"postfix on 127.0.0.1:{inst.port} ({mode}), config {inst.config_dir}")
    elif args.cmd == "sink":
        sink = start_smtp_sink(args.port, *args.options, backlog=args.backlog, base=args.base)
        print(f"smtp-sink pid {sink.proc.pid} on 127.0.0.1:{sink.port}, output {sink.output}")
    elif args.cmd == "status":
        conf = args.base / "conf"
        up = conf.exists() and _run([POSTFIX, "-c", str(conf), "status"]).returncode == 0
        print(f"postfix: {'running' if up else 'stopped'}")
        for pidfile in sorted(args.base.glob("sink-*.pid")):
            print(f"{pidfile.stem}: pid {pidfile.read_text()}")
    elif args.cmd == "baseline":
        figures = run_baseline(args.messages, args.sessions, args.size, base=args.base)
        if args.json:
            print(json.dumps(figures))
    else:
        stop_all(args.base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
