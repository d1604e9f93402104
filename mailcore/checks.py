"""Cross-setting checks (``manage.py check``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.checks import Error, Warning, register


@register()
def check_smtp_settings(app_configs: Any, **kwargs: Any) -> list[Error | Warning]:
    problems: list[Error | Warning] = []
    cert, key = settings.MAILROOM_SMTP_TLS_CERT, settings.MAILROOM_SMTP_TLS_KEY
    if bool(cert) != bool(key):
        problems.append(
            Error(
                "Set both MAILROOM_SMTP_TLS_CERT and MAILROOM_SMTP_TLS_KEY, or neither.",
                id="mailcore.E001",
            )
        )
    for path in (cert, key):
        if path and not Path(path).is_file():
            problems.append(Error(f"TLS file {path!r} does not exist.", id="mailcore.E002"))
    if settings.MAILROOM_MAX_MESSAGE_SIZE <= 0:
        problems.append(Error("MAILROOM_MAX_MESSAGE_SIZE must be positive.", id="mailcore.E003"))
    if settings.MAILROOM_SMTP_MAX_CONNECTIONS_PER_IP > settings.MAILROOM_SMTP_MAX_CONNECTIONS:
        problems.append(
            Warning("The per-IP SMTP connection cap exceeds the total cap.", id="mailcore.W001")
        )
    return problems
