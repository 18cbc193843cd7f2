"""The mtwin command line: every subcommand answers --help."""

import pytest

from mobility_twin.cli.main import build_parser
from tests.conftest import run_mtwin


def _subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


def test_mtwin_help_lists_every_subcommand():
    result = run_mtwin("--help", timeout=60)
    assert result.returncode == 0
    for name in _subcommands():
        assert name in result.stdout


@pytest.mark.parametrize("name", _subcommands())
def test_every_subcommand_has_help(name):
    result = run_mtwin(name, "--help", timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"usage: mtwin {name}" in result.stdout
