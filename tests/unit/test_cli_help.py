"""Every CLI command has help with an Example, and bad input becomes a one-line error, not a traceback."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pipelines.cli import cli

COMMANDS = sorted(cli.commands)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_with_an_example(name):
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output
    assert f"ballotstream {name}" in result.output


def test_unknown_setting_is_a_one_line_error():
    result = CliRunner().invoke(cli, ["settings"], env={"BALLOTSTREAM_NOPE": "1"})
    assert result.exit_code == 1
    assert result.output.startswith("Error: unknown setting BALLOTSTREAM_NOPE (known: ")
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_unsupported_input_file_names_the_file(tmp_path):
    bad = tmp_path / "tallies.xlsx"
    bad.write_text("x")
    result = CliRunner().invoke(cli, ["ingest", str(bad)], env={"BALLOTSTREAM_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    assert result.exit_code == 1
    assert "tallies.xlsx" in result.output
