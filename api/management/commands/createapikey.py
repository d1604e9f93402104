"""``manage.py createapikey --domain D [--scopes send,events]``: prints the key once."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from api.models import Scope
from api.services.keys import KeyError_, create_api_key
from mailcore.models import Domain


class Command(BaseCommand):
    help = "Create an API key for the organization of a domain and print it (shown only once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--domain", required=True, help="A domain of the organization.")
        parser.add_argument(
            "--scopes",
            default=",".join(Scope.values),
            help=f"Comma-separated, from: {', '.join(Scope.values)} (default: all).",
        )
        parser.add_argument("--name", default="", help="A label shown in the admin.")
        parser.add_argument(
            "--bind-domain", action="store_true", help="Only allow sending from --domain."
        )
        parser.add_argument("--rate", type=int, default=None, help="Requests per second.")

    def handle(self, *args: Any, **options: Any) -> None:
        domain = Domain.objects.filter(name=options["domain"].strip().lower()).first()
        if domain is None:
            raise CommandError(f"No such domain: {options['domain']}")
        scopes = [s.strip() for s in options["scopes"].split(",") if s.strip()]
        try:
            new = create_api_key(
                organization_id=domain.organization_id,
                scopes=scopes,
                domain=domain if options["bind_domain"] else None,
                name=options["name"],
                rate_per_second=options["rate"],
            )
        except KeyError_ as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(new.secret)
