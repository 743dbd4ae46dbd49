"""The playground history policy in gateway.yaml: off unless declared, applied, exported,
and idempotent."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

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
ON = "        playground_history_visible_to_admins: true"


def team() -> Team:
    return Team.objects.get(organisation__slug="acme", slug="research")


def test_admins_see_no_member_runs_unless_the_file_says_so(tmp_path: Path) -> None:
    apply(tmp_path, FILE.format(policy=""))
    assert team().playground_history_visible_to_admins is False
    out, _ = apply(tmp_path, FILE.format(policy=ON))
    assert "playground_history_visible_to_admins" in out
    assert team().playground_history_visible_to_admins is True
    [research] = yaml.safe_load(gateway("export")[0])["organisations"][0]["teams"]
    assert research["playground_history_visible_to_admins"] is True
    assert apply(tmp_path, FILE.format(policy=ON))[0].strip() == "no changes"


def test_a_new_team_can_start_with_the_policy_on(tmp_path: Path) -> None:
    apply(tmp_path, FILE.format(policy=ON))
    assert team().playground_history_visible_to_admins is True
