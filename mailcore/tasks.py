"""Celery tasks of mailcore: wake-ups only; the work and its state live in the database."""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_shutting_down
from django.core.cache import cache

from mailcore.services import retention
from mailcore.services.outbound import dispatch, shutdown
from mailcore.services.outbound.delivery import DispatchOptions, run_dispatcher

PASS_SECONDS = 60.0  # a pass returns its worker to Celery regularly (broker visibility timeout)


@shared_task(name="mailcore.tasks.dispatch_outbound", ignore_result=True)
def dispatch_outbound() -> int:
    """Deliver whatever is due; idempotent (rows are claimed with SKIP LOCKED)."""
    cache.delete(dispatch.NUDGE_KEY)  # later commits may wake another dispatcher
    options = DispatchOptions(idle_seconds=1.0, max_seconds=PASS_SECONDS)
    with shutdown.stoppable(options.stop):  # a worker's warm shutdown stops it early
        stats = run_dispatcher(options)
    if stats.claimed and not options.stop.is_set() and dispatch.has_pending_work():
        dispatch_outbound.delay()  # no transaction here: the work is already committed
    return stats.claimed


@worker_shutting_down.connect
def _stop_dispatchers(how: str = "", **_: object) -> None:
    if how == "Warm":
        shutdown.stop_worker_dispatchers()


@shared_task(name="mailcore.tasks.outbound_tick", ignore_result=True)
def outbound_tick() -> bool:
    """Beat: recover dead workers' leases and wake a dispatcher if anything is due."""
    dispatch.recover_expired_leases()
    if dispatch.has_pending_work():
        dispatch_outbound.delay()
        return True
    return False


@shared_task(name="mailcore.tasks.apply_retention", ignore_result=True)
def apply_retention() -> int:
    """Beat: purge what the retention policy says is too old; one run at a time."""
    return sum(run.rows_removed for run in retention.run_retention())
