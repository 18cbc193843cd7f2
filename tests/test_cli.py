"""The mtwin command line: every subcommand answers --help."""

import argparse

import pytest

from mobility_twin.cli.main import build_parser
from tests.conftest import run_mtwin


def _choices(parser, dest):
    return next(a for a in parser._actions if a.dest == dest).choices


def _subcommands():
    """Every command as argv words: ["launch"], ["bench", "offloading"], ..."""
    top = _choices(build_parser(), "command")
    words = []
    for name, sub in sorted(top.items()):
        words.append([name])
        nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        for action in nested:
            words += [[name, child] for child in sorted(action.choices)]
    return words


def test_mtwin_help_lists_every_subcommand():
    result = run_mtwin("--help", timeout=60)
    assert result.returncode == 0
    for words in _subcommands():
        assert words[0] in result.stdout


@pytest.mark.parametrize("words", _subcommands(), ids=" ".join)
def test_every_subcommand_has_help(words):
    result = run_mtwin(*words, "--help", timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"usage: mtwin {' '.join(words)}" in result.stdout
