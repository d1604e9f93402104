"""The receiver over a real socket, with smtplib and raw sockets."""

from __future__ import annotations

import smtplib
import socket
import ssl
import time
from pathlib import Path

import pytest

from mailcore.models import Mailbox, Message
from mailcore.smtp.server import Receiver, ReceiverConfig
from tests.factories import make_email, self_signed_certificate

pytestmark = pytest.mark.django_db(transaction=True)


def client(receiver: Receiver) -> smtplib.SMTP:
    smtp = smtplib.SMTP("127.0.0.1", receiver.port, timeout=10)
    smtp.ehlo("client.test")
    return smtp


def raw_session(receiver: Receiver) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", receiver.port), timeout=10)
    sock.recv(1024)  # greeting
    sock.sendall(b"EHLO client.test\r\n")
    time.sleep(0.05)
    sock.recv(4096)
    return sock


def read_replies(sock: socket.socket, count: int) -> list[bytes]:
    data = b""
    deadline = time.monotonic() + 10
    while data.count(b"\r\n") < count and time.monotonic() < deadline:
        data += sock.recv(65536)
    return data.split(b"\r\n")[:count]


def test_accepts_mail_for_a_local_mailbox(receiver: Receiver, alice: Mailbox) -> None:
    with client(receiver) as smtp:
        code, _ = smtp.mail("dana@remote.test")
        assert code == 250
        assert smtp.rcpt("Alice@Example.test") == (250, b"2.1.5 Ok")
        code, reply = smtp.data(make_email(subject="Over the wire"))
    assert code == 250
    assert reply.startswith(b"2.0.0 Ok: queued as ")
    message = Message.objects.get(mailbox=alice)
    assert message.subject == "Over the wire"
    assert message.envelope_from == "dana@remote.test"
    raw = bytes(message.blob.data)
    assert raw.startswith(b"Return-Path: <dana@remote.test>\r\nReceived: from client.test")
    assert raw.endswith(make_email(subject="Over the wire").split(b"\r\n\r\n", 1)[1])


def test_ehlo_advertises_size_and_pipelining(receiver: Receiver, alice: Mailbox) -> None:
    with client(receiver) as smtp:
        assert smtp.esmtp_features["size"] == "200000"
        assert "pipelining" in smtp.esmtp_features
        assert "8bitmime" in smtp.esmtp_features
        assert "starttls" not in smtp.esmtp_features


def test_unknown_user_and_relay_are_refused(receiver: Receiver, alice: Mailbox) -> None:
    with client(receiver) as smtp:
        smtp.mail("dana@remote.test")
        code, text = smtp.rcpt("nobody@example.test")
        assert (code, text[:5]) == (550, b"5.1.1")
        code, text = smtp.rcpt("someone@gmail.test")
        assert (code, text) == (550, b"5.7.1 <someone@gmail.test>: Relay access denied")
        with pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.data(make_email())
        assert refused.value.smtp_code == 503
    assert Message.objects.count() == 0


def test_over_quota_mailbox_is_refused(receiver: Receiver, alice: Mailbox) -> None:
    Mailbox.objects.filter(id=alice.id).update(quota_bytes=1000, used_bytes=1000)
    with client(receiver) as smtp:
        smtp.mail("dana@remote.test")
        code, text = smtp.rcpt("alice@example.test")
    assert (code, text[:5]) == (452, b"4.2.2")


def test_message_larger_than_whole_quota_is_refused_permanently(
    receiver: Receiver, alice: Mailbox
) -> None:
    Mailbox.objects.filter(id=alice.id).update(quota_bytes=300)
    with client(receiver) as smtp:
        smtp.mail("dana@remote.test")
        assert smtp.rcpt("alice@example.test")[0] == 250
        code, text = smtp.data(make_email(body="x" * 500))
    assert (code, text[:5]) == (552, b"5.2.2")
    assert Message.objects.count() == 0
    assert Mailbox.objects.get(id=alice.id).used_bytes == 0


def test_message_that_no_longer_fits_is_deferred(receiver: Receiver, alice: Mailbox) -> None:
    Mailbox.objects.filter(id=alice.id).update(quota_bytes=2000, used_bytes=1500)
    with client(receiver) as smtp:
        smtp.mail("dana@remote.test")
        assert smtp.rcpt("alice@example.test")[0] == 250
        code, text = smtp.data(make_email(body="x" * 900))
    assert (code, text[:5]) == (452, b"4.2.2")
    assert Message.objects.count() == 0


def test_declared_size_over_limit_is_refused_at_mail(receiver: Receiver, alice: Mailbox) -> None:
    with client(receiver) as smtp:
        code, text = smtp.mail("dana@remote.test", options=["SIZE=999999"])
    assert (code, text[:5]) == (552, b"5.3.4")


def test_size_is_enforced_while_streaming(receiver: Receiver, alice: Mailbox) -> None:
    with client(receiver) as smtp:
        smtp.mail("dana@remote.test")
        smtp.rcpt("alice@example.test")
        code, text = smtp.data(make_email(body=("y" * 998 + "\r\n") * 300))
        assert (code, text[:5]) == (552, b"5.3.4")
        # The session is still usable afterwards.
        smtp.mail("dana@remote.test")
        smtp.rcpt("alice@example.test")
        assert smtp.data(make_email(subject="small"))[0] == 250
    assert list(Message.objects.values_list("subject", flat=True)) == ["small"]


def test_recipient_limit(receiver: Receiver, alice: Mailbox) -> None:
    with client(receiver) as smtp:
        smtp.mail("dana@remote.test")
        for _ in range(5):
            assert smtp.rcpt("alice@example.test")[0] == 250
        code, text = smtp.rcpt("alice@example.test")
    assert (code, text[:5]) == (452, b"4.5.3")


@pytest.mark.parametrize(
    "smuggle",
    [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r"],
    ids=["LF.LF", "LF.CRLF", "CRLF.LF", "CR.CR"],
)
def test_smtp_smuggling_never_creates_a_second_message(
    receiver: Receiver, alice: Mailbox, smuggle: bytes
) -> None:
    sock = raw_session(receiver)
    payload = (
        b"MAIL FROM:<dana@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
        b"Subject: first\r\n\r\nhello"
        + smuggle
        + b"MAIL FROM:<admin@example.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
        b"Subject: smuggled\r\n\r\nforged\r\n.\r\n"
        b"QUIT\r\n"
    )
    sock.sendall(payload)
    replies = read_replies(sock, 5)
    sock.close()
    assert replies[:3] == [b"250 2.1.0 Ok", b"250 2.1.5 Ok", b"354 End data with <CR><LF>.<CR><LF>"]
    assert replies[3].startswith(b"550 5.6.0")
    assert replies[4] == b"221 2.0.0 Bye"
    assert Message.objects.count() == 0


def test_pipelined_transactions_each_get_their_reply(receiver: Receiver, alice: Mailbox) -> None:
    sock = raw_session(receiver)
    one = make_email(subject="one").replace(b"\r\n.", b"\r\n..")
    two = make_email(subject="two")
    sock.sendall(
        b"MAIL FROM:<dana@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
        + one
        + b".\r\nMAIL FROM:<dana@remote.test>\r\nRCPT TO:<nobody@example.test>\r\n"
        b"RCPT TO:<alice@example.test>\r\nDATA\r\n" + two + b".\r\nQUIT\r\n"
    )
    replies = read_replies(sock, 10)
    sock.close()
    assert [reply[:3] for reply in replies] == [
        b"250",
        b"250",
        b"354",
        b"250",
        b"250",
        b"550",
        b"250",
        b"354",
        b"250",
        b"221",
    ]
    assert sorted(Message.objects.values_list("subject", flat=True)) == ["one", "two"]


def test_per_ip_connection_cap(transactional_db: None, alice: Mailbox) -> None:
    server = Receiver(ReceiverConfig(host="127.0.0.1", port=0, max_connections_per_ip=2))
    server.start_in_thread()
    try:
        first, second = raw_session(server), raw_session(server)
        third = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        assert third.recv(1024).startswith(b"421 4.7.0")
        assert third.recv(1024) == b""  # closed by the server
        first.close()
        time.sleep(0.2)
        fourth = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        assert fourth.recv(1024).startswith(b"220 ")
        for sock in (second, third, fourth):
            sock.close()
    finally:
        server.stop_thread()


def test_idle_session_times_out(transactional_db: None) -> None:
    server = Receiver(ReceiverConfig(host="127.0.0.1", port=0, command_timeout=0.5))
    server.start_in_thread()
    try:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        assert sock.recv(1024).startswith(b"220 ")
        started = time.monotonic()
        assert sock.recv(1024) == b""
        assert time.monotonic() - started < 3
    finally:
        server.stop_thread()


def test_a_session_of_junk_commands_is_closed_421(  # type: ignore[no-untyped-def]
    transactional_db: None, alice: Mailbox, settings
) -> None:
    """NOOP every few seconds would hold a slot forever under the idle timeout: the junk
    command budget closes the session, and mail commands are not counted."""
    settings.MAILROOM_SMTP_JUNK_COMMAND_LIMIT = 3
    server = Receiver(ReceiverConfig(host="127.0.0.1", port=0))
    server.start_in_thread()
    try:
        sock = raw_session(server)
        for _ in range(4):
            sock.sendall(b"MAIL FROM:<d@remote.test>\r\nRSET\r\n")
            assert [r[:3] for r in read_replies(sock, 2)] == [b"250", b"250"]
        for _ in range(3):
            sock.sendall(b"NOOP\r\n")
            assert read_replies(sock, 1)[0].startswith(b"250")
        sock.sendall(b"NOOP\r\n")
        assert read_replies(sock, 1)[0].startswith(b"421 4.7.0 NOOP sent too many times")
        assert sock.recv(1024) == b""
        sock.close()
    finally:
        server.stop_thread()


def test_slow_data_is_cut_off_at_the_data_deadline(transactional_db: None, alice: Mailbox) -> None:
    server = Receiver(ReceiverConfig(host="127.0.0.1", port=0, data_timeout=0.5))
    server.start_in_thread()
    try:
        sock = raw_session(server)
        sock.sendall(b"MAIL FROM:<d@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
        read_replies(sock, 3)
        for _ in range(4):  # a slowloris: a byte at a time, never finishing
            sock.sendall(b"x")
            time.sleep(0.2)
        assert read_replies(sock, 1)[0].startswith(b"421 4.4.2")
        sock.close()
    finally:
        server.stop_thread()
    assert Message.objects.count() == 0


def test_starttls_when_a_certificate_is_configured(
    transactional_db: None, alice: Mailbox, tmp_path: Path
) -> None:
    cert, key = self_signed_certificate(tmp_path)
    server = Receiver(ReceiverConfig(host="127.0.0.1", port=0, tls_cert=cert, tls_key=key))
    server.start_in_thread()
    try:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as smtp:
            smtp.ehlo("client.test")
            assert "starttls" in smtp.esmtp_features
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            assert smtp.starttls(context=context)[0] == 220
            smtp.ehlo("client.test")
            smtp.sendmail("dana@remote.test", ["alice@example.test"], make_email(subject="tls"))
    finally:
        server.stop_thread()
    raw = bytes(Message.objects.get(subject="tls").blob.data)
    assert b"with ESMTPS id" in raw
