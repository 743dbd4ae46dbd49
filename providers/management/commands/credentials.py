"""`manage.py credentials list|rotate|housekeeping`: the same services the dashboard uses."""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from typing import Any

from asgiref.sync import async_to_sync
from django.core.management.base import BaseCommand, CommandError, CommandParser

from providers.models import Credential, Provider
from providers.rotation import CredentialVerificationFailed, credential_rotate
from providers.services import credentials_flag_overdue, credentials_retire_due


class Command(BaseCommand):
    help = "List and rotate provider credentials (secrets are never printed)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="credentials with masked values, status and rotation dates")
        rotate = sub.add_parser("rotate", help="add a new credential, verify it, move traffic")
        rotate.add_argument("provider")
        rotate.add_argument("name", help="name of the new credential")
        source = rotate.add_mutually_exclusive_group(required=True)
        source.add_argument("--secret-env", help="read the secret from this environment variable")
        source.add_argument("--secret-stdin", action="store_true", help="read it from stdin")
        source.add_argument("--env-reference", help="store only a reference to this variable")
        rotate.add_argument("--grace-seconds", type=int, default=3600)
        sub.add_parser("housekeeping", help="retire after grace periods; flag overdue rotations")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, "_" + options["action"].replace("-", "_"))(options)

    def _list(self, options: dict[str, Any]) -> None:
        rows = Credential.objects.select_related("provider").order_by("provider__name", "name")
        for c in rows:
            value = c.masked or f"env:{c.env_var}"
            due = c.rotation_due_at.date().isoformat() if c.rotation_due_at else "-"
            fp = c.fingerprint or "-"
            self.stdout.write(f"{c.provider.name}/{c.name}  {value}  {fp}  {c.status}  due {due}")

    def _rotate(self, options: dict[str, Any]) -> None:
        provider = Provider.objects.filter(name=options["provider"]).first()
        if provider is None:
            raise CommandError(f"unknown provider {options['provider']!r}")
        secret, env_var = "", options.get("env_reference") or ""
        if options.get("secret_env"):
            secret = os.environ.get(options["secret_env"], "")
            if not secret:
                raise CommandError(f"environment variable {options['secret_env']} is not set")
        elif options.get("secret_stdin"):
            secret = sys.stdin.readline().strip()
        try:
            result = async_to_sync(credential_rotate)(
                provider=provider,
                name=options["name"],
                secret=secret,
                env_var=env_var,
                grace=timedelta(seconds=options["grace_seconds"]),
            )
        except CredentialVerificationFailed as exc:
            raise CommandError(str(exc)) from None
        new = result.credential
        self.stdout.write(
            f"active: {provider.name}/{new.name} ({new.masked or 'env:' + new.env_var})"
        )
        for old in result.retiring:
            self.stdout.write(
                f"retiring: {provider.name}/{old.name} until {old.retire_at:%Y-%m-%d %H:%M} UTC"
            )

    def _housekeeping(self, options: dict[str, Any]) -> None:
        retired = credentials_retire_due()
        overdue = credentials_flag_overdue()
        self.stdout.write(f"retired {retired}; newly overdue {len(overdue)}")
