from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from mailcore.models import Mailbox, MailboxGrant
from mailcore.services.provisioning import create_mailbox
from mailcore.services.recipients import clear_local_cache
from mailcore.smtp.server import Receiver, ReceiverConfig
from tests.factories import PASSWORD


@pytest.fixture(scope="session", autouse=True)
def _drop_stray_connections(django_db_setup: None, django_db_blocker) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Let the test database be dropped at the end even if a worker thread kept a connection."""
    yield
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


RUN_MARKER_KEY = "tests:run"
RUN_MARKER_SECONDS = 120  # a crashed run's mark goes away by itself


@pytest.fixture(autouse=True)
def _clean_redis() -> Iterator[None]:
    """The test Redis database (15) is emptied around every test: caches never leak.

    Two test runs sharing one Redis database (TEST_REDIS_DB) would read each other's cached
    recipient answers and flush each other's state, failing in ways that look like product bugs
    (a receiver resolving an address to the other run's mailbox). Each run marks the database
    with its test database's name and stops at once when it finds another live run's mark.
    """
    redis = get_redis_connection("default")
    database = settings.DATABASES["default"]
    ours = str(database.get("TEST", {}).get("NAME") or database["NAME"]).encode()
    other = redis.get(RUN_MARKER_KEY)
    if other is not None and other != ours:
        pytest.exit(
            f"Redis database {settings.CACHES['default']['LOCATION']} is in use by another test"
            f" run ({other.decode()}); give each run its own TEST_REDIS_DB.",
            returncode=3,
        )
    cache.clear()
    clear_local_cache()
    redis.set(RUN_MARKER_KEY, ours, ex=RUN_MARKER_SECONDS)
    yield
    cache.clear()
    clear_local_cache()
    with contextlib.suppress(RedisError):  # a test may have pointed the cache at a dead Redis
        get_redis_connection("default").set(RUN_MARKER_KEY, ours, ex=RUN_MARKER_SECONDS)


@pytest.fixture
def alice(db: None) -> Mailbox:
    """Owns a mailbox."""
    return create_mailbox("alice@example.test", PASSWORD, display_name="Alice Example")


@pytest.fixture
def bob(db: None, alice: Mailbox) -> Mailbox:
    """Owns a mailbox in alice's domain and has alice's mailbox shared with him."""
    mailbox = create_mailbox("bob@example.test", PASSWORD, display_name="Bob Example")
    MailboxGrant.objects.create(mailbox=alice, user=mailbox.user)
    return mailbox


@pytest.fixture
def charlie(db: None) -> Mailbox:
    """Another tenant: sees nothing of alice's or bob's."""
    return create_mailbox("charlie@other.test", PASSWORD, display_name="Charlie Other")


@pytest.fixture
def receiver(transactional_db: None) -> Iterator[Receiver]:
    """The real SMTP receiver on a free loopback port, in a thread of this process."""
    server = Receiver(
        ReceiverConfig(host="127.0.0.1", port=0, max_message_size=200_000, max_recipients=5)
    )
    server.start_in_thread()
    yield server
    server.stop_thread()
