"""schemathesis against /api/schema/ (bounded examples, authenticated): never a 5xx.

Every operation gets ``MAX_EXAMPLES`` generated requests with alice's key, through the WSGI
application, in one test transaction (rolled back at the end).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings

from api.services.keys import create_api_key
from config.wsgi import application
from mailcore.models import Mailbox
from tests.factories import deliver, make_email

MAX_EXAMPLES = 20


@pytest.fixture
def wsgi_calls(db: None) -> Iterator[None]:
    # As Django's test client does: requests must not close the test transaction's connection.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def test_no_server_errors(wsgi_calls: None, alice: Mailbox, charlie: Mailbox) -> None:
    deliver(make_email(subject="Fuzz me"), "alice@example.test")
    key = create_api_key(organization_id=alice.organization_id).secret
    headers = {"Authorization": f"Bearer {key}"}
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 35
    failures: list[str] = []
    statuses: dict[int, int] = {}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call(headers=headers)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")

        run()
    assert failures == []
    assert statuses.get(200, 0) > 50  # the fuzzing reached the views, not only the auth layer
    print("schemathesis statuses:", dict(sorted(statuses.items())))
