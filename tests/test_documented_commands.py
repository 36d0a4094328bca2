"""Every ``spark-ray ...`` command named in a runbook, the README or docs/ exists.

An operator follows a runbook at 3 a.m.: a command it names that the CLI does not have (the
alerts once sent people to ``spark-ray streams status`` before it existed) costs the minutes
the runbook was written to save. This walks the real argparse tree, so a renamed or removed
command or subcommand fails here, in the same change.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from spark_ray.app.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]

# Where operators read commands: the README, docs/, the alert runbooks (annotations in the rule
# files), the dashboards' panel descriptions, the Grafana and chaos READMEs, the cluster file.
SOURCES = sorted({
    ROOT / "README.md",
    *ROOT.glob("docs/**/*.md"),
    *ROOT.glob("grafana/**/*.md"),
    *ROOT.glob("grafana/alerts/*.yml"),
    *ROOT.glob("grafana/dashboards/*.json"),
    *ROOT.glob("chaos/*.md"),
    ROOT / "cluster.yaml",
})

WORD = r"[a-z][a-z0-9-]*"
# "spark-ray WORD [WORD]": not a path (``~/spark-ray/...``), a file (``spark-ray.yaml``), a name
# (``spark-ray-venv``) or a program's message prefix (``spark-ray: error``). A word counts only
# when followed by a separator, so ``runs/...`` or ``FILE`` arguments are not read as commands.
COMMAND = re.compile(
    rf"(?<![\w/.~-])spark-ray[ \t]+({WORD})(?=[\s`'\",;)\]|]|$)"
    rf"(?:[ \t]+({WORD})(?=[\s`'\",;)\]|.:]|$))?")


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def check(command: str, sub: str | None, parser: argparse.ArgumentParser) -> str | None:
    """Why ``spark-ray COMMAND [SUB]`` does not exist, or None when it does."""
    top = _subcommands(parser)
    if command not in top:
        return f"no command {command!r} (have: {', '.join(sorted(top))})"
    nested = _subcommands(top[command])
    if sub is not None and nested and sub not in nested:
        return f"no subcommand {command} {sub!r} (have: {', '.join(sorted(nested))})"
    if nested and sub is None and any(a.required for a in top[command]._actions
                                      if isinstance(a, argparse._SubParsersAction)):
        return f"{command} needs a subcommand ({', '.join(sorted(nested))})"
    return None


def documented() -> list[tuple[str, int, str, str | None]]:
    """(file, line, command, subcommand) for every mention in :data:`SOURCES`."""
    found = []
    for path in SOURCES:
        if not path.is_file():
            continue
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for m in COMMAND.finditer(line):
                found.append((str(path.relative_to(ROOT)), lineno, m.group(1), m.group(2)))
    return found


def test_every_documented_command_exists() -> None:
    parser = build_parser()
    mentions = documented()
    # The extraction itself must see the operator's commands, or this test checks nothing.
    seen = {(c, s) for _, _, c, s in mentions}
    assert len(mentions) >= 60, mentions
    for must in [("streams", "status"), ("streams", "up"), ("streams", "down"),
                 ("data", "repair"), ("breaker", "status"), ("breaker", "dry-run"),
                 ("trade", None)]:
        assert must in seen or any(c == must[0] for c, _ in seen), must
    bad = []
    for file, line, command, sub in mentions:
        why = check(command, sub, parser)
        if why is not None:
            bad.append(f"{file}:{line}: spark-ray {command} {sub or ''}: {why}")
    assert not bad, "documented commands that do not exist:\n" + "\n".join(bad)


@pytest.mark.parametrize("text, problem", [
    ("run `spark-ray streams statuz` now", "no subcommand"),
    ("then spark-ray strems status", "no command"),
    ("spark-ray breaker", "needs a subcommand"),
])
def test_the_check_catches_missing_commands(text: str, problem: str) -> None:
    m = COMMAND.search(text)
    assert m is not None
    why = check(m.group(1), m.group(2), build_parser())
    assert why is not None and problem in why


@pytest.mark.parametrize("text", [
    "~/spark-ray/pyproject.toml", "cluster_name: spark-ray", "spark-ray.yaml in the folder",
    "~/spark-ray-venv/bin", "spark-ray: error: invalid configuration",
])
def test_paths_names_and_messages_are_not_commands(text: str) -> None:
    assert COMMAND.search(text) is None
