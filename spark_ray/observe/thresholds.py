"""Alert thresholds, read from the alert rules: one source for stat colours and the SLO check.

The demo once showed event-to-store p95 4,761 ms in green: the stat panels had Grafana's default
colours, unrelated to the alerts (which warn at 300 ms). So the numbers live only in
``grafana/alerts/*.yml``; this module reads each alert's comparison (``<expr> > 300``; for an
``or`` of comparisons, each branch; ``unless``/``and`` clauses are conditions, not thresholds),
and matches it to a stat panel when both read the same metrics with the same quantile. The
dashboard generator colours stat panels from these, the PNG renderer draws with those colours,
and :mod:`spark_ray.app.slo` takes the platform's SLO limits from the same rules.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from spark_ray.observe import grafana_dir

SEVERITY_COLOUR = {"warning": "orange", "critical": "red"}
OK_COLOUR = "green"
NEUTRAL_COLOUR = "text"  # a stat no alert judges: shown, not coloured as good or bad
_CMP = re.compile(r"^(?P<lhs>.+?)\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<value>-?[0-9][0-9.e+-]*)$")
_METRIC = re.compile(r"\b((?:ray_|up\b)[A-Za-z0-9_]*)")
_QUANTILE = re.compile(r"histogram_quantile\(\s*([0-9.]+)")


@dataclass(frozen=True)
class Threshold:
    """One alert's comparison: ``alert`` fires when ``lhs op value``."""

    alert: str
    severity: str
    op: str
    value: float
    lhs: str
    metrics: frozenset[str]
    quantile: float | None

    @property
    def colour(self) -> str:
        return SEVERITY_COLOUR.get(self.severity, "red")


def metric_names(expr: str) -> frozenset[str]:
    """Metric names an expression reads, histogram series folded to their base name."""
    return frozenset(re.sub(r"_(bucket|sum|count)$", "", m) for m in _METRIC.findall(expr))


def quantile_of(expr: str) -> float | None:
    m = _QUANTILE.search(expr)
    return float(m.group(1)) if m else None


def _split_top(expr: str, word: str) -> list[str]:
    """``expr`` split on ``word`` (``or``, ``unless``, ``and``) outside parentheses."""
    parts, depth, start, i = [], 0, 0, 0
    pat = re.compile(rf"\s{word}\s")
    while i < len(expr):
        c = expr[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif depth == 0 and (m := pat.match(expr, i)):
            parts.append(expr[start:i])
            start = i = m.end()
            continue
        i += 1
    parts.append(expr[start:])
    return [p.strip() for p in parts]


def _unwrap(expr: str) -> str:
    """Drop parentheses that enclose the whole expression."""
    while expr.startswith("(") and expr.endswith(")"):
        depth = 0
        for i, c in enumerate(expr):
            depth += c == "("
            depth -= c == ")"
            if depth == 0 and i < len(expr) - 1:
                return expr
        expr = expr[1:-1].strip()
    return expr


def comparisons(expr: str) -> list[tuple[str, str, float]]:
    """(lhs, op, value) of each ``or`` branch that compares against a number."""
    out = []
    for branch in _split_top(_unwrap(" ".join(expr.split())), "or"):
        head = _unwrap(_split_top(_unwrap(branch), "unless")[0])
        head = _unwrap(_split_top(head, "and")[0])
        m = _CMP.match(head)
        if m:
            out.append((m.group("lhs"), m.group("op"), float(m.group("value"))))
    return out


def load(alerts_dir: Path | None = None) -> list[Threshold]:
    """Every alert comparison in ``grafana/alerts/*.yml`` (recording rules skipped)."""
    root = alerts_dir or grafana_dir() / "alerts"
    out: list[Threshold] = []
    for path in sorted(root.glob("*.yml")):
        doc: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
        for group in doc.get("groups", []):
            for rule in group.get("rules", []):
                if "alert" not in rule:
                    continue
                severity = rule.get("labels", {}).get("severity", "critical")
                for lhs, op, value in comparisons(str(rule["expr"])):
                    out.append(Threshold(rule["alert"], severity, op, value, lhs,
                                         metric_names(lhs), quantile_of(lhs)))
    return out


def for_expr(expr: str, thresholds: list[Threshold]) -> list[Threshold]:
    """The alert comparisons on what ``expr`` shows: same metrics, same quantile."""
    names, q = metric_names(expr), quantile_of(expr)
    out: list[Threshold] = []
    for t in thresholds:
        if names and t.metrics == names and t.quantile == q and not any(
                (o.alert, o.op, o.value) == (t.alert, t.op, t.value) for o in out):
            out.append(t)
    return out


def by_alert(name: str, thresholds: list[Threshold] | None = None) -> Threshold:
    """The one comparison of alert ``name`` (e.g. ``StreamsEventToStoreSlow`` -> 300 ms)."""
    found = [t for t in (thresholds if thresholds is not None else load()) if t.alert == name]
    if len(found) != 1:
        raise LookupError(f"alert {name}: {len(found)} numeric comparisons in grafana/alerts")
    return found[0]


def step_value(t: Threshold) -> float:
    """Where ``t``'s colour starts. Grafana colours from a step's value on (``>=``); an alert
    on ``> 0`` must leave 0 green, so a strict ``>`` starts at the next float above the limit
    (``0`` -> ``5e-324``, ``300`` -> ``300.00000000000006``)."""
    return math.nextafter(t.value, math.inf) if t.op == ">" else t.value


def grafana_steps(matched: list[Threshold]) -> dict[str, Any]:
    """Grafana ``thresholds`` (absolute steps) for a stat panel judged by ``matched`` alerts.

    Above-alerts (``>``): green below the lowest limit, then each severity's colour from its
    limit on. Below-alerts (``<``): the severity's colour below the limit, green from it on.
    No alert: one neutral step (Grafana's default would paint red from 80, whatever the unit).
    """
    if not matched:
        return {"mode": "absolute", "steps": [{"color": NEUTRAL_COLOUR, "value": None}]}
    above = sorted((t for t in matched if t.op in (">", ">=", "==")), key=lambda t: t.value)
    below = [t for t in matched if t.op in ("<", "<=")]
    if above and below:
        raise ValueError(f"alerts {[t.alert for t in matched]} judge in both directions")
    if above:
        steps: list[dict[str, Any]] = [{"color": OK_COLOUR, "value": None}]
        steps += [{"color": t.colour, "value": step_value(t)} for t in above]
    else:
        # Grafana colours by the highest step <= value: the lowest (most severe) limit first.
        ordered = sorted(below, key=lambda t: t.value)
        steps = [{"color": ordered[0].colour, "value": None}]
        steps += [{"color": t.colour, "value": prev.value}
                  for prev, t in itertools.pairwise(ordered)]
        last = ordered[-1]
        steps.append({"color": OK_COLOUR, "value": math.nextafter(last.value, math.inf)
                      if last.op == "<=" else last.value})
    return {"mode": "absolute", "steps": steps}


def colour_for(value: float, steps: list[dict[str, Any]]) -> str:
    """The colour Grafana shows for ``value``: the last step whose value is <= it."""
    colour = steps[0]["color"] if steps else NEUTRAL_COLOUR
    for s in steps[1:]:
        if value >= s["value"]:
            colour = s["color"]
    return colour
