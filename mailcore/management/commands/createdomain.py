from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from mailcore.services.provisioning import ProvisioningError, create_domain


class Command(BaseCommand):
    help = "Create a domain that receives mail (and its organization)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("name")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            domain = create_domain(options["name"])
        except ProvisioningError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Domain {domain.name} (organization {domain.organization.slug})")
