from django.core.management.base import BaseCommand

from aigateway.core.demo import demo_seed


class Command(BaseCommand):
    help = "Create the demo organisation, team, admin account, API key and demo route."

    def handle(self, *args: object, **options: object) -> None:
        created = demo_seed()
        if created.password is None and created.api_key is None:
            self.stdout.write("Demo data already present (secrets were shown when first created).")
            return
        self.stdout.write(self.style.WARNING("Demo set-up — shown once, keep them:"))
        if created.password:
            self.stdout.write(f"  dashboard login : {created.username} / {created.password}")
        if created.api_key:
            self.stdout.write(f"  demo API key    : {created.api_key}")
        self.stdout.write("  model (route)   : demo")
