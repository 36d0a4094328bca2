"""The command line: help, version, groups, and exit codes for usage errors."""

from __future__ import annotations

from spark_ray import __version__

from helpers import run_cli


def test_help_lists_command_groups() -> None:
    res = run_cli("--help")
    assert res.code == 0
    for group in ("demo", "evidence", "config", "cluster"):
        assert group in res.out


def test_version() -> None:
    res = run_cli("--version")
    assert res.code == 0
    assert res.out.strip() == f"spark-ray {__version__}"


def test_usage_errors_exit_2() -> None:
    assert run_cli().code == 2
    res = run_cli("no-such-command")
    assert res.code == 2 and "invalid choice" in res.err
    res = run_cli("evidence", "pack", "--bogus", "x")
    assert res.code == 2 and "--bogus" in res.err
