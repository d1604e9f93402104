"""``manage.py parsebounce FILE...``: one JSON line per file, as the receiver classifies it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from mailcore.bounces import parse_bounce, to_json_line


class Command(BaseCommand):
    help = "Parse bounce, complaint or auto-reply files and print one JSON line per file."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("files", nargs="+")

    def handle(self, *args: Any, **options: Any) -> None:
        for name in options["files"]:
            path = Path(name)
            try:
                raw = path.read_bytes()
            except OSError as exc:
                raise CommandError(f"{name}: {exc.strerror}") from exc
            self.stdout.write(to_json_line(name, parse_bounce(raw)))
