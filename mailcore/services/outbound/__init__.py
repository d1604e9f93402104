"""Outbound mail: one path for every message that leaves Mailroom (API, SMTP submission,
webmail), which never loses a message and records what happened to each recipient.

- ``submit.py``      -- :func:`submit_outbound`: the transactional outbox (message + one
                        delivery per recipient + events in one transaction; wake-up after commit)
- ``dispatch.py``    -- claiming due deliveries (``FOR UPDATE SKIP LOCKED`` + lease), lost-worker
                        recovery, retry-now/cancel
- ``delivery.py``    -- the dispatcher: lanes per route, reused SMTP connections, group commit
- ``smtp_client.py`` -- asyncio SMTP client (pipelining, opportunistic STARTTLS, dot-stuffing)
- ``results.py``     -- statuses, the attempt log, events and suppressions of a batch of results
- ``local.py``       -- local recipients, stored through the inbound path without SMTP
- ``retry.py``       -- backoff with jitter, maximum age, reply classes (pure)
- ``throttle.py``    -- Redis limits: destination connections and rate, sending quotas
- ``mx.py``          -- relay host or MX lookup (dnspython)
- ``dkim.py``        -- per-domain keys, rotation, DNS records, signing (dkimpy)
- ``verp.py``        -- ``bounces+TOKEN@domain`` return paths
- ``suppression.py`` -- suppression lists, CSV import/export
- ``bounces.py``     -- :func:`process_bounce`: DSNs, complaints and auto-replies coming back

Status machine of a delivery: queued -> sending -> delivered | deferred | bounced | failed,
plus suppressed (never sent) and cancelled (by an operator); deferred -> sending again.
A delivered delivery can still turn bounced (an asynchronous DSN) or get ``complained_at``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SubmissionError", "submit_outbound"]


def __getattr__(name: str) -> Any:
    # Lazy, so that light modules of this package (verp, retry) import without the services.
    if name in __all__:
        from mailcore.services.outbound import submit

        return getattr(submit, name)
    raise AttributeError(name)
