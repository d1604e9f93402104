"""Plain-text bounces: recognising them and finding each failed recipient's block of text.

MTAs that do not send RFC 3464 reports (qmail, Exim, Domino, old Sendmail, webmail
providers...) still follow a common shape: a sentence about failed delivery, then each failed
address on a line of its own (often in <> or followed by ':'), then the remote server's reply.
"""

from __future__ import annotations

import re

from mailcore.bounces.message import ADDRESS_RE, Parsed, first_address

SENDER_RE = re.compile(
    r"mailer-daemon|postmaster|mail ?delivery|mdaemon|mail\.delivery\.system|"
    r"maildelivery|bounce|no-?reply|post_master|mail administrator|mailer|smtp|daemon|notification",
    re.I,
)
SUBJECT_RE = re.compile(
    r"undeliver|undelivered|delivery (?:status|failure|failed|problem|report|notification|error)|"
    r"returned mail|return(?:ed)? to sender|failure notice|mail delivery (?:failed|failure|error)|"
    r"non[- ]?delivery|could not (?:be )?deliver|not (?:be )?delivered|delivery fail|"
    r"mail system error|message (?:not delivered|delivery)|nondeliverable|"
    r"warning: (?:could not|message)|delayed mail|delivery delayed|rejected:|"
    r"mail (?:could not|failure)|bounced?|failed delivery|delivery notification|"
    r"error sending|unable to deliver|配信|エラー|permanent error|unzustellbar|"
    r"non remis|non recapitabile|no entregado|mail failed|returning (?:message )?to sender",
    re.I,
)
BODY_RE = re.compile(
    r"this is the mail system at|i'm afraid i wasn't able to deliver|"
    r"could not be delivered to one or more|the following address(?:es)? failed|"
    r"following recipient|transcript of session follows|"
    r"delivery has failed to these recipients|"
    r"your message (?:could not|was not|cannot) be delivered|"
    r"unable to deliver (?:your )?message|message could not be delivered|"
    r"delivery to the following recipients? (?:failed|has been delayed|was aborted)|"
    r"not delivered to|undeliverable|permanent (?:error|failure)|"
    r"there was an error delivering your mail|the message you sent|mail delivery failed|"
    r"could not be delivered to|error occurred while trying to deliver",
    re.I,
)
IGNORED_LOCALPARTS = re.compile(r"^(?:mailer-daemon|postmaster|mail-daemon|daemon)$", re.I)
SKIP_LINE_RE = re.compile(
    r"https?://|^\s*(?:from|to|reply-to|sender|return-path|cc|envelope-from|x-[\w-]+):|"
    r"envelope-from|mail from|^\s*>>> mail from|message-id|in-reply-to|references:",
    re.I,
)
RECIPIENT_HINT_RE = re.compile(
    r"^\s*[*-]?\s*<?\S+@\S+?>?\s*:?\s*$|rcpt to|recipient|delivered to|deliver(?:y|ing)? to|"
    r"failed|could not|unable|was not|not delivered|to:|undeliverable|"
    r"<\S+@\S+>\s*(?::|\.\.\.)",
    re.I,
)
TRANSIENT_TEXT_RE = re.compile(
    r"temporar(?:y|ily)|will be retried|will continue|warning message only|"
    r"has not yet been delivered|delivery (?:has been |is )?delayed|\bdelayed\b|"
    r"try again later|still trying|retrying",
    re.I,
)
PERMANENT_TEXT_RE = re.compile(
    r"permanent (?:error|failure)|failed permanently|i've given up|giving up|gave up|"
    r"could not be delivered|not be delivered",
    re.I,
)


def is_bounce(parsed: Parsed) -> bool:
    headers = parsed.headers
    if parsed.delivery_status or "x-failed-recipients" in headers:
        return True
    if "report-type=delivery-status" in headers.get("content-type", "").replace('"', "").lower():
        return True
    subject = headers.get("subject", "")
    sender = headers.get("from", "")
    from_daemon = bool(SENDER_RE.search(sender)) or not first_address(sender)
    subject_hit = bool(SUBJECT_RE.search(subject))
    body_hit = bool(BODY_RE.search(parsed.notification[:6000]))
    if subject_hit and (from_daemon or body_hit or parsed.original_headers):
        return True
    return body_hit and (from_daemon or bool(parsed.original_headers))


def _excluded_addresses(parsed: Parsed) -> set[str]:
    excluded = set()
    for key in ("from", "to", "reply-to", "return-path", "sender", "cc"):
        address = first_address(parsed.headers.get(key, ""))
        if address:
            excluded.add(address)
    for key in ("from", "return-path", "sender", "reply-to"):
        address = first_address(parsed.original_headers.get(key, ""))
        if address:
            excluded.add(address)
    return excluded


def _usable(address: str, excluded: set[str]) -> bool:
    local = address.split("@", 1)[0]
    return address not in excluded and not IGNORED_LOCALPARTS.match(local)


def find_recipients(parsed: Parsed) -> list[str]:
    """Failed addresses named in a plain-text notification, in order of appearance."""
    excluded = _excluded_addresses(parsed)
    found: list[str] = []
    header = parsed.headers.get("x-failed-recipients", "")
    for match in ADDRESS_RE.finditer(header):
        address = match.group(1).lower()
        if address not in found:
            found.append(address)
    if found:
        return found
    preferred: list[str] = []
    others: list[str] = []
    for line in parsed.notification.split("\n"):
        if "@" not in line or SKIP_LINE_RE.search(line):
            continue
        hinted = bool(RECIPIENT_HINT_RE.search(line))
        for match in ADDRESS_RE.finditer(line):
            address = match.group(1).lower().strip(".")
            if not _usable(address, excluded):
                continue
            target = preferred if hinted else others
            if address not in preferred and address not in others:
                target.append(address)
    if preferred:
        return preferred
    if others:
        return others[:1]
    original = parsed.original_headers
    for key in ("x-original-to", "delivered-to", "to"):
        address = first_address(original.get(key, ""))
        if address and _usable(address, set()):
            return [address]
    for key in ("x-original-to", "original-recipient"):
        address = first_address(parsed.headers.get(key, ""))
        if address:
            return [address]
    return []


def recipient_block(text: str, address: str, others: list[str]) -> str:
    """The lines that explain why `address` failed."""
    lines = text.split("\n")
    lowered = [line.lower() for line in lines]
    other_set = [other for other in others if other != address]
    start = next((i for i, line in enumerate(lowered) if address in line), None)
    if start is None:
        return ""
    collected = [_without_address(lines[start], address)]
    index = start
    for index in range(start + 1, min(len(lines), start + 25)):
        line = lines[index]
        low = lowered[index]
        if any(other in low for other in other_set):
            break
        if not line.strip():
            if _has_content(collected):
                break
            continue
        if re.match(r"^\s*-{3,}|^\s*={5,}", line):
            if _has_content(collected):
                break
            continue
        collected.append(line)
    if not _has_reply(collected):
        # The explanation may sit in the next paragraph ("because:\n\n  User ... not listed").
        paragraphs = 0
        for line in lines[index + 1 : index + 12] if len(lines) > start + 1 else []:
            if any(other in line.lower() for other in other_set) or ORIGINAL_LINE_RE.match(line):
                break
            if not line.strip():
                paragraphs += 1
                if paragraphs > 2 or _has_reply(collected):
                    break
                continue
            collected.append(line)
    # Sendmail transcripts put the server's reply on lines naming the address elsewhere.
    extra = [
        line
        for index, line in enumerate(lines)
        if index != start and address in lowered[index] and re.match(r"^\s*(?:<<<|\d{3}[ -])", line)
    ]
    return "\n".join(collected + extra)


ORIGINAL_LINE_RE = re.compile(r"^\s*(?:-{3,}|={5,}|[A-Z][\w-]+: )")
REPLY_LINE_RE = re.compile(r"\b[45]\d\d\b|[45]\.\d{1,3}\.\d{1,3}")


def _has_reply(collected: list[str]) -> bool:
    return any(REPLY_LINE_RE.search(line) for line in collected) or len(collected) > 3


def _without_address(line: str, address: str) -> str:
    stripped = re.sub(r"[<>():\s*]", "", line).lower()
    return "" if stripped == address else line


def _has_content(collected: list[str]) -> bool:
    return any(re.search(r"[A-Za-z]{3}", line) for line in collected)


def transcript_reply(text: str) -> str:
    """Server replies quoted in a session transcript ('<<< 550 ...')."""
    return "\n".join(re.findall(r"^\s*<<<\s*([45]\d\d.*)$", text, re.M))


def is_transient_text(text: str) -> bool | None:
    if PERMANENT_TEXT_RE.search(text):
        return False
    if TRANSIENT_TEXT_RE.search(text):
        return True
    return None
