"""Celery tasks of the webmail: nudges only, the database holds the work."""

from __future__ import annotations

from celery import shared_task

from webmail.services import compose


@shared_task(name="webmail.tasks.send_due_messages", ignore_result=True)
def send_due_messages() -> int:
    """Send scheduled messages that came due (beat runs this every few seconds)."""
    return compose.send_due_messages()
