from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.factories import PASSWORD
from tests.resilience.services import PrivatePostgres, PrivateRedis, manage
from tests.support import ROOT


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    """A migrated cluster of this session's own, with alice@example.test provisioned."""
    # Not under pytest's tmp_path: that is private to root, and the cluster runs as postgres.
    directory = Path(tempfile.mkdtemp(prefix="mrresil-"))
    directory.chmod(0o755)
    server = PrivatePostgres.create(directory)
    try:
        env = {"DATABASE_URL": server.url(), "DJANGO_SETTINGS_MODULE": "config.test_settings"}
        for command in (
            manage("migrate", "--no-input", "-v0"),
            manage("createmailbox", "alice@example.test", "--password", PASSWORD),
        ):
            subprocess.run(
                command, cwd=ROOT, env={**os.environ, **env}, check=True, capture_output=True
            )
        yield server
    finally:
        server.drop()


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis.create()
    yield server
    server.stop()
