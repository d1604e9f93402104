from django.db import migrations

# Measured on one mailbox of 1,000,000 messages (bench/webmail.py, docs/benchmarks.md):
#
# * With the default statistics target the planner believes any word missing from the 1,000
#   most common lexemes matches ~0.35% of the rows, so a rare word ("zanthorium", 25 rows)
#   walked msg_mailbox_recv newest first through all 1,000,000 rows: 1.3-1.5 s. With 10,000
#   most-common lexemes the estimate drops to ~0.03%, the planner takes the GIN bitmap and the
#   same search takes 0.5 ms. Common words still walk msg_mailbox_recv and stop after one page.
#   ANALYZE samples 300,000 rows instead of 30,000 (about 13 s at 1M rows, bounded above).
# * larger:/smaller: had no index: "larger:5M" read the whole mailbox to find a few rows.
#
# Raw SQL, not AddIndex: these are physical tuning, not model state, so makemigrations keeps
# ignoring them and the models stay the single source of the schema Django manages.
STATISTICS = "ALTER TABLE mailcore_message ALTER COLUMN search_vector SET STATISTICS 1000"
NO_STATISTICS = "ALTER TABLE mailcore_message ALTER COLUMN search_vector SET STATISTICS -1"
SIZE_INDEX = "CREATE INDEX msg_mailbox_size ON mailcore_message (mailbox_id, size)"
NO_SIZE_INDEX = "DROP INDEX IF EXISTS msg_mailbox_size"


class Migration(migrations.Migration):
    """Planner tuning for search. No extensions: the embedded PostgreSQL (pgserver) ships
    none of contrib, and plain GIN plus btree indexes measured fast enough."""

    dependencies = [("mailcore", "0001_initial")]

    operations = [
        migrations.RunSQL(STATISTICS, NO_STATISTICS),
        migrations.RunSQL(SIZE_INDEX, NO_SIZE_INDEX),
    ]
