"""Break-glass accounts: local accounts with password + TOTP that sign in when the IdP is down
(docs/sso.md).

    manage.py breakglass enrol <username>     # prints the TOTP secret and otpauth:// URI ONCE
    manage.py breakglass remove <username>
    manage.py breakglass list
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from auth.sso.models import TotpDevice
from auth.sso.totp import provisioning_uri, totp_enrol, totp_remove


class Command(BaseCommand):
    help = "Enrol, remove or list break-glass TOTP factors."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        enrol = sub.add_parser("enrol", help="give a user a new TOTP factor (shown once)")
        enrol.add_argument("username")
        remove = sub.add_parser("remove", help="remove a user's TOTP factor")
        remove.add_argument("username")
        sub.add_parser("list", help="list break-glass accounts")

    def _user(self, username: str) -> Any:
        try:
            return get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user named {username!r}") from None

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "list":
            for device in TotpDevice.objects.select_related("user").order_by("user__username"):
                self.stdout.write(
                    f"{device.user.get_username()}\tenrolled {device.created_at:%Y-%m-%d}"
                )
            return
        user = self._user(options["username"])
        if action == "remove":
            if not totp_remove(user=user):
                raise CommandError(f"{user.get_username()} has no TOTP factor")
            self.stdout.write(f"Removed the TOTP factor of {user.get_username()}.")
            return
        if not user.has_usable_password():
            raise CommandError(
                f"{user.get_username()} has no password: set one first (manage.py changepassword)"
            )
        secret = totp_enrol(user=user)
        self.stdout.write(
            "Break-glass factor enrolled. Shown once, store it in your authenticator now:\n"
            f"  secret : {secret}\n"
            f"  URI    : {provisioning_uri(secret, account=user.get_username())}\n"
            "Sign in at /login/ with the password and the 6-digit code."
        )
