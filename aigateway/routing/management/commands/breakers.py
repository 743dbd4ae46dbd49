"""`manage.py breakers list|open|close|reset`: the breaker actions the dashboard offers."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aigateway.routing.models import Deployment
from aigateway.routing.services import breaker_force, breakers_list


class Command(BaseCommand):
    help = "Show circuit breakers, or force one open/closed, or reset it (audited)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list")
        for action in ("open", "close", "reset"):
            command = sub.add_parser(action)
            command.add_argument("deployment_id", type=int)
            command.add_argument("--reason", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "list":
            for row in breakers_list():
                b = row.breaker
                self.stdout.write(
                    f"{row.deployment.pk:>4}  {row.deployment}  {b.state}  "
                    f"consecutive={b.consecutive_failures} window={b.window_failed}/"
                    f"{b.window_ok + b.window_failed} failed"
                )
            return
        deployment = Deployment.objects.filter(pk=options["deployment_id"]).first()
        if deployment is None:
            raise CommandError(f"no deployment {options['deployment_id']}")
        mode = {"open": "open", "close": "closed", "reset": "reset"}[options["action"]]
        transition = breaker_force(deployment=deployment, mode=mode, reason=options["reason"])
        self.stdout.write(f"{deployment}: {transition.from_state} → {transition.to_state}")
