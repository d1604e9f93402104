from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.db import connection

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


@pytest.fixture(autouse=True)
def _clean_redis() -> Iterator[None]:
    """The test Redis database (15) is emptied around every test: caches never leak."""
    cache.clear()
    clear_local_cache()
    yield
    cache.clear()
    clear_local_cache()


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
