"""The dashboard's "Test connection": one real call to a provider (its model list, as the
health probe makes) with a credential, a timeout and a fresh adapter, told as a sentence.

The sentence is ours, chosen by the error's kind: never the upstream's message (a 401 body
may quote part of the key) and never the secret. Nothing is changed: no breaker, no probe
data, no credential status (rotation.py verifies and activates).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from asgiref.sync import async_to_sync

from providers.base import DeploymentTarget, adapter_new
from providers.crypto import SecretDecryptionError, fingerprint
from providers.errors import ProviderError
from providers.models import Credential, Provider

logger = logging.getLogger(__name__)
TIMEOUT_SECONDS = 10.0
SENTENCES = {
    "upstream_auth_failed": "The provider refused the credential (authentication failed).",
    "rate_limited": "The provider is rate limiting this credential right now; try again later.",
    "overloaded": "The provider says it is overloaded; try again later.",
    "server_error": "The provider answered with a server error.",
    "timeout": "The provider did not answer in time.",
    "connection_error": "Could not connect to the provider: check the base URL and the network.",
    "invalid_request": "The provider refused the request: check the base URL and the options.",
}


@dataclass(frozen=True)
class ConnectionResult:
    ok: bool
    latency_ms: float
    message: str  # one sentence, safe to show
    credential: str = ""  # "name (sk-…abcd)", or "" when no credential was used


def _sentence(exc: ProviderError) -> str:
    sentence = SENTENCES.get(exc.kind) or f"The call failed: {exc.kind.replace('_', ' ')}."
    if exc.upstream_status:
        sentence = sentence.removesuffix(".") + f" (HTTP {exc.upstream_status})."
    return sentence


async def _call(target: DeploymentTarget, timeout: float) -> tuple[bool, str]:
    try:
        adapter = adapter_new(target)
    except LookupError:
        return False, f"There is no adapter for providers of kind {target.provider_kind}."
    except Exception as exc:  # noqa: BLE001 - an SDK refusing its settings, never the secret
        return False, f"The client could not be set up ({type(exc).__name__}): check the options."
    try:
        async with asyncio.timeout(timeout):
            await adapter.health_check(target)
    except TimeoutError:
        return False, f"The provider did not answer within {timeout:g} seconds."
    except ProviderError as exc:
        return False, _sentence(exc)
    except Exception as exc:  # noqa: BLE001 - shown as a sentence, logged without details
        logger.warning("connection test of %s failed: %s", target.provider_name, type(exc).__name__)
        return False, f"The call failed ({type(exc).__name__})."
    finally:
        close = getattr(adapter, "aclose", None)
        if close is not None:
            await close()
    return True, "Connected: the provider listed its models."


def provider_connection_test(
    *, provider: Provider, credential: Credential | None = None, timeout: float = TIMEOUT_SECONDS
) -> ConnectionResult:
    """Call ``provider`` with ``credential`` (default: the one new traffic uses; none: no
    key). Synchronous, for views and commands; takes at most ``timeout`` seconds."""
    credential = credential or provider.active_credential()
    secret, shown = "", ""
    if credential is not None:
        shown = f"{credential.name} ({credential.masked or 'env:' + credential.env_var})"
        try:
            secret = credential.reveal()
        except SecretDecryptionError:
            message = "The stored secret cannot be decrypted with AIGATEWAY_ENCRYPTION_KEYS."
            return ConnectionResult(False, 0.0, message, shown)
        if not secret:
            message = f"The environment variable {credential.env_var} is not set in this process."
            return ConnectionResult(False, 0.0, message, shown)
    target = DeploymentTarget(
        deployment_id=None,
        provider_name=provider.name,
        provider_kind=provider.kind,
        upstream_model="",
        base_url=provider.base_url,
        api_key=secret,
        credential_fingerprint=fingerprint(secret) if secret else "",
        options=tuple(sorted((provider.options or {}).items())),
    )
    started = time.monotonic()
    ok, message = async_to_sync(_call)(target, timeout)
    latency = (time.monotonic() - started) * 1000
    logger.info("connection test of provider %s: %s", provider.name, "ok" if ok else "failed")
    return ConnectionResult(ok, latency, message, shown)
