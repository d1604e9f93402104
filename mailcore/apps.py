from __future__ import annotations

from django.apps import AppConfig


class MailcoreConfig(AppConfig):
    name = "mailcore"
    verbose_name = "Mail"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from mailcore import checks, signals  # noqa: F401  (registers checks and receivers)
