from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from mailcore.models import Mailbox
from mailcore.services.provisioning import create_mailbox

DEMO_ADDRESS = "demo@mailroom.test"


class Command(BaseCommand):
    help = "Create (or reset the password of) the demo mailbox and print how to use it."

    def handle(self, *args: Any, **options: Any) -> None:
        password = secrets.token_urlsafe(12)
        mailbox = Mailbox.objects.filter(address=DEMO_ADDRESS).select_related("user").first()
        if mailbox is None:
            mailbox = create_mailbox(DEMO_ADDRESS, password, display_name="Demo User")
        user = mailbox.user
        user.set_password(password)
        user.is_staff = user.is_superuser = True
        user.save(update_fields=["password", "is_staff", "is_superuser"])
        web = settings.MAILROOM_WEB_URL
        smtp = f"{settings.MAILROOM_SMTP_HOST}:{settings.MAILROOM_SMTP_PORT}"
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "Mailroom is starting.",
                    f"  Webmail:  {web}/   (admin: {web}/admin/)",
                    f"  SMTP:     {smtp}   (e.g. swaks --server {smtp} --to {DEMO_ADDRESS})",
                    f"  Submit:   {settings.MAILROOM_SMTP_HOST}:{settings.MAILROOM_SUBMISSION_PORT}"
                    "   (AUTH after STARTTLS)",
                    f"  Mailbox:  {DEMO_ADDRESS}",
                    f"  Password: {password}",
                    "",
                ]
            )
        )
