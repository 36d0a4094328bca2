"""Runbooks that tell the operator to repair stored trades name the command that does it
(``spark-ray data repair``, issue 18 point 6), with flags the real CLI parser accepts; none
suggests ``data fetch`` (klines) for a trade hole."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from spark_ray.app.cli import build_parser

ALERTS = Path(__file__).resolve().parents[2] / "grafana" / "alerts"
REPAIR = re.compile(r"spark-ray data repair[^;)(]*")
VALUED = {"--store", "--exchange", "--symbol", "--from-id", "--to-id", "--base-url",
          "--max-retries"}
SUGGESTS_REPAIR = re.compile(r"\b(back-?fill|repair(ed)?)\b", re.I)


def _runbooks() -> list[tuple[str, str]]:
    out = []
    for path in sorted(ALERTS.glob("*.yml")):
        doc: Any = yaml.safe_load(path.read_text())
        for g in doc["groups"]:
            for r in g["rules"]:
                if "alert" in r:
                    out.append((r["alert"], " ".join(r["annotations"]["runbook"].split())))
    return out


def _render(text: str) -> str:
    return re.sub(r"\{\{\s*\$labels\.(\w+)\s*\}\}",
                  lambda m: {"exchange": "binance", "symbol": "BTCUSDT"}.get(m.group(1), "x"), text)


def test_runbooks_that_suggest_a_repair_name_data_repair() -> None:
    runbooks = _runbooks()
    assert len(runbooks) > 10
    for alert, text in runbooks:
        assert "data fetch" not in text, f"{alert}: data fetch fetches klines, not trades"
    suggesting = [a for a, t in runbooks if SUGGESTS_REPAIR.search(t)]
    naming = [a for a, t in runbooks if "spark-ray data repair" in t]
    assert "StreamsSequenceGapUnrepaired" in naming
    assert set(suggesting) <= set(naming), set(suggesting) - set(naming)


def test_every_repair_command_in_a_runbook_parses() -> None:
    parser = build_parser()
    commands = [(a, _render(c.strip().rstrip("."))) for a, t in _runbooks()
                for c in REPAIR.findall(t)]
    assert len(commands) >= 4
    for alert, cmd in commands:
        words = shlex.split(cmd)[1:]
        argv = words[:2]  # data repair, then flags (and their values) until the prose resumes
        i = 2
        while i < len(words) and words[i].startswith("--"):
            take = 2 if words[i] in VALUED else 1
            argv += words[i:i + take]
            i += take
        args = parser.parse_args(argv)  # SystemExit(2) on a flag the CLI does not have
        assert (args.command, args.data_command) == ("data", "repair"), alert
        assert args.scan and args.store and args.symbol, (alert, cmd)
