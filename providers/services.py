"""Writes to providers and credentials. Secrets are encrypted here and nowhere else."""

from __future__ import annotations

from django.db import transaction

from providers.crypto import encrypt_secret, fingerprint, mask, reencrypt_secret
from providers.models import Credential, Provider


def credential_create(
    *, provider: Provider, name: str, secret: str = "", env_var: str = ""
) -> Credential:
    """Store a secret encrypted, or a reference to an environment variable (``env_var``)."""
    if bool(secret) == bool(env_var):
        raise ValueError("give exactly one of secret or env_var")
    credential = Credential(provider=provider, name=name, env_var=env_var)
    if secret:
        credential.ciphertext = encrypt_secret(secret)
        credential.fingerprint = fingerprint(secret)
        credential.masked = mask(secret)
    credential.save()
    return credential


@transaction.atomic
def credentials_reencrypt() -> int:
    """Re-encrypt every stored secret under the first key of AIGATEWAY_ENCRYPTION_KEYS."""
    count = 0
    for credential in Credential.objects.select_for_update().exclude(ciphertext=""):
        credential.ciphertext = reencrypt_secret(credential.ciphertext)
        credential.save(update_fields=["ciphertext"])
        count += 1
    return count
