"""What ``gateway apply`` changes is audited like a change made by a person: one entry per
object with its state before and after (aigateway/audit/changes.py; secrets as fingerprints),
actor ``cli``, ``details.via = "gateway apply"``. Changes made through services that audit
themselves (credentials, limits) are not recorded twice."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import models

from aigateway.audit.changes import audit_change, model_snapshot, target_type_of

VIA = {"via": "gateway apply"}


def _record(
    obj: models.Model, verb: str, before: Any, after: Any, label: str | None = None
) -> None:
    action = f"{target_type_of(obj)}.{verb}"
    audit_change(actor=None, action=action, target=obj, before=before, after=after, details=VIA,
                 target_label=label)  # fmt: skip


def created(obj: models.Model) -> None:
    _record(obj, "created", None, model_snapshot(obj))


def create(factory: Callable[..., models.Model], **fields: Any) -> models.Model:
    """``factory(**fields)`` (e.g. ``Provider.objects.create``), audited as created."""
    obj = factory(**fields)
    created(obj)
    return obj


@contextmanager
def changing(obj: models.Model, verb: str = "updated") -> Iterator[None]:
    """Audit whatever the block changes on ``obj`` (fields and many-to-many)."""
    before = model_snapshot(obj)
    yield
    _record(obj, verb, before, model_snapshot(obj))


def save(obj: models.Model, values: dict[str, Any], *, also: tuple[str, ...] = ()) -> None:
    """``save_fields``, audited."""
    from aigateway.config_as_code.planning import save_fields

    with changing(obj):
        save_fields(obj, values, also=also)


def delete(obj: models.Model) -> None:
    before, pk, label = model_snapshot(obj), obj.pk, str(obj)[:300]
    obj.delete()
    obj.pk = pk  # the audit entry names what was deleted
    _record(obj, "deleted", before, None, label)
