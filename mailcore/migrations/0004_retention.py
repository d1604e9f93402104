"""Retention: the run log, and when a message entered its folder (Trash/Junk age from it).

Not atomic: the message index is built CONCURRENTLY so a large message table stays writable;
the new column is nullable, which PostgreSQL adds without rewriting the table.
"""

import django.contrib.postgres.fields
import django.db.models.functions.comparison
import django.utils.timezone
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("mailcore", "0003_outbound"),
    ]

    operations = [
        migrations.CreateModel(
            name="RetentionRun",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("trash", "Trash messages"),
                            ("spam", "Spam (Junk) messages"),
                            ("events", "Event partitions"),
                            ("webhook_logs", "Webhook delivery logs"),
                            ("outbound", "Finished outbound messages"),
                        ],
                        max_length=16,
                    ),
                ),
                ("started_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                (
                    "retention_days",
                    models.IntegerField(help_text="The policy applied; 0 keeps data forever."),
                ),
                (
                    "cutoff",
                    models.DateTimeField(
                        blank=True, help_text="Older data was purged.", null=True
                    ),
                ),
                (
                    "is_dry_run",
                    models.BooleanField(default=False, help_text="Counted only; nothing removed."),
                ),
                (
                    "is_complete",
                    models.BooleanField(
                        default=True,
                        help_text="False when the run's time budget ran out; the next run goes on.",
                    ),
                ),
                ("rows_removed", models.BigIntegerField(default=0)),
                (
                    "bytes_removed",
                    models.BigIntegerField(default=0, help_text="Raw message bytes freed."),
                ),
                ("blobs_removed", models.IntegerField(default=0)),
                (
                    "partitions_dropped",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.CharField(max_length=63),
                        blank=True,
                        default=list,
                        size=None,
                    ),
                ),
                ("error", models.TextField(blank=True)),
            ],
            options={
                "indexes": [
                    models.Index(fields=["-started_at"], name="retention_run_started"),
                ],
            },
        ),
        migrations.AddField(
            model_name="message",
            name="moved_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        AddIndexConcurrently(
            model_name="message",
            index=models.Index(
                models.F("folder"),
                django.db.models.functions.comparison.Coalesce("moved_at", "received_at"),
                name="msg_folder_entered",
            ),
        ),
    ]
