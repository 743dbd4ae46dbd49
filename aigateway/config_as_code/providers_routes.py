"""Planning providers (with their credentials), routes (with their deployments) and prices.

Credentials change only through providers.services (credential_create,
credential_set_secret, credential_retire), so every change is audited by fingerprint.
"""

from __future__ import annotations

import contextlib
from functools import partial
from typing import Any

from django.utils import timezone

from aigateway.audit.changes import model_snapshot
from aigateway.config_as_code import audited
from aigateway.config_as_code.planning import Planner, fmt
from aigateway.config_as_code.specs import (
    SETTING_LABELS,
    ConfigError,
    CredentialSpec,
    PriceSpec,
    ProviderSpec,
    RouteSpec,
)
from aigateway.routing.models import Deployment, Route
from providers.crypto import fingerprint
from providers.models import Credential, CredentialStatus, ModelPrice, Provider
from providers.services import (
    credential_audit,
    credential_create,
    credential_retire,
    credential_set_secret,
)

# The credentials a file describes: export writes them, apply compares them, and retires
# those a declared provider no longer lists. Pending ones belong to a rotation in progress.
LIVE = (CredentialStatus.ACTIVE, CredentialStatus.RETIRING)
# provider, model, credential, weight, enabled, max_context_tokens
DeploymentTuple = tuple[str, str, str, int, bool, int | None]
# What apply sets on a deployment row; never the runtime health data (last_probe_*).
DEPLOYMENT_SETTINGS = ["credential", "priority", "weight", "enabled", "max_context_tokens"]


# -- providers and credentials -------------------------------------------------------------
def plan_provider(p: Planner, spec: ProviderSpec) -> None:
    provider = Provider.objects.filter(name=spec.name).first()
    wanted = {
        "kind": spec.kind,
        "base_url": spec.base_url,
        "enabled": spec.enabled,
        "options": spec.options,
        "rotation_days": spec.rotation_days,
    }
    if provider is None:
        create = partial(audited.create, Provider.objects.create, name=spec.name, **wanted)
        p.add("create", "provider", spec.name, "", create)
    p.update("provider", spec.name, provider, wanted)
    existing = {c.name: c for c in provider.credentials.all()} if provider else {}
    for cred in spec.credentials:
        plan_credential(p, spec.name, cred, existing.pop(cred.name, None))
    for name, current in sorted(existing.items()):
        if current.status in LIVE:
            retire = partial(credential_retire, credential=current)
            p.add("retire", "credential", f"{spec.name}/{name}", "retired", retire)


def plan_credential(
    p: Planner, provider: str, spec: CredentialSpec, current: Credential | None
) -> None:
    label, path, env_var = f"{provider}/{spec.name}", f"{spec.path}.secret", spec.env_var
    if not env_var and (current is None or not current.ciphertext):  # "stored"
        raise ConfigError(
            f"{path}: 'stored' keeps an encrypted secret already in the database, "
            f"but {label} has none; use env:VARIABLE_NAME"
        )
    secret = ""
    if env_var and spec.encrypted:
        secret = p.env(env_var, path, "store: encrypted reads it at apply time")
    reference = "" if secret else env_var  # the services take exactly one of the two
    if current is None:
        how = f"encrypted from env:{env_var}" if secret else f"env:{env_var}"

        def create() -> None:
            credential_create(
                provider=Provider.objects.get(name=provider),
                name=spec.name,
                secret=secret,
                env_var=reference,
            )

        p.add("create", "credential", label, how, create)
        return
    if not env_var:
        replace = False
    elif secret:
        replace = not current.ciphertext or current.fingerprint != fingerprint(secret)
    else:
        replace = current.env_var != env_var or bool(current.ciphertext)
    notes = []
    if replace:
        was = f"env:{current.env_var}" if current.env_var else "stored"
        now = "stored" if secret else f"env:{env_var}"
        notes.append("secret changed" if was == now else f"secret {was} → {now}")
    # Active and retiring (grace period) are left as they are; pending and retired reactivate.
    reactivate = current.status not in LIVE
    if reactivate:
        notes.append(f"status {current.status} → active")

    def update() -> None:
        if replace:
            credential_set_secret(credential=current, secret=secret, env_var=reference)
        if reactivate:
            _reactivate(current)

    if notes:
        p.add("update", "credential", label, "; ".join(notes), update)


def _reactivate(credential: Credential) -> None:
    """Declared again after being retired (or while pending): active, audited."""
    before = model_snapshot(credential)
    credential.status = CredentialStatus.ACTIVE
    credential.activated_at = timezone.now()
    credential.retire_at = credential.retired_at = None
    credential.save(update_fields=["status", "activated_at", "retire_at", "retired_at"])
    credential_audit(credential, "credential.activated", None, before=before, via="gateway apply")


# -- routes and deployments ----------------------------------------------------------------
def _dep_label(
    provider: str, model: str, credential: str, weight: int, enabled: bool, context: int | None
) -> str:
    extras = [f"credential {credential}"] if credential else []
    extras += [f"weight {weight}"] if weight != 1 else []
    extras += [f"max_context_tokens {context}"] if context is not None else []
    extras += [] if enabled else ["disabled"]
    return f"{provider}:{model}" + (f" ({', '.join(extras)})" if extras else "")


def plan_route(p: Planner, spec: RouteSpec) -> None:
    wanted: list[DeploymentTuple] = []
    for dep in spec.deployments:
        p.check_provider(dep.provider, f"{dep.path}.provider")
        declared = p.providers.get(dep.provider)
        known = {c.name for c in declared.credentials} if declared else set()
        known |= set(
            Credential.objects.filter(provider__name=dep.provider).values_list("name", flat=True)
        )
        if dep.credential and dep.credential not in known:
            raise ConfigError(
                f"{dep.path}.credential: unknown credential '{dep.credential}' "
                f"of provider '{dep.provider}'"
            )
        wanted.append(
            (
                dep.provider,
                dep.model,
                dep.credential,
                dep.weight,
                dep.enabled,
                dep.max_context_tokens,
            )
        )
    labels = [_dep_label(*d) for d in wanted]
    route = Route.objects.filter(name=spec.name).first()
    fields = {"description": spec.description, "strategy": spec.strategy, **spec.settings}
    sync = partial(_sync_deployments, spec.name, wanted)
    if route is None:
        create = lambda: (  # noqa: E731
            audited.create(Route.objects.create, name=spec.name, **fields),
            sync(),
        )
        p.add("create", "route", spec.name, f"deployments {fmt(labels)}", create)
        return
    p.update("route", spec.name, route, fields, labels=SETTING_LABELS)
    rows = list(route.deployments.select_related("provider", "credential"))
    current = [
        (
            d.provider.name,
            d.upstream_model,
            d.credential.name if d.credential else "",
            d.weight,
            d.enabled,
            d.max_context_tokens,
        )
        for d in rows
    ]
    if current != wanted:
        before = fmt([_dep_label(*d) for d in current])
        p.add("update", "route", spec.name, f"deployments {before} → {fmt(labels)}", sync)
    elif any(d.priority != i for i, d in enumerate(rows)):
        p.add("update", "route", spec.name, "deployment priorities renumbered", sync)


def _sync_deployments(route_name: str, wanted: list[DeploymentTuple]) -> None:
    """Make the route's deployments exactly ``wanted`` (priority = index), reusing rows with
    the same provider and model so deployment ids in usage records stay meaningful."""
    route = Route.objects.get(name=route_name)
    pool = list(route.deployments.all())
    for priority, (provider_name, model, credential, weight, on, context) in enumerate(wanted):
        provider = Provider.objects.get(name=provider_name)
        row = next(
            (d for d in pool if d.provider_id == provider.pk and d.upstream_model == model), None
        )
        new = row is None
        if row is None:
            row = Deployment(route=route, provider=provider, upstream_model=model)
        else:
            pool.remove(row)
        with audited.changing(row) if not new else contextlib.nullcontext():
            row.credential = provider.credentials.get(name=credential) if credential else None
            row.priority, row.weight, row.enabled = priority, weight, on
            row.max_context_tokens = context
            row.save(update_fields=None if new else DEPLOYMENT_SETTINGS)
        if new:
            audited.created(row)
    for row in pool:
        audited.delete(row)


# -- prices --------------------------------------------------------------------------------
def plan_price(p: Planner, spec: PriceSpec) -> None:
    """Set a declared price exactly; prices the file does not list are left alone."""
    if spec.provider:
        p.check_provider(spec.provider, f"{spec.path}.provider")
        row = ModelPrice.objects.filter(provider__name=spec.provider, model=spec.model).first()
    else:
        row = ModelPrice.objects.filter(provider__isnull=True, model=spec.model).first()
    wanted: dict[str, Any] = {
        "input_per_million": spec.input_per_million,
        "output_per_million": spec.output_per_million,
    }
    if row is not None:
        p.update("price", spec.label, row, wanted, also=("updated_at",))
        return

    def create() -> None:
        provider = Provider.objects.get(name=spec.provider) if spec.provider else None
        audited.create(ModelPrice.objects.create, provider=provider, model=spec.model, **wanted)

    notes = f"input {fmt(spec.input_per_million)}, output {fmt(spec.output_per_million)}"
    p.add("create", "price", spec.label, f"{notes} per million tokens", create)
