"""``manage.py gateway export|apply|reencrypt``: configuration as code, key rotation."""

from __future__ import annotations

import sys
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from aigateway.config_as_code.applier import apply_config
from aigateway.config_as_code.exporter import export_yaml
from aigateway.config_as_code.schema import ConfigError, parse_config
from providers.crypto import SecretDecryptionError
from providers.services import credentials_reencrypt


class Command(BaseCommand):
    help = "Configuration as code: export / apply gateway.yaml; re-encrypt stored secrets."

    def add_arguments(self, parser: ArgumentParser) -> None:
        commands = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
        export = commands.add_parser("export", help="Print the configuration as YAML.")
        export.add_argument("-o", "--output", help="Write to this file instead of stdout.")
        apply = commands.add_parser("apply", help="Bring the database to the file's state.")
        apply.add_argument("file", help="The YAML file ('-' reads stdin).")
        apply.add_argument(
            "--dry-run", action="store_true", help="Print the planned changes, change nothing."
        )
        apply.add_argument(
            "--prune-keys",
            action="store_true",
            help="Revoke API keys of declared teams "
            "that the file does not list (default: leave them alone).",
        )
        commands.add_parser(
            "reencrypt",
            help="Re-encrypt stored secrets under the first AIGATEWAY_ENCRYPTION_KEYS key.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"_{options['subcommand']}")(options)

    def _export(self, options: dict[str, Any]) -> None:
        skipped: list[str] = []
        text = export_yaml(skipped)
        for option in skipped:
            self.stderr.write(
                f"warning: provider option {option} was not exported: its name looks like a "
                "secret (secrets belong in credentials)"
            )
        if options["output"]:
            Path(options["output"]).write_text(text, encoding="utf-8")
            self.stderr.write(f"wrote {options['output']}")
        else:
            self.stdout.write(text, ending="")

    def _apply(self, options: dict[str, Any]) -> None:
        name = options["file"]
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot read {name}: {exc.strerror}") from None
        try:
            result = apply_config(
                parse_config(text), dry_run=options["dry_run"], prune_keys=options["prune_keys"]
            )
        except ConfigError as exc:
            raise CommandError(f"{name}: {exc}") from None
        except (DatabaseError, SecretDecryptionError, ValueError) as exc:
            raise CommandError(f"apply failed, nothing was changed: {exc}") from None
        for change in result.changes:
            self.stdout.write(str(change))
        count = len(result.changes)
        if not count:
            self.stdout.write("no changes")
        elif result.dry_run:
            self.stdout.write(f"dry run: {count} change(s) planned, nothing was written")
        else:
            self.stdout.write(self.style.SUCCESS(f"applied {count} change(s)"))
        for label, raw_key in result.issued_keys:
            self.stderr.write(f"created API key {label}: {raw_key}  (shown once)")

    def _reencrypt(self, options: dict[str, Any]) -> None:
        try:
            count = credentials_reencrypt()
        except SecretDecryptionError as exc:
            raise CommandError(f"{exc}; nothing was changed") from None
        self.stdout.write(f"re-encrypted {count} credential(s) under the primary key")
