"""Human-readable breaker status, shared by the kill switch CLI and the demo.

The first word is the worst state of any scope in capitals (ARMED, TRIPPED, COOLDOWN) so scripts
can ``awk '{print $1}'``; each active condition follows with its scope, rule, reason and who
tripped it. Then the scope tree: global -> accounts -> strategies, and the symbols with their
market-data health, each with its state and why.
"""

from __future__ import annotations

from typing import Any


def _cond(c: dict[str, Any]) -> str:
    scope = f"scope={c['scope']} " if c.get("scope") else ""
    return f"{scope}rule={c['rule']} ({c['reason']}) by={c['who']}"


def _why(s: dict[str, Any]) -> str:
    if s["state"] == "TRIPPED":
        return "; ".join(f"{c['rule']}: {c['reason']}" for c in s["conditions"])
    if s["state"] == "COOLDOWN":
        return f"until {s['cooldown_until_time']}"
    return ""


def _num(v: Any, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def _line(indent: int, s: dict[str, Any], extra: str = "") -> str:
    dry = " [dry-run]" if s.get("dry_run") else ""
    why = _why(s)
    text = f"{'  ' * indent}{s['scope']:<{30 - 2 * indent}} {s['state']:<8}{dry}"
    if why:
        text += f"  {why}"
    if extra:
        text += f"  {extra}"
    return text.rstrip()


def _money(s: dict[str, Any]) -> str:
    if s.get("equity") is None:
        return ""
    dd = s.get("drawdown")
    return (f"equity={s['equity']:g} peak={_num(s.get('peak'), 'g')} "
            f"drawdown={_num(dd, '.1%')} reporters={len(s.get('reporters') or {})}")


def _health(s: dict[str, Any]) -> str:
    h = s.get("health") or {}
    return (f"age={_num(h.get('last_message_age_s'), '.1f')}s "
            f"lag={_num(h.get('lag_s'), '.2f')}s gaps={_num(h.get('gaps'), 'g')} "
            f"errors/min={_num(h.get('venue_errors_per_min'), 'g')} "
            f"offset={_num(h.get('clock_offset_s'), '+.3f')}s")


def format_tree(snap: dict[str, Any]) -> list[str]:
    """The scope tree, one line a scope."""
    tree = snap.get("tree")
    if not tree:
        return []
    lines = ["scopes:", _line(1, tree["global"])]
    for _, acc in sorted(tree["accounts"].items()):
        if "state" in acc:
            lines.append(_line(2, acc, _money(acc)))
        else:
            lines.append(f"    {acc['scope']:<26} (no readings)")
        for _, st in sorted(acc.get("strategies", {}).items()):
            lines.append(_line(3, st, _money(st)))
    for _, sym in sorted(tree["symbols"].items()):
        lines.append(_line(1, sym, _health(sym)))
    return lines


def format_status(snap: dict[str, Any]) -> str:
    state = str(snap["state"])
    head = f"{state}  since {snap['since_time']}"
    lines: list[str] = []
    conds: list[dict[str, Any]] = list(snap.get("conditions") or [])
    if state == "TRIPPED" and conds:
        head += f"  {_cond(conds[0])}"
        lines += [f"  also {_cond(c)} at {c['time']}" for c in conds[1:]]
    elif state == "COOLDOWN":
        head += f"  scope={snap.get('scope', 'global')} until {snap['cooldown_until_time']}"
    last = snap.get("last_trip")
    if state != "TRIPPED" and last:
        lines.append(f"  last trip {last['time']} {_cond(last)}")
    if snap.get("dry_run"):
        lines.append("  DRY-RUN: rules are evaluated and journaled, no order is blocked")
    elif snap.get("dry_run_scopes"):
        lines.append("  DRY-RUN in " + ", ".join(snap["dry_run_scopes"])
                     + ": evaluated and journaled, their orders are not blocked")
    where = f"  name={snap['name']}" if snap.get("name") else ""
    journal = f"  journal={snap['journal']}" if snap.get("journal") else ""
    lines.append(f"  trips={snap.get('trips_total', 0)}  "
                 f"blocked_orders={snap.get('blocked_total', 0)}  "
                 f"exits_allowed={snap.get('exits_total', 0)}{where}{journal}")
    lines += format_tree(snap)
    return "\n".join([head, *lines])
