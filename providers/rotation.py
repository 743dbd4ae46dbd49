"""Credential rotation without downtime.

1. The new credential is stored as *pending* (encrypted, audited by fingerprint).
2. It is verified with a live health call to the provider using the new secret.
3. It becomes *active*: new traffic moves to it as soon as each process sees the config
   version change (within AIGATEWAY_CONFIG_CACHE_SECONDS); the previously active ones become
   *retiring* and keep working for in-flight calls until their grace period ends.
4. Celery beat (``credentials_housekeeping``) retires them after the grace period.
A failed verification leaves traffic untouched and retires the new credential (audited).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser

from aigateway.core.db import run_db
from providers.base import DeploymentTarget, get_adapter
from providers.crypto import fingerprint
from providers.errors import ProviderError
from providers.models import Credential, CredentialStatus, Provider
from providers.services import (
    credential_activate,
    credential_audit,
    credential_create,
    credential_retire,
)

DEFAULT_GRACE = timedelta(hours=1)


class CredentialVerificationFailed(Exception):
    def __init__(self, provider: str, kind: str) -> None:
        super().__init__(f"the new credential for {provider} failed verification ({kind})")
        self.kind = kind


@dataclass(frozen=True)
class RotationResult:
    credential: Credential
    retiring: list[Credential]


def _target_for(provider: Provider, secret: str) -> DeploymentTarget:
    return DeploymentTarget(
        deployment_id=None,
        provider_name=provider.name,
        provider_kind=provider.kind,
        upstream_model="",
        base_url=provider.base_url,
        api_key=secret,
        credential_fingerprint=fingerprint(secret) if secret else "",
        options=tuple(sorted((provider.options or {}).items())),
    )


async def credential_verify(credential: Credential) -> None:
    """A live health call with this credential's secret; raises ProviderError."""
    provider = credential.provider
    secret = await run_db(credential.reveal)
    target = _target_for(provider, secret)
    await get_adapter(target).health_check(target)


def _mark_verification_failed(
    credential: Credential, kind: str, actor: AbstractBaseUser | None
) -> None:
    credential_audit(credential, "credential.verification_failed", actor, error=kind)
    credential_retire(credential=credential, actor=actor)


async def credential_rotate(
    *,
    provider: Provider,
    name: str,
    secret: str = "",
    env_var: str = "",
    grace: timedelta = DEFAULT_GRACE,
    actor: AbstractBaseUser | None = None,
) -> RotationResult:
    credential = await run_db(
        credential_create,
        provider=provider,
        name=name,
        secret=secret,
        env_var=env_var,
        status=CredentialStatus.PENDING,
        actor=actor,
    )
    try:
        await credential_verify(credential)
    except ProviderError as exc:
        await run_db(_mark_verification_failed, credential, exc.kind, actor)
        raise CredentialVerificationFailed(provider.name, exc.kind) from None
    retiring = await run_db(credential_activate, credential=credential, grace=grace, actor=actor)
    return RotationResult(credential=credential, retiring=retiring)
