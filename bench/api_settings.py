"""Settings for ``bench/api.py``'s server: the project's, plus the ceiling endpoint's URL."""

from __future__ import annotations

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.api_urls"
