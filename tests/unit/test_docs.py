"""The README is tested: every CLI command, setting, topic and make target it names exists, and every one that
exists is documented there."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from pipelines.cli import cli
from pipelines.contract.topics import ALL_TOPICS
from pipelines.settings import INFRA_VARIABLES, PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_every_cli_command_is_documented_and_every_documented_one_exists():
    documented = set(re.findall(r"ballotstream ([a-z][a-z-]+)", README))
    assert set(cli.commands) <= documented
    assert documented <= set(cli.commands)


def test_every_setting_is_documented_and_every_documented_one_exists():
    known = {f"{PREFIX}{f.name.upper()}" for f in fields(Settings)} | set(INFRA_VARIABLES)
    documented = set(re.findall(r"BALLOTSTREAM_[A-Z0-9_]+", README))
    assert known <= documented, known - documented
    assert documented <= known, documented - known


def test_settings_defaults_in_readme_match_code():
    defaults = Settings()
    for f in fields(Settings):
        value = str(getattr(defaults, f.name))
        if "secret" in f.name or "key_id" in f.name or not value:
            continue
        row = next(line for line in README.splitlines() if f"`{PREFIX}{f.name.upper()}`" in line)
        assert f"`{value}`" in row, (f.name, row)


def test_every_topic_is_documented():
    for topic in ALL_TOPICS:
        assert f"`{topic.name}`" in README


def test_every_make_target_in_readme_exists():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, flags=re.M))
    for target in set(re.findall(r"`make ([a-z-]+)`", README)) | {"demo", "test"}:
        assert target in targets, target


def test_docs_the_readme_points_to_exist():
    for path in set(re.findall(r"`((?:docs|data|infra|schemas|pipelines|dagster_project)/[\w./-]+)`", README)):
        assert (ROOT / path.rstrip("/")).exists(), path
