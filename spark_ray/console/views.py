"""What the platform's parts report, reshaped into the console's documents (docs/CONSOLE.md).

Each function takes the plain dict a part already returns (``streams status``'s report, the
executor's ``status``, the breaker's ``snapshot``) so the pages show the same numbers the CLI
prints, and a test can feed them from a real part without a cluster.
"""

from __future__ import annotations

import math
from typing import Any


def _num(v: Any, scale: float = 1.0) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return round(float(v) * scale, 3)


def stream_rows(report: dict[str, Any], status: dict[str, dict[str, Any]],
                stored: dict[str, int] | None = None) -> dict[str, Any]:
    """One exchange of ``GET /api/streams`` from its ``streams status`` document (``report``)
    and its actors' raw status (``Fabric.status()``: per-symbol duplicates, dead letters and
    gaps live in the normalizers, the event-to-store histogram in the sink); ``stored``: the
    sink's rows per ``"<dataset>:<SYMBOL>"`` (trades shown).

    Ingest lag and event-to-store p95 are measured per fabric (one histogram per normalizer
    shard and one in the sink), so every symbol of an exchange shows its fabric's value."""
    per: dict[str, dict[str, float]] = {}
    lag_p95: float | None = None
    for name, s in status.items():
        if name.startswith("normalizer"):
            for key, field in (("dups", "duplicates"), ("dead_letters", "dead_letters"),
                               ("gaps_unrepaired", "gaps_unrepaired"),
                               ("gaps_repaired", "gaps_repaired")):
                for sym, n in (s.get(key) or {}).items():
                    per.setdefault(sym, {}).setdefault(field, 0.0)
                    per[sym][field] += float(n)
    for name, a in (report.get("actors") or {}).items():
        if name.startswith("normalizer") and _num(a.get("ingest_lag_p95_ms")) is not None:
            lag_p95 = max(lag_p95 or 0.0, float(a["ingest_lag_p95_ms"]))
    sink = (report.get("actors") or {}).get("sink", {})
    e2s = _num(sink.get("event_to_db_p95_ms"))
    rows = []
    for sym, s in sorted((report.get("symbols") or {}).items()):
        p = per.get(sym, {})
        rows.append({
            "symbol": sym, "rate_per_s": _num(s.get("rate_msg_s")),
            "ingest_lag_p95_ms": lag_p95, "ingest_lag_ms": _num(s.get("ingest_lag_s"), 1000.0),
            "event_to_store_p95_ms": e2s, "last_message_age_s": _num(s.get("last_message_age_s")),
            "duplicates": int(p.get("duplicates", 0)),
            "gaps_repaired": int(p.get("gaps_repaired", s.get("gaps", 0) or 0)),
            "gaps_unrepaired": int(p.get("gaps_unrepaired", s.get("unrepaired_gaps", 0) or 0)),
            "dead_letters": int(p.get("dead_letters", 0)), "messages": s.get("messages"),
            "stored": (stored or {}).get(f"trades:{sym}"),
            "status": "OK" if "reason" not in s else "UNHEALTHY", "reason": s.get("reason"),
        })
    return {"exchange": report.get("exchange"), "status": str(report.get("status", "")).upper(),
            "fabric": report.get("fabric"), "symbols": rows}


def breaker_view(name: str, snap: dict[str, Any], events: list[dict[str, Any]]
                 ) -> dict[str, Any]:
    """A breaker for the trading page: every scope with its state, why and children (global ->
    accounts -> strategies; symbols under global), newest events first."""
    scopes: dict[str, dict[str, Any]] = snap.get("scopes") or {}
    children: dict[str, list[str]] = {n: [] for n in scopes}
    for n, s in scopes.items():
        if n == "global":
            continue
        parent = f"account:{s['account']}" if s.get("kind") == "strategy" and s.get(
            "account") and f"account:{s['account']}" in scopes else "global"
        children.setdefault(parent, []).append(n)
    rows = [{"scope": n, "kind": s.get("kind"), "state": s.get("state"),
             "reasons": [c.get("rule") or c.get("reason") or str(c)
                         for c in s.get("conditions") or []],
             "last_trip": s.get("last_trip"), "dry_run": bool(s.get("dry_run")),
             "since": s.get("since_time"), "children": sorted(children.get(n, []))}
            for n, s in scopes.items()]
    rows.sort(key=lambda r: (r["scope"] != "global", r["scope"]))
    return {"name": name, "state": snap.get("state"), "dry_run": snap.get("dry_run"),
            "scopes": rows, "events": [breaker_event(e) for e in reversed(events)]}


def breaker_event(e: dict[str, Any]) -> dict[str, Any]:
    """A breaker journal event for the history table: what happened, where, by whom, why."""
    kind = e.get("kind") or e.get("event")
    frm, to = e.get("from_state"), e.get("to_state")
    return {"time": e.get("time"), "seq": e.get("seq"), "scope": e.get("scope"),
            "event": f"{kind}" + (f" ({e['rule']})" if e.get("rule") else ""),
            "who": e.get("who"), "reason": e.get("reason") or e.get("rule") or "",
            "from_state": frm, "to_state": to, "dry_run": e.get("dry_run")}


def fill_row(f: dict[str, Any]) -> dict[str, Any]:
    """A fill for the fills table (the executor's fills carry ``time_ms`` and ``commission``)."""
    t = f.get("time_ms")
    return {"time": t / 1000.0 if isinstance(t, int | float) else f.get("time"),
            "symbol": f.get("symbol"), "side": f.get("side"), "qty": f.get("qty"),
            "price": f.get("price"), "fee": f.get("commission", f.get("fee")),
            "fee_asset": f.get("commission_asset"), "maker": f.get("maker"),
            "trade_id": f.get("trade_id")}


def executor_view(status: dict[str, Any], health: tuple[bool, list[str]],
                  orders: list[dict[str, Any]], fills: list[dict[str, Any]],
                  curve: list[list[float]]) -> dict[str, Any]:
    """One executor's card: what its control plane's /health, /positions and /orders say,
    its last fills, PnL, its equity curve per bar, and tick-to-order latency as the executor
    itself summarises it (``status()["tick_to_order"]``)."""
    positions = status.get("positions") or {}
    t2o = status.get("tick_to_order") or {}
    realized = sum(float(p.get("realized_pnl") or 0.0) for p in positions.values())
    unrealized = sum(float(p.get("unrealized_pnl") or 0.0) for p in positions.values())
    return {
        "name": status.get("actor_name") or status.get("name"), "healthy": health[0],
        "reasons": health[1], "mode": status.get("mode"), "broker": status.get("broker"),
        "strategy": status.get("strategy"), "params": status.get("params"),
        "breaker": status.get("breaker"), "breaker_state": status.get("breaker_state"),
        "halted": status.get("halted"), "positions": positions,
        "cash": _num(sum(float(p.get("cash") or 0.0) for p in positions.values())),
        "equity": _num(status.get("equity")),
        "pnl": {"realized": round(realized, 6), "unrealized": round(unrealized, 6),
                "total": round(realized + unrealized, 6)},
        "equity_curve": curve,
        "open_orders": [o for o in orders if o.get("status") in
                        ("NEW", "PARTIALLY_FILLED", "PENDING_NEW")],
        "orders": orders[-50:], "fills": [fill_row(f) for f in fills[-50:]],
        "latency_ms": {"count": t2o.get("n", 0), "p50": t2o.get("p50_ms"),
                       "p95": t2o.get("p95_ms"), "p99": t2o.get("p99_ms")},
    }
