from django.contrib.postgres.operations import BtreeGinExtension, TrigramExtension
from django.db import migrations


class Migration(migrations.Migration):
    """Extensions the search layer may index with (btree_gin for composite GIN indexes)."""

    dependencies = [("mailcore", "0001_initial")]

    operations = [BtreeGinExtension(), TrigramExtension()]
