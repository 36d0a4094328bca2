"""Human-readable breaker status, shared by the kill switch CLI and the demo.

The first word is the state in capitals (ARMED, TRIPPED, COOLDOWN) so scripts can ``awk '{print
$1}'``; each active condition follows with its rule, reason and who tripped it.
"""

from __future__ import annotations

from typing import Any


def _cond(c: dict[str, Any]) -> str:
    return f"rule={c['rule']} ({c['reason']}) by={c['who']}"


def format_status(snap: dict[str, Any]) -> str:
    state = str(snap["state"])
    head = f"{state}  since {snap['since_time']}"
    lines: list[str] = []
    conds: list[dict[str, Any]] = list(snap.get("conditions") or [])
    if state == "TRIPPED" and conds:
        head += f"  {_cond(conds[0])}"
        lines += [f"  also {_cond(c)} at {c['time']}" for c in conds[1:]]
    elif state == "COOLDOWN":
        head += f"  until {snap['cooldown_until_time']}"
    last = snap.get("last_trip")
    if state != "TRIPPED" and last:
        lines.append(f"  last trip {last['time']} {_cond(last)}")
    if snap.get("dry_run"):
        lines.append("  DRY-RUN: rules are evaluated and journaled, no order is blocked")
    where = f"  name={snap['name']}" if snap.get("name") else ""
    journal = f"  journal={snap['journal']}" if snap.get("journal") else ""
    lines.append(f"  trips={snap.get('trips_total', 0)}  "
                 f"blocked_orders={snap.get('blocked_total', 0)}{where}{journal}")
    return "\n".join([head, *lines])
