from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from mailcore.services.provisioning import ProvisioningError, create_mailbox


class Command(BaseCommand):
    help = "Create a mailbox and its login (creates the domain if needed)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("address")
        parser.add_argument("--password", required=True)
        parser.add_argument("--name", default="", help="Display name.")
        parser.add_argument("--quota", type=int, default=None, help="Quota in bytes (0: none).")
        parser.add_argument("--staff", action="store_true", help="Also an operator (admin).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            mailbox = create_mailbox(
                options["address"],
                options["password"],
                display_name=options["name"],
                quota_bytes=options["quota"],
                is_staff=options["staff"],
            )
        except ProvisioningError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Mailbox {mailbox.address}")
