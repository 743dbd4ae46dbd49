"""The prompt-logging policy in gateway.yaml: off unless declared, applied, shown in the plan,
exported, and a wrong value named by its path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from django.core.management.base import CommandError

from auth.models import Team
from tests.config_as_code.support import apply, gateway

pytestmark = pytest.mark.django_db
FILE = """
version: 1
organisations:
  - slug: acme
    name: Acme
    teams:
      - slug: research
        name: Research
{policy}
"""


def team() -> Team:
    return Team.objects.get(organisation__slug="acme", slug="research")


def test_teams_do_not_log_prompts_unless_the_file_says_so(tmp_path: Path) -> None:
    apply(tmp_path, FILE.format(policy=""))
    assert team().log_prompts is False
    out, _ = apply(tmp_path, FILE.format(policy="        log_prompts: true"))
    assert "team acme/research" in out and "log_prompts" in out
    assert team().log_prompts is True
    exported = yaml.safe_load(gateway("export")[0])
    [research] = exported["organisations"][0]["teams"]
    assert research["log_prompts"] is True
    assert apply(tmp_path, FILE.format(policy="        log_prompts: true"))[0].strip() == (
        "no changes"
    )


def test_a_new_team_can_start_with_the_policy_on(tmp_path: Path) -> None:
    apply(tmp_path, FILE.format(policy="        log_prompts: true"))
    assert team().log_prompts is True


def test_the_policy_must_be_a_flag(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"teams\[0\]\.log_prompts: must be true or false"):
        apply(tmp_path, FILE.format(policy='        log_prompts: "yes please"'))
