"""Test overrides: only what speed and isolation need."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile

from config.settings import *  # noqa: F403
from config.settings import CACHES, CHANNEL_LAYERS, DATABASES, REDIS_URL

# Runs side by side (two checkouts, two engineers) each set their own names.
DATABASES["default"]["TEST"] = {"NAME": os.environ.get("TEST_DATABASE_NAME", "test_mailroom")}
DATABASES["default"]["CONN_MAX_AGE"] = 0
# No pool in tests: pytest-django creates and drops the test database around the run.
DATABASES["default"].get("OPTIONS", {}).pop("pool", None)

# A Redis database of its own, flushed around every test.
_TEST_REDIS_DB = os.environ.get("TEST_REDIS_DB", "15")
if REDIS_URL.startswith("unix:"):
    TEST_REDIS_URL = re.sub(r"db=\d+", f"db={_TEST_REDIS_DB}", REDIS_URL)
    if "db=" not in TEST_REDIS_URL:
        TEST_REDIS_URL += ("&" if "?" in TEST_REDIS_URL else "?") + f"db={_TEST_REDIS_DB}"
else:
    TEST_REDIS_URL = re.sub(r"(/\d*)?$", f"/{_TEST_REDIS_DB}", REDIS_URL.split("?")[0], count=1)
CACHES["default"]["LOCATION"] = TEST_REDIS_URL
# A slow machine must not make cache invalidation fail silently (IGNORE_EXCEPTIONS is on).
CACHES["default"]["OPTIONS"]["SOCKET_TIMEOUT"] = 5
CACHES["default"]["OPTIONS"]["SOCKET_CONNECT_TIMEOUT"] = 5
CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [TEST_REDIS_URL]
CELERY_BROKER_URL = TEST_REDIS_URL

# Argon2 is deliberately slow; tests hash hundreds of passwords.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Metrics in multiprocess mode, as under gunicorn, in a directory of this run only (never a
# running instance's): receivers started as child processes (tests/support.py) inherit
# MAILROOM_TEST_METRICS_DIR, write there too, and one scrape sums them all. Set before anything
# imports prometheus_client, which picks its storage at import.
if not os.environ.get("MAILROOM_TEST_METRICS_DIR"):
    os.environ["MAILROOM_TEST_METRICS_DIR"] = tempfile.mkdtemp(prefix="mailroom-metrics-")
    atexit.register(shutil.rmtree, os.environ["MAILROOM_TEST_METRICS_DIR"], True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.environ["MAILROOM_TEST_METRICS_DIR"]

# Domain DNS checks never reach the internet: a test that does not start its own DNS server
# (tests/api/test_domain_dns.py) asks the discard port on loopback, which fails at once.
MAILROOM_DNS_NAMESERVERS = ["127.0.0.1:9"]
MAILROOM_DNS_TIMEOUT = 0.5
