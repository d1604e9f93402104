"""``manage.py dkimkey``: DKIM keys of sending domains and the DNS records to publish.

manage.py dkimkey generate example.com [--selector s1]   # first key, active at once
manage.py dkimkey rotate example.com [--selector s2]     # new active key, old one retired
manage.py dkimkey show example.com                       # the TXT records to publish
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from mailcore.models import Domain
from mailcore.services.outbound import dkim


class Command(BaseCommand):
    help = "Generate or rotate a domain's DKIM key (2048-bit RSA) and print its DNS record."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("action", choices=["generate", "rotate", "show"])
        parser.add_argument("domain")
        parser.add_argument("--selector", default="", help="Default: mrYYYYMM.")

    def handle(self, *args: Any, **options: Any) -> None:
        domain = Domain.objects.filter(name=options["domain"].strip().lower()).first()
        if domain is None:
            raise CommandError(f"no domain {options['domain']!r}")
        action = options["action"]
        if action == "generate" and domain.dkim_keys.filter(is_active=True).exists():
            raise CommandError(f"{domain.name} already has an active key; use rotate")
        if action in ("generate", "rotate"):
            key = dkim.create_key(domain, options["selector"])
            self.stdout.write(f"Active key for {domain.name}: selector {key.selector}")
        keys = list(domain.dkim_keys.order_by("-is_active", "-created_at"))
        if not keys:
            raise CommandError(f"{domain.name} has no DKIM key; use generate")
        self.stdout.write("Publish these TXT records (keep retired ones until their mail is out):")
        for key in keys:
            state = "active" if key.is_active else "retired"
            self.stdout.write(f"; {state}, created {key.created_at:%Y-%m-%d}")
            self.stdout.write(dkim.dns_zone_line(key))
