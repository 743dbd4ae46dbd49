"""Helpers shared by the config-as-code tests: run `manage.py gateway`, write files."""

from __future__ import annotations

import textwrap
from io import StringIO
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management import call_command

from aigateway.routing.models import Deployment, Route
from auth.models import ApiKey, Organisation, Team
from providers.models import Credential, Provider


def gateway(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("gateway", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def write(tmp_path: Path, text: str, name: str = "gateway.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def apply(tmp_path: Path, text: str, *flags: str) -> tuple[str, str]:
    return gateway("apply", write(tmp_path, text), *flags)


def counts() -> tuple[int, ...]:
    models = (Provider, Credential, Route, Deployment, Organisation, Team, ApiKey, get_user_model())
    return tuple(m.objects.count() for m in models)
