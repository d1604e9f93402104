"""Beat tasks: each calls one service function."""

from __future__ import annotations

from celery import shared_task

from analytics.services import guardrails, live, partitions, rollups
from analytics.services.publisher import is_publisher_running


@shared_task(ignore_result=True, expires=2)
def broadcast_live() -> int:
    """The once-a-second fallback: quiet while a live publisher (faster) is running."""
    if is_publisher_running():
        return 0
    return live.broadcast_live_update()


@shared_task(ignore_result=True)
def fill_rollups() -> dict[str, int]:
    return rollups.fill_all_rollups()


@shared_task(ignore_result=True)
def check_guardrails() -> dict[str, str]:
    return guardrails.check_guardrails()


@shared_task(ignore_result=True)
def maintain_partitions() -> dict[str, object]:
    result: dict[str, object] = dict(partitions.maintain_partitions())
    result["minute_rollups_dropped"] = rollups.drop_old_minute_rollups()
    return result
