"""The audit hash chain: sequence, previous_hash and record_hash on every event, and the
single-row chain head. Existing events are chained in id order."""

import django.utils.timezone
from django.db import migrations, models

GENESIS_HASH = "0" * 64


def chain_existing(apps, schema_editor):
    from aigateway.audit.chain import compute_hash

    AuditEvent = apps.get_model("audit", "AuditEvent")
    AuditChainHead = apps.get_model("audit", "AuditChainHead")
    previous = GENESIS_HASH
    sequence = 0
    for event in AuditEvent.objects.order_by("id").iterator():
        sequence += 1
        event.sequence = sequence
        event.previous_hash = previous
        event.record_hash = compute_hash(event)
        event.save(update_fields=["sequence", "previous_hash", "record_hash"])
        previous = event.record_hash
    if sequence:
        AuditChainHead.objects.create(pk=1, sequence=sequence, record_hash=previous)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditChainHead",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("sequence", models.BigIntegerField(default=0)),
                ("record_hash", models.CharField(max_length=64)),
            ],
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="created_at",
            field=models.DateTimeField(
                db_index=True, default=django.utils.timezone.now, editable=False
            ),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="sequence",
            field=models.BigIntegerField(editable=False, null=True),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="previous_hash",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="auditevent",
            name="record_hash",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(chain_existing, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="auditevent",
            name="sequence",
            field=models.BigIntegerField(editable=False, unique=True),
        ),
    ]
