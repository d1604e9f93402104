from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from mailcore.services.provisioning import ProvisioningError, create_alias


class Command(BaseCommand):
    help = "Create an alias delivering to one or more mailboxes (*@domain for a catch-all)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("address")
        parser.add_argument("targets", nargs="+", help="Mailbox addresses.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            alias = create_alias(options["address"], options["targets"])
        except ProvisioningError as exc:
            raise CommandError(str(exc)) from exc
        targets = ", ".join(sorted(m.address for m in alias.mailboxes.all()))
        self.stdout.write(f"Alias {alias} -> {targets}")
