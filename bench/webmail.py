"""Webmail latency on one mailbox of 1,000,000 messages, over the real HTTP stack.

    python bench/webmail.py [--messages 1000000] [--requests 40] [--reseed]
                            [--vector-mode copy|sql] [--explain]

1. Seeds a private database (``mailroom_bench_webmail``, named from DATABASE_URL; never the dev
   or test database) with one mailbox holding ``--messages`` messages, loaded with PostgreSQL
   ``COPY`` (psycopg 3 ``cursor.copy``), not the ORM: subjects, senders, snippets, sizes and
   dates spread over two years, eight folders, ~30% unread, ~2% flagged, labels on ~10%,
   threads, and ``search_vector`` filled exactly as :mod:`mailcore.services.searchdoc` fills it
   (``--vector-mode copy`` computes the tsvector text in Python, ``sql`` has PostgreSQL run
   ``to_tsvector`` in batched ``INSERT ... SELECT``; a sample is checked against PostgreSQL).
   Every message points at one of a handful of shared blobs with real MIME, so opening works.
   Secondary indexes are dropped during the load and rebuilt after it, then VACUUM ANALYZE.
   A database already seeded with the same ``--messages`` is reused unless ``--reseed``.
2. Starts ``gunicorn -k uvicorn.workers.UvicornWorker config.asgi:application`` (2 workers,
   127.0.0.1), signs in over HTTP, and times with one client: the folder list, page 1 and page
   500 of the inbox (keyset cursors), opening a message, and five searches. It prints
   p50/p95/max per request type, then the same work done in-process (services and ORM, no
   HTTP), and with ``--explain`` the PostgreSQL plans of the searches.

Goals: list and open p95 < 50 ms, search p95 < 200 ms.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

if TYPE_CHECKING:
    import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    ROOT,
    bench_database_url,
    free_port,
    recreate_database,
    setup_django,
)


def words(text: str) -> list[str]:
    return text.split()


DATABASE_NAME = "mailroom_bench_webmail"
OWNER = "owner@bench.test"
OWNER_NAME = "Bench Owner"
PASSWORD = "bench-password-webmail"
SEED = 20260101
SEED_VERSION = 2
SPAN = timedelta(days=730)
PAGE = 500

# Planted so that every search has a known shape: a rare word, a common word, a sender,
# an unread-heavy word and a phrase whose words are also common apart.
RARE_WORD = "zanthorium"
RARE_COUNT = 25
COMMON_SENTENCE = "Can we move the meeting to {day}?"  # ~25% of messages
PHRASE_SENTENCE = "The quarterly report is attached."  # ~0.5%
QUARTERLY_SENTENCE = "The quarterly numbers look fine."  # ~1%
REPORT_SENTENCE = "See the report below."  # ~4%
DANA = ("Dana Sender", "dana@remote.test")  # ~1.5% of the mail
SEARCHES = [
    ("rare word", RARE_WORD),
    ("common word", "meeting"),
    ("from:", "from:dana@remote.test"),
    ("is:unread + word", "is:unread invoice"),
    ("phrase", '"quarterly report"'),
]
EXTRA_SEARCHES = [("larger:5M (extra)", "larger:5M")]
FOLDERS = [  # (role or "", name, share of the mail)
    ("inbox", "Inbox", 0.58),
    ("archive", "Archive", 0.20),
    ("sent", "Sent", 0.08),
    ("", "Newsletters", 0.06),
    ("", "Receipts", 0.04),
    ("", "Projects", 0.02),
    ("trash", "Trash", 0.015),
    ("junk", "Junk", 0.005),
]
LABELS = [("Work", "#2563eb"), ("Family", "#16a34a"), ("Finance", "#ca8a04"), ("Travel", "#db2777")]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
FIRST = words(
    "anna ben carla david emma felix grace henry iris jack kate leo maria nina oscar paul "
    "quinn rosa sam tara umar vera will xena yusuf zoe adam bella chris diana erik fiona "
    "george hana"
)
LAST = words(
    "smith jones brown taylor wilson davies evans thomas johnson roberts walker wright "
    "robinson thompson white hughes edwards green hall wood harris martin jackson clarke "
    "lewis young"
)
TLDS = ["com", "org", "net", "io", "de", "fr", "co"]
WORDS = words(
    "the to and of a in is you that it for on with this be are we have not at as your or "
    "will can please thanks team project update new time today tomorrow week next call "
    "review attached file send let know about just also more any there here if all would "
    "like our by an was but they what when get so me my up out one do should need see "
    "make sure back last work good great help schedule customer order account plan budget "
    "draft notes details question issue fix release version access link share document "
    "feedback confirm available morning afternoon office client sales data number hello "
    "hi regards best cheers thank following agenda summary status deadline launch design "
    "proposal contract payment travel flight hotel booking ticket weekend family dinner "
    "lunch coffee photos birthday party newsletter offer discount subscription renewal "
    "password security login alert shipping delivery package tracking return refund "
    "support request ticket server deploy build test bug feature branch merge code sprint "
    "standup roadmap quarter revenue forecast hiring interview candidate offer onboarding "
    "training policy benefits holiday vacation leave"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=40, help="timed requests per type")
    parser.add_argument("--reseed", action="store_true", help="seed even if already seeded")
    parser.add_argument("--vector-mode", choices=["copy", "sql"], default="sql")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE plans")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    url = bench_database_url(DATABASE_NAME)
    seeded = seeded_messages(url)
    if args.reseed or seeded != (args.messages, SEED_VERSION):
        recreate_database(url)
        setup_django(url)
        seconds = Seeder(url, args.messages, args.vector_mode).run()
        print(f"seeded {args.messages:,} messages in {seconds:.0f} s ({args.vector_mode} mode)")
    else:
        setup_django(url)
        print(f"reusing {DATABASE_NAME} with {args.messages:,} messages (--reseed to rebuild)")
    print_context(url, args.workers)
    fixture = Fixture.load()
    in_process = time_in_process(fixture, args.requests)
    over_http = time_over_http(url, fixture, args.requests, args.workers)
    print_results("Over HTTP (gunicorn + uvicorn workers, one client, keep-alive)", over_http)
    print_results("In process (services and ORM, no HTTP, no templates)", in_process)
    print(f"load average after: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    if args.explain:
        explain(fixture)


# --- Seeding -----------------------------------------------------------------------------------


def seeded_messages(url: str) -> tuple[int, int] | None:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5) as connection:
            row = connection.execute(
                "SELECT messages, version FROM bench_webmail_seed ORDER BY seeded_at DESC LIMIT 1"
            ).fetchone()
    except psycopg.Error:
        return None
    return (row[0], row[1]) if row else None


@dataclass
class Vocabulary:
    rng: random.Random
    senders: list[tuple[str, str]] = field(default_factory=list)
    sender_weights: list[float] = field(default_factory=list)
    sentences: list[tuple[str, list[str]]] = field(default_factory=list)

    @classmethod
    def build(cls, rng: random.Random) -> Vocabulary:
        vocabulary = cls(rng)
        syllables = words("ka lo mi ren tor vex dan pel qui sor bel cam dri fen gal hun ith jor")
        syllables += words("lem mor nex ost pra rin sul tam ul vor wis yen zel ark bru cor")
        tail = sorted(
            {
                "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
                for _ in range(40_000)
            }
            - {RARE_WORD}
        )
        vocabulary_words = WORDS + tail
        weights = [1 / (rank + 2) ** 1.05 for rank in range(len(vocabulary_words))]
        cumulative = list(_accumulate(weights))
        for _ in range(60_000):
            picked = rng.choices(vocabulary_words, cum_weights=cumulative, k=rng.randint(5, 14))
            text = " ".join(picked).capitalize() + rng.choice([".", ".", ".", "?", "!", ","])
            vocabulary.sentences.append((text, picked))
        domains = [f"{rng.choice(tail)}.{rng.choice(TLDS)}" for _ in range(400)] + [
            "gmail.com",
            "outlook.com",
            "yahoo.com",
        ] * 50
        for _ in range(3000):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            local = rng.choice([first, last, f"{first}{rng.randint(1, 99)}", "news", "billing"])
            vocabulary.senders.append(
                (f"{first.title()} {last.title()}", f"{local}@{rng.choice(domains)}")
            )
        vocabulary.sender_weights = list(
            _accumulate(1 / (rank + 1) ** 0.9 for rank in range(len(vocabulary.senders)))
        )
        return vocabulary


def _accumulate(values: Iterable[float]) -> Iterator[float]:
    total = 0.0
    for value in values:
        total += value
        yield total


def address_lexemes(name: str, address: str) -> tuple[str, list[str]]:
    """searchdoc.address_terms and the lexemes PostgreSQL's parser makes of it (plain names)."""
    local, _, domain = address.partition("@")
    parts = [name, address, local, domain, *domain.split(".")]
    text = " ".join(part for part in parts if part)
    lexemes = [*name.lower().split(), address, local, domain, *domain.split(".")]
    return text, lexemes


def tsvector_literal(parts: list[tuple[str, list[str]]]) -> str:
    """What ``setweight(to_tsvector(a),'A') || ... || setweight(to_tsvector(d),'D')`` gives.

    Each part's lexemes sit at positions 1..n; ``||`` shifts the right operand by the largest
    position on its left. Valid for the plain words, numbers, hosts and addresses made here.
    """
    positions: dict[str, list[str]] = {}
    offset = 0
    for weight, lexemes in parts:
        suffix = "" if weight == "D" else weight
        for index, lexeme in enumerate(lexemes, start=offset + 1):
            positions.setdefault(lexeme, []).append(f"{min(index, 16383)}{suffix}")
        offset += len(lexemes)
    return " ".join(f"'{lexeme}':{','.join(pos[:256])}" for lexeme, pos in positions.items())


def copy_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", " ").replace("\n", " ").replace("\r", " ")


MESSAGE_COLUMNS = words(
    "id organization_id mailbox_id folder_id thread_id blob_id message_id in_reply_to "
    '"references" subject from_name from_address to_addresses cc_addresses envelope_from '
    "envelope_recipient sent_at received_at size snippet has_attachments is_seen "
    "is_flagged is_answered is_draft"
)


class Seeder:
    def __init__(self, url: str, messages: int, vector_mode: str) -> None:
        self.url = url
        self.count = messages
        self.vector_mode = vector_mode
        self.rng = random.Random(SEED)
        self.samples: list[tuple[int, dict[str, str]]] = []

    def run(self) -> float:
        import psycopg

        from mailcore.models import Blob, Folder, Label, Mailbox
        from mailcore.services.provisioning import create_mailbox

        started = time.monotonic()
        mailbox: Mailbox = create_mailbox(OWNER, PASSWORD, display_name=OWNER_NAME, quota_bytes=0)
        org = mailbox.organization_id
        for role, name, _ in FOLDERS:
            if not role:
                Folder.objects.create(organization_id=org, mailbox=mailbox, name=name)
        folders = {f.name: f.id for f in Folder.objects.filter(mailbox=mailbox)}
        self.folder_ids = [folders[name] for _, name, _ in FOLDERS]
        self.folder_cumulative = list(_accumulate(share for _, _, share in FOLDERS))
        self.label_ids = [
            Label.objects.create(organization_id=org, mailbox=mailbox, name=n, color=c).id
            for n, c in LABELS
        ]
        self.blob_ids = [
            Blob.objects.create(organization_id=org, sha256="0" * 64, size=len(raw), data=raw).id
            for raw in sample_messages()
        ]
        self.org, self.mailbox_id = org, mailbox.id
        print("building the vocabulary ...", flush=True)
        self.vocabulary = Vocabulary.build(self.rng)
        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute("SET session_replication_role = replica")  # no FK triggers
            indexes = self._drop_indexes(connection)
            load_started = time.monotonic()
            self._load(connection)
            print(f"  loaded rows in {time.monotonic() - load_started:.0f} s", flush=True)
            self._check_vectors(connection)
            index_started = time.monotonic()
            connection.execute("SET maintenance_work_mem = '1GB'")
            connection.execute("SET max_parallel_maintenance_workers = 2")
            for name, definition in indexes:
                print(f"  CREATE INDEX {name} ...", flush=True)
                connection.execute(definition)
            print(f"  built indexes in {time.monotonic() - index_started:.0f} s", flush=True)
            self._fix_counters(connection)
            connection.execute("SET session_replication_role = DEFAULT")
            vacuum_started = time.monotonic()
            for table in ("mailcore_message", "mailcore_thread", "mailcore_message_labels"):
                connection.execute(f"VACUUM ANALYZE {table}")
            connection.execute("ANALYZE")
            print(f"  VACUUM ANALYZE in {time.monotonic() - vacuum_started:.0f} s", flush=True)
            seconds = time.monotonic() - started
            connection.execute(
                "CREATE TABLE IF NOT EXISTS bench_webmail_seed (messages int, version int,"
                " vector_mode text, seconds float, seeded_at timestamptz DEFAULT now())"
            )
            connection.execute(
                "INSERT INTO bench_webmail_seed (messages, version, vector_mode, seconds)"
                " VALUES (%s, %s, %s, %s)",
                [self.count, SEED_VERSION, self.vector_mode, seconds],
            )
        return seconds

    def _drop_indexes(self, connection: psycopg.Connection[Any]) -> list[tuple[str, str]]:
        rows = connection.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s)"
            " AND indexname NOT IN (SELECT conname FROM pg_constraint) ORDER BY indexname",
            [["mailcore_message", "mailcore_thread", "mailcore_message_labels"]],
        ).fetchall()
        for name, _ in rows:
            connection.execute(f'DROP INDEX "{name}"')
        return rows

    def _load(self, connection: psycopg.Connection[Any]) -> None:
        rng = self.rng
        now = datetime.now(UTC).replace(microsecond=0)
        start = now - SPAN
        step = SPAN.total_seconds() / self.count
        rare = set(rng.sample(range(self.count), min(RARE_COUNT, self.count)))
        thread_count: list[int] = []
        thread_last: list[datetime] = []
        thread_subject: list[str] = []
        labels: list[tuple[int, int]] = []
        vector_mode = self.vector_mode
        sample_every = max(1, self.count // 300)
        columns = ", ".join(MESSAGE_COLUMNS)
        target = "mailcore_message" if vector_mode == "copy" else "bench_staging"
        if vector_mode == "copy":
            columns += ", search_vector"
        else:
            connection.execute(
                "CREATE UNLOGGED TABLE bench_staging AS SELECT * FROM mailcore_message WITH NO DATA"
            )
            connection.execute(
                "ALTER TABLE bench_staging ADD a text, ADD b text, ADD c text, ADD d text"
            )
            columns += ", a, b, c, d"
        vocabulary = self.vocabulary
        sentences = vocabulary.sentences
        owner_text, owner_lexemes = address_lexemes(OWNER_NAME, OWNER)
        owner_json = json.dumps([[OWNER_NAME, OWNER]])
        sent_folder = self.folder_ids[2]
        receipts_folder = self.folder_ids[4]
        with (
            connection.cursor() as cursor,
            cursor.copy(f"COPY {target} ({columns}) FROM STDIN") as copy,
        ):
            buffer = io.StringIO()
            for index in range(self.count):
                message_id = index + 1
                received = start + timedelta(seconds=(index + rng.random()) * step)
                folder_id = self.folder_ids[
                    _bisect(self.folder_cumulative, rng.random() * self.folder_cumulative[-1])
                ]
                if folder_id != sent_folder and rng.random() < 0.015:
                    sender = DANA
                else:
                    sender = rng.choices(vocabulary.senders, cum_weights=vocabulary.sender_weights)[
                        0
                    ]
                body_parts = [
                    sentences[rng.randrange(len(sentences))] for _ in range(rng.randint(3, 9))
                ]
                lexemes_d = [w for _, words in body_parts for w in words]
                texts = [text for text, _ in body_parts]
                roll = rng.random()
                if roll < 0.25:
                    day = rng.choice(DAYS)
                    texts.append(COMMON_SENTENCE.format(day=day))
                    lexemes_d += ["can", "we", "move", "the", "meeting", "to", day.lower()]
                if roll > 0.995:
                    texts.append(PHRASE_SENTENCE)
                    lexemes_d += ["the", "quarterly", "report", "is", "attached"]
                elif roll > 0.985:
                    texts.append(QUARTERLY_SENTENCE)
                    lexemes_d += ["the", "quarterly", "numbers", "look", "fine"]
                elif roll > 0.945:
                    texts.append(REPORT_SENTENCE)
                    lexemes_d += ["see", "the", "report", "below"]
                if index in rare:
                    texts.append(f"Ask about {RARE_WORD} first.")
                    lexemes_d += ["ask", "about", RARE_WORD, "first"]
                body = " ".join(texts)
                # Subject and thread.
                if thread_count and rng.random() < 0.3:
                    thread = len(thread_count) - 1 - rng.randrange(min(20, len(thread_count)))
                    subject = "Re: " + thread_subject[thread]
                else:
                    thread = len(thread_count)
                    thread_count.append(0)
                    thread_last.append(received)
                    if folder_id == receipts_folder or rng.random() < 0.02:
                        subject = f"Invoice {rng.randint(10000, 99999)} for your order"
                    elif roll > 0.995:
                        subject = f"Quarterly report Q{rng.randint(1, 4)}"
                    else:
                        subject_words = sentences[rng.randrange(len(sentences))][1][
                            : rng.randint(2, 6)
                        ]
                        subject = " ".join(subject_words).capitalize()
                    thread_subject.append(subject)
                thread_count[thread] += 1
                thread_last[thread] = received
                lexemes_c = subject.lower().replace(":", " ").split()
                has_attachments = rng.random() < 0.12
                size = int(max(600, rng.lognormvariate(9.4, 1.0)))
                if has_attachments:
                    size += int(min(40_000_000, rng.lognormvariate(12.9, 1.2)))
                    lexemes_c.append("summary.pdf")
                    subject_text = f"{subject} summary.pdf"
                else:
                    subject_text = subject
                if folder_id == sent_folder:
                    sender_name, sender_address = OWNER_NAME, OWNER
                    recipient = rng.choices(
                        vocabulary.senders, cum_weights=vocabulary.sender_weights
                    )[0]
                    b_text, b_lexemes = address_lexemes(*recipient)
                    to_json = json.dumps([list(recipient)])
                    is_seen = True
                else:
                    sender_name, sender_address = sender
                    b_text, b_lexemes, to_json = owner_text, owner_lexemes, owner_json
                    is_seen = rng.random() >= 0.3
                a_text, a_lexemes = address_lexemes(sender_name, sender_address)
                row = [
                    str(message_id),
                    str(self.org),
                    str(self.mailbox_id),
                    str(folder_id),
                    str(thread + 1),
                    str(self.blob_ids[index % len(self.blob_ids)]),
                    f"{message_id}.{SEED}@bench.test",
                    "",
                    "{}",
                    subject,
                    sender_name,
                    sender_address,
                    to_json,
                    "[]",
                    sender_address,
                    OWNER,
                    (received - timedelta(seconds=rng.randint(1, 90))).isoformat(),
                    received.isoformat(),
                    str(size),
                    body[:200],
                    "t" if has_attachments else "f",
                    "t" if is_seen else "f",
                    "t" if rng.random() < 0.02 else "f",
                    "t" if rng.random() < 0.1 else "f",
                    "f",
                ]
                if vector_mode == "copy":
                    row.append(
                        tsvector_literal(
                            [("A", a_lexemes), ("B", b_lexemes), ("C", lexemes_c), ("D", lexemes_d)]
                        )
                    )
                else:
                    row += [a_text, b_text, subject_text, body]
                buffer.write("\t".join(copy_text(value) for value in row))
                buffer.write("\n")
                if index % sample_every == 0:
                    texts_by_weight = {"A": a_text, "B": b_text, "C": subject_text, "D": body}
                    self.samples.append((message_id, texts_by_weight))
                if rng.random() < 0.1:
                    for label in rng.sample(self.label_ids, rng.choice([1, 1, 1, 2])):
                        labels.append((message_id, label))
                if index % 5000 == 4999:
                    copy.write(buffer.getvalue())
                    buffer = io.StringIO()
                if index % 100_000 == 99_999:
                    print(f"  {index + 1:,} rows", flush=True)
            copy.write(buffer.getvalue())
        if vector_mode == "sql":
            self._fill_vectors_in_sql()
        with (
            connection.cursor() as cursor,
            cursor.copy(
                "COPY mailcore_thread (id, organization_id, mailbox_id, subject_key, message_count,"
                " last_message_at, created_at) FROM STDIN"
            ) as copy,
        ):
            for index, (count, last, subject) in enumerate(
                zip(thread_count, thread_last, thread_subject, strict=True)
            ):
                copy.write_row(
                    (index + 1, self.org, self.mailbox_id, subject.lower()[:255], count, last, last)
                )
        with (
            connection.cursor() as cursor,
            cursor.copy("COPY mailcore_message_labels (message_id, label_id) FROM STDIN") as copy,
        ):
            for pair in labels:
                copy.write_row(pair)
        for table in ("mailcore_message", "mailcore_thread", "mailcore_message_labels"):
            connection.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" (SELECT coalesce(max(id), 1) FROM {table}))"
            )

    def _fill_vectors_in_sql(self) -> None:
        """INSERT ... SELECT from the staging table in id ranges, on two connections."""
        import psycopg

        columns = ", ".join(MESSAGE_COLUMNS)
        vector = " || ".join(
            f"setweight(to_tsvector('simple'::regconfig, {part}), '{part.upper()}')"
            for part in "abcd"
        )
        batch = 50_000
        ranges = [(low, low + batch) for low in range(1, self.count + 1, batch)]
        lock = threading.Lock()

        def worker() -> None:
            with psycopg.connect(self.url, autocommit=True) as connection:
                connection.execute("SET session_replication_role = replica")
                while True:
                    with lock:
                        if not ranges:
                            return
                        low, high = ranges.pop(0)
                    connection.execute(
                        f"INSERT INTO mailcore_message ({columns}, search_vector)"
                        f" SELECT {columns}, {vector} FROM bench_staging"
                        " WHERE id >= %s AND id < %s",
                        [low, high],
                    )

        started = time.monotonic()
        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute("DROP TABLE bench_staging")
        print(f"  to_tsvector in SQL took {time.monotonic() - started:.0f} s", flush=True)

    def _check_vectors(self, connection: psycopg.Connection[Any]) -> None:
        """The stored vectors equal what PostgreSQL computes from the same texts."""
        wrong = []
        for message_id, texts in self.samples:
            same = connection.execute(
                "SELECT search_vector = (setweight(to_tsvector('simple', %s), 'A')"
                " || setweight(to_tsvector('simple', %s), 'B')"
                " || setweight(to_tsvector('simple', %s), 'C')"
                " || setweight(to_tsvector('simple', %s), 'D'))"
                " FROM mailcore_message WHERE id = %s",
                [texts["A"], texts["B"], texts["C"], texts["D"], message_id],
            ).fetchone()[0]
            if not same:
                wrong.append(message_id)
        if wrong:
            raise SystemExit(f"search_vector differs from PostgreSQL's for messages {wrong[:10]}")
        print(f"  {len(self.samples)} sampled search vectors equal PostgreSQL's", flush=True)

    def _fix_counters(self, connection: psycopg.Connection[Any]) -> None:
        connection.execute(
            "UPDATE mailcore_folder f SET total_count = c.total, unread_count = c.unread FROM"
            " (SELECT folder_id, count(*) AS total, count(*) FILTER (WHERE NOT is_seen) AS unread"
            "  FROM mailcore_message GROUP BY folder_id) c WHERE f.id = c.folder_id"
        )
        connection.execute(
            "UPDATE mailcore_mailbox SET used_bytes ="
            " (SELECT coalesce(sum(size), 0) FROM mailcore_message WHERE mailbox_id = %s)"
            " WHERE id = %s",
            [self.mailbox_id, self.mailbox_id],
        )


def _bisect(cumulative: list[float], value: float) -> int:
    for index, bound in enumerate(cumulative):
        if value < bound:
            return index
    return len(cumulative) - 1


def sample_messages() -> list[bytes]:
    """A handful of real MIME messages the seeded rows share as their raw bytes."""
    date = format_datetime(datetime(2026, 1, 15, 9, 30, tzinfo=UTC))
    raws = []
    for number, kind in enumerate(["plain", "html", "attachment", "inline", "long", "plain"]):
        message = EmailMessage()
        message["From"] = "Dana Sender <dana@remote.test>"
        message["To"] = f"{OWNER_NAME} <{OWNER}>"
        message["Subject"] = f"Sample {kind} message {number}"
        message["Date"] = date
        message["Message-ID"] = f"<sample{number}@bench.test>"
        text = "Hello,\n\nCan we move the meeting to Friday? The quarterly report is attached.\n"
        if kind == "long":
            text += "\n".join(
                f"> line {n} of an earlier message in this thread" for n in range(300)
            )
        message.set_content(text)
        if kind in {"html", "inline"}:
            html = "<p>Hello,</p><p>Can we move the <b>meeting</b> to Friday?</p>"
            if kind == "inline":
                html += '<img src="cid:logo@bench" alt="logo"><img src="https://example.com/t.gif">'
            message.add_alternative(html, subtype="html")
            if kind == "inline":
                message.get_payload()[1].add_related(
                    b"\x89PNG\r\n\x1a\n" + bytes(200), "image", "png", cid="<logo@bench>"
                )
        if kind == "attachment":
            message.add_attachment(
                b"%PDF-1.4\n" + bytes(20_000),
                maintype="application",
                subtype="pdf",
                filename="summary.pdf",
            )
        raws.append(message.as_bytes(policy=SMTP))
    return raws


# --- Timing ------------------------------------------------------------------------------------


@dataclass
class Fixture:
    """What the timed requests need: the user, the inbox, a page-500 cursor, messages to open."""

    user_id: int
    mailbox_id: int
    inbox_id: int
    page_size: int
    page_number: int
    cursor_500: str
    cursor_500_at: tuple[datetime, int]
    open_ids: list[int]

    @classmethod
    def load(cls) -> Fixture:
        from mailcore.models import Folder, Mailbox, Message

        mailbox = Mailbox.objects.get(address=OWNER)
        inbox = Folder.objects.get(mailbox=mailbox, role="inbox")
        page_size = 50
        try:
            from webmail.services.preferences import get_preferences

            page_size = get_preferences(mailbox.user).page_size
        except ImportError:
            pass
        # The last row of page 499 is the cursor of page 500 (found with OFFSET, untimed).
        in_inbox = Message.objects.filter(folder_id=inbox.id)
        page_number = max(2, min(PAGE, in_inbox.count() // page_size))
        last = in_inbox.order_by("-received_at", "-id").values_list("received_at", "id")[
            (page_number - 1) * page_size - 1
        ]
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        cursor = f"{(last[0] - epoch) // timedelta(microseconds=1)}_{last[1]}"
        ids = list(Message.objects.filter(folder_id=inbox.id).values_list("id", flat=True)[:1])
        rng = random.Random(SEED + 1)
        total = Message.objects.filter(mailbox=mailbox).count()
        open_ids = (
            list(
                Message.objects.filter(
                    folder_id=inbox.id, id__in=[rng.randint(1, total) for _ in range(2000)]
                ).values_list("id", flat=True)[:400]
            )
            or ids
        )
        return cls(
            mailbox.user_id, mailbox.id, inbox.id, page_size, page_number, cursor, last, open_ids
        )


Timings = dict[str, list[float]]
T = TypeVar("T")


def timed(times: Timings, name: str, call: Callable[[], T]) -> T:
    started = time.perf_counter()
    result = call()
    times.setdefault(name, []).append((time.perf_counter() - started) * 1000)
    return result


def request_plan(fixture: Fixture) -> list[tuple[str, str, dict[str, str]]]:
    """(label, url name, query) of every request type; folder list is the counts endpoint."""
    plan = [
        ("folder list (counts)", "webmail:state", {}),
        ("inbox page 1", "webmail:folder", {}),
        (f"inbox page {fixture.page_number}", "webmail:folder", {"before": fixture.cursor_500}),
        ("open message", "webmail:message", {}),
    ]
    plan += [
        (f"search: {label}", "webmail:search", {"q": query})
        for label, query in SEARCHES + EXTRA_SEARCHES
    ]
    return plan


def time_over_http(url: str, fixture: Fixture, count: int, workers: int) -> Timings:
    import requests
    from django.urls import NoReverseMatch, reverse

    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "CACHE_KEY_PREFIX": "mr-bench-webmail",
        "CHANNELS_PREFIX": "mr-bench-webmail",
    }
    gunicorn = Path(sys.executable).parent / "gunicorn"
    server = subprocess.Popen(
        [
            str(gunicorn),
            "-k",
            "uvicorn.workers.UvicornWorker",
            "config.asgi:application",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(workers),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=environment,
    )
    base = f"http://127.0.0.1:{port}"
    times: Timings = {}
    try:
        session = requests.Session()
        deadline = time.monotonic() + 60
        while True:
            try:
                login_page = session.get(f"{base}{reverse('webmail:login')}", timeout=5)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        login_page.raise_for_status()
        response = session.post(
            f"{base}{reverse('webmail:login')}",
            data={
                "username": OWNER,
                "password": PASSWORD,
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
            },
            timeout=30,
        )
        if "sessionid" not in session.cookies:
            raise SystemExit(f"login failed: HTTP {response.status_code} at {response.url}")
        urls = []
        for label, name, query in request_plan(fixture):
            try:
                if name == "webmail:folder":
                    path = reverse(name, args=[fixture.inbox_id])
                elif name == "webmail:message":
                    path = reverse(name, args=[fixture.open_ids[0]])
                else:
                    path = reverse(name)
            except NoReverseMatch:
                print(f"  (no URL named {name}: {label} not timed over HTTP)")
                continue
            urls.append((label, name, path, query))
        for round_number in range(count + 2):  # two warm-up rounds
            for label, name, path, query in urls:
                if name == "webmail:message":
                    message_id = fixture.open_ids[round_number % len(fixture.open_ids)]
                    path = reverse(name, args=[message_id])
                full = f"{base}{path}" + (f"?{urlencode(query)}" if query else "")
                started = time.perf_counter()
                response = session.get(full, timeout=30, allow_redirects=False)
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 200:
                    raise SystemExit(f"{label}: HTTP {response.status_code} for {full}")
                if round_number >= 2:
                    times.setdefault(label, []).append(elapsed)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    return times


page_rows: dict[str, int] = {}


def time_in_process(fixture: Fixture, count: int) -> Timings:
    """The same work without HTTP: access layer, services, ORM, the first page evaluated."""
    from django.db import connection
    from django.db.models import QuerySet

    from mailcore import access, mime
    from mailcore.models import Folder, Message, User
    from mailcore.search import search_messages

    user = User.objects.get(id=fixture.user_id)
    low, high = fixture.cursor_500_at
    times: Timings = {}
    size = fixture.page_size

    try:  # the columns the webmail's list shows, as its view selects them
        from webmail.views.mailbox import list_queryset as shape
    except ImportError:

        def shape(queryset: QuerySet[Message]) -> QuerySet[Message]:
            return queryset.defer("search_vector")

    def page(
        queryset: QuerySet[Message], cursor: tuple[datetime, int] | None = None
    ) -> list[Message]:
        if cursor is not None:
            queryset = queryset.extra(
                where=["(mailcore_message.received_at, mailcore_message.id) < (%s, %s)"],
                params=list(cursor),
            )
        return list(shape(queryset).order_by("-received_at", "-id")[: size + 1])

    def folder_list() -> object:
        return list(
            access.folders_for_user(user).values("id", "name", "total_count", "unread_count")
        )

    def open_message(number: int) -> object:
        message_id = fixture.open_ids[number % len(fixture.open_ids)]
        message = access.get_message_for_user(user, message_id)
        return mime.parse_message(bytes(message.blob.data))

    for number in range(count + 2):
        round_times: Timings = {}
        timed(round_times, "folder list (counts)", folder_list)
        inbox = Folder.objects.get(id=fixture.inbox_id)
        timed(round_times, "inbox page 1", lambda inbox=inbox: page(inbox.messages.all()))
        timed(
            round_times,
            f"inbox page {fixture.page_number}",
            lambda inbox=inbox: page(inbox.messages.all(), (low, high)),
        )
        timed(round_times, "open message", lambda n=number: open_message(n))
        for label, query in SEARCHES + EXTRA_SEARCHES:
            rows = timed(
                round_times, f"search: {label}", lambda q=query: page(search_messages(user, q))
            )
            page_rows[f"search: {label}"] = min(len(rows), size)
        if number >= 2:
            for name, values in round_times.items():
                times.setdefault(name, []).extend(values)
    connection.close()
    print(
        "rows on the first page of each search: "
        + ", ".join(f"{name.removeprefix('search: ')} {rows}" for name, rows in page_rows.items())
    )
    return times


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    rank = max(1, math.ceil(len(ordered) * pct / 100))
    return ordered[rank - 1]


def print_results(title: str, times: Timings) -> None:
    goals = {"search": 200.0}
    print(f"\n{title}")
    print("| request | n | p50 ms | p95 ms | max ms | goal p95 |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, values in times.items():
        goal = goals["search"] if name.startswith("search") else 50.0
        p95 = percentile(values, 95)
        mark = "ok" if p95 < goal else "MISSED"
        print(
            f"| {name} | {len(values)} | {statistics.median(values):.1f} | {p95:.1f} |"
            f" {max(values):.1f} | < {goal:.0f} {mark} |"
        )


def print_context(url: str, workers: int) -> None:
    import psycopg

    with psycopg.connect(url) as connection:
        version = connection.execute("SHOW server_version").fetchone()[0]
        settings = {
            name: connection.execute(f"SHOW {name}").fetchone()[0]
            for name in ("shared_buffers", "work_mem", "effective_cache_size", "jit")
        }
        sizes = connection.execute(
            "SELECT pg_size_pretty(pg_table_size('mailcore_message')),"
            " pg_size_pretty(pg_indexes_size('mailcore_message'))"
        ).fetchone()
    load = " ".join(f"{value:.1f}" for value in os.getloadavg())
    cpus = os.cpu_count()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    print(
        f"machine: {cpus} CPUs, {memory:.0f} GB RAM; PostgreSQL {version} "
        + " ".join(f"{k}={v}" for k, v in settings.items())
        + f"; mailcore_message {sizes[0]} + indexes {sizes[1]}; gunicorn workers={workers};"
        f" load average {load}"
    )


def explain(fixture: Fixture) -> None:
    from mailcore.models import User
    from mailcore.search import search_messages

    user = User.objects.get(id=fixture.user_id)
    for label, query in SEARCHES + EXTRA_SEARCHES:
        queryset = search_messages(user, query).order_by("-received_at", "-id")[
            : fixture.page_size + 1
        ]
        print(f"\n--- {label}: {query}")
        print(queryset.explain(analyze=True, buffers=True))


if __name__ == "__main__":
    main()
