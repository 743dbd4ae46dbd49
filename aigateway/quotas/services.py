"""Changes to limits and quota alerts.

Who may make them (aigateway.quotas.permissions) is checked here whenever an ``actor`` is
given, whatever the caller. An ``actor`` of None is the command line (``manage.py gateway
apply``): trusted, audited as ``cli``.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from aigateway.audit.services import audit_record
from aigateway.quotas.models import Limit, LimitKind, QuotaAlert, Scope
from aigateway.quotas.permissions import Target, limit_require_manage, target_resolve
from aigateway.quotas.rules import KIND_LABELS, PER_MINUTE, SCOPE_LABELS

MAX_VALUE = Decimal(10) ** 10  # Limit.value: 16 digits, 6 of them decimals
DECIMAL_PLACES = 6
WHOLE_KINDS = frozenset(LimitKind.values) - {"cost_day", "cost_month"}


# -- validation -------------------------------------------------------------------------------
def _decimal(value: object) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _amount_error(number: Decimal, kind: str, what: str) -> str | None:
    if number >= MAX_VALUE:
        return f"The {what} must be less than 10,000,000,000."
    if kind in WHOLE_KINDS and number != number.to_integral_value():
        return f"The {what} must be a whole number."
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -DECIMAL_PLACES:
        return f"The {what} can have at most {DECIMAL_PLACES} decimal places."
    return None


def limit_validate(
    *, scope: str, kind: str, value: object, burst: object, soft_threshold_percent: object
) -> dict[str, str]:
    """Field → what is wrong, as a plain sentence. Empty when the limit is valid."""
    errors: dict[str, str] = {}
    if scope not in Scope.values:
        errors["scope"] = "Choose what the limit applies to."
    if kind not in LimitKind.values:
        errors["kind"] = "Choose a kind of limit."
        return errors
    if scope == Scope.DEPLOYMENT and kind not in PER_MINUTE:
        errors["kind"] = (
            "A deployment takes only per-minute limits (requests or tokens per minute)."
        )
    number = _decimal(value)
    if number is None:
        errors["value"] = "The limit must be a number."
    elif number <= 0:
        errors["value"] = "The limit must be greater than zero."
    elif (problem := _amount_error(number, kind, "limit")) is not None:
        errors["value"] = problem
    if burst is not None and burst != "":
        capacity = _decimal(burst)
        if kind not in PER_MINUTE:
            errors["burst"] = (
                "A burst applies only to per-minute limits (requests or tokens per minute)."
            )
        elif capacity is None:
            errors["burst"] = "The burst must be a number."
        elif number is not None and number > 0 and capacity < number:
            errors["burst"] = f"The burst must be at least the limit ({number.normalize():f})."
        elif (problem := _amount_error(capacity, kind, "burst")) is not None:
            errors["burst"] = problem
    soft = soft_threshold_percent
    if isinstance(soft, bool) or not isinstance(soft, int) or not 1 <= soft <= 100:
        errors["soft_threshold_percent"] = (
            "The soft threshold must be a whole percentage from 1 to 100."
        )
    return errors


# -- changes ----------------------------------------------------------------------------------
def amount_text(number: Decimal | None) -> str | None:
    """``100000.000000`` → ``"100000"``, ``12.500000`` → ``"12.5"``."""
    return None if number is None else f"{Decimal(number).normalize():f}"


def limit_snapshot(limit: Limit) -> dict[str, Any]:
    """What an audit entry records of a limit (amounts as decimal strings)."""
    return {
        "value": amount_text(limit.value),
        "burst": amount_text(limit.burst),
        "soft_threshold_percent": limit.soft_threshold_percent,
        "enabled": limit.enabled,
    }


def limit_describe(kind: str, target: Target) -> str:
    """e.g. ``tokens per minute on team acme/research``."""
    return f"{KIND_LABELS.get(kind, kind)} on {target.describe()}"


def _audit(action: str, actor: AbstractBaseUser | None, limit: Limit, target: Target,
           details: dict[str, Any]) -> None:  # fmt: skip
    orgs = target.organisation_ids
    audit_record(
        action=action,
        target_type="limit",
        target_id=limit.pk,
        target_label=limit_describe(limit.kind, target),
        actor=actor,
        actor_label="cli",
        details={"scope": limit.scope, "scope_id": limit.scope_id, "kind": limit.kind, **details},
        organisation_id=next(iter(orgs)) if len(orgs) == 1 else None,
    )


@transaction.atomic
def limit_set(
    *,
    actor: AbstractBaseUser | None,
    scope: str,
    scope_id: int,
    kind: str,
    value: Decimal | int | float | str,
    burst: Decimal | int | float | str | None = None,
    soft_threshold_percent: int = 80,
    enabled: bool = True,
) -> Limit:
    """Create the limit of this kind on this target, or change it (one per scope, target and
    kind). Raises ValidationError (field → plain sentence) or PermissionDenied. Audited as
    ``limit.set`` with the values before (None when created) and after; a no-op is not."""
    if actor is not None:
        target = limit_require_manage(actor, scope=scope, scope_id=scope_id)
    errors = limit_validate(
        scope=scope, kind=kind, value=value, burst=burst,
        soft_threshold_percent=soft_threshold_percent,
    )  # fmt: skip
    if errors:
        raise ValidationError(errors)
    if actor is None:
        target = target_resolve(scope, scope_id)
        if not target.exists:
            raise ValidationError({"scope": f"There is no {SCOPE_LABELS[scope]} #{scope_id}."})
    number = _decimal(value)
    assert number is not None  # validated above
    capacity = _decimal(burst) if burst not in (None, "") else None
    limit = Limit.objects.select_for_update().filter(scope=scope, scope_id=scope_id, kind=kind)
    current = limit.first()
    before = limit_snapshot(current) if current is not None else None
    row = current or Limit(scope=scope, scope_id=scope_id, kind=kind)
    row.value, row.burst = number, capacity
    row.soft_threshold_percent, row.enabled = soft_threshold_percent, enabled
    after = limit_snapshot(row)
    if before == after:
        return row
    row.save()
    _audit("limit.set", actor, row, target, {"before": before, "after": after})
    return row


@transaction.atomic
def limit_delete(*, actor: AbstractBaseUser | None, limit: Limit) -> None:
    """Delete a limit (its alerts go with it). Audited as ``limit.deleted``."""
    if actor is not None:
        target = limit_require_manage(actor, scope=limit.scope, scope_id=limit.scope_id)
    else:
        target = target_resolve(limit.scope, limit.scope_id)
    before = limit_snapshot(limit)
    pk = limit.pk
    limit.delete()
    limit.pk = pk  # for the audit entry
    _audit("limit.deleted", actor, limit, target, {"before": before})


@transaction.atomic
def alert_acknowledge(*, actor: AbstractBaseUser | None, alert: QuotaAlert) -> QuotaAlert:
    """Mark an alert as seen (by someone who may manage its limit). Acknowledging twice
    changes nothing. Audited as ``quota_alert.acknowledged``."""
    limit = alert.limit
    if actor is not None:
        target = limit_require_manage(actor, scope=limit.scope, scope_id=limit.scope_id)
    else:
        target = target_resolve(limit.scope, limit.scope_id)
    if alert.acknowledged_at is not None:
        return alert
    alert.acknowledged_at = timezone.now()
    alert.save(update_fields=["acknowledged_at"])
    orgs = target.organisation_ids
    audit_record(
        action="quota_alert.acknowledged",
        target_type="quota_alert",
        target_id=alert.pk,
        target_label=f"{limit_describe(limit.kind, target)}, {alert.period}",
        actor=actor,
        actor_label="cli",
        details={"limit_id": limit.pk, "period": alert.period, "used": str(alert.used)},
        organisation_id=next(iter(orgs)) if len(orgs) == 1 else None,
    )
    return alert
