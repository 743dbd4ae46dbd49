"""The Django admin is a door too: ``AuditedAdmin`` records every add, change and delete made
there (inline rows included) with before and after, like the services do."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models
from django.db.models import QuerySet
from django.forms import BaseModelFormSet, ModelForm
from django.http import HttpRequest

from aigateway.audit.changes import Snapshot, audit_change, model_snapshot, target_type_of

VIA = {"via": "django admin"}


def _stored(obj: models.Model) -> Snapshot | None:
    """The object as the database has it (the form has already changed the instance)."""
    if obj.pk is None:
        return None
    stored = type(obj)._default_manager.filter(pk=obj.pk).first()
    return model_snapshot(stored) if stored is not None else None


def _audit(request: HttpRequest, obj: models.Model, verb: str, before: Any, after: Any) -> None:
    actor: Any = request.user if request.user.is_authenticated else None
    audit_change(actor=actor, action=f"{target_type_of(obj)}.{verb}", target=obj,
                 before=before, after=after, details=VIA)  # fmt: skip


class AuditedAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm, change: bool) -> None:
        # Many-to-many fields are saved later (save_related): the entry is written there.
        request._audit_before = _stored(obj) if change else None  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)

    def save_related(
        self, request: HttpRequest, form: ModelForm, formsets: Any, change: bool
    ) -> None:
        super().save_related(request, form, formsets, change)
        before = getattr(request, "_audit_before", None)
        _audit(request, form.instance, "updated" if change else "created", before,
               model_snapshot(form.instance))  # fmt: skip

    def save_formset(
        self, request: HttpRequest, form: ModelForm, formset: BaseModelFormSet, change: bool
    ) -> None:
        # By identity: a deleted row's instance loses its pk when it is deleted.
        befores = {
            id(f.instance): (f.instance.pk, _stored(f.instance)) for f in formset.initial_forms
        }
        super().save_formset(request, form, formset, change)
        for obj in formset.new_objects:
            _audit(request, obj, "created", None, model_snapshot(obj))
        for obj, _fields in formset.changed_objects:
            _audit(request, obj, "updated", befores[id(obj)][1], model_snapshot(obj))
        for obj in formset.deleted_objects:
            obj.pk, before = befores[id(obj)]
            _audit(request, obj, "deleted", before, None)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        before, pk = model_snapshot(obj), obj.pk
        super().delete_model(request, obj)
        obj.pk = pk
        _audit(request, obj, "deleted", before, None)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        doomed = [(obj, model_snapshot(obj)) for obj in queryset]
        super().delete_queryset(request, queryset)
        for obj, before in doomed:
            _audit(request, obj, "deleted", before, None)
