from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

POSTFIX_DSN = (
    b"From: MAILER-DAEMON@mx.remote.test (Mail Delivery System)\r\n"
    b"To: bounces+abc@example.test\r\nSubject: Undelivered Mail Returned to Sender\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
    b"--B\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you...\r\n"
    b"--B\r\nContent-Type: message/delivery-status\r\n\r\n"
    b"Reporting-MTA: dns; mx.remote.test\r\n\r\n"
    b"Final-Recipient: rfc822; nobody@remote.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
    b"Diagnostic-Code: smtp; 550 5.1.1 <nobody@remote.test>: Recipient address rejected:"
    b" User unknown in virtual mailbox table\r\n"
    b"--B--\r\n"
)


def test_prints_one_json_line_per_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dsn = tmp_path / "dsn.eml"
    dsn.write_bytes(POSTFIX_DSN)
    plain = tmp_path / "plain.eml"
    plain.write_bytes(b"From: a@b.test\r\nSubject: hi\r\n\r\nhello\r\n")
    call_command("parsebounce", str(dsn), str(plain))
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["file"] == str(dsn)
    assert lines[0]["kind"] == "bounce"
    assert [
        (r["address"], r["status"], r["reason"], r["permanent"]) for r in lines[0]["recipients"]
    ] == [("nobody@remote.test", "5.1.1", "userunknown", True)]
    assert "User unknown" in lines[0]["recipients"][0]["diagnostic"]
    assert (lines[1]["kind"], lines[1]["recipients"]) == ("not_bounce", [])


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="No such file"):
        call_command("parsebounce", str(tmp_path / "absent.eml"))
