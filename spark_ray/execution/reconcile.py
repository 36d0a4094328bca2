"""Settle the journal with the venue before trading again.

After a restart the journal knows every intent (written before its submit) but not necessarily
how it ended: the process may have died between the submit and the answer. For every order not
known to be finished, and every finished one whose fills are incomplete, the venue is asked by
client order id:

- it knows the order: its status and fills are applied (an order the crash left PENDING_NEW or
  UNKNOWN becomes the one order of its intent; nothing is resubmitted);
- it does not: the order never reached the venue and is EXPIRED with that reason.

The venue's open orders carrying this executor's id prefix that the journal does not know are
canceled (orphans; only possible if the journal was lost). Balances are read and returned for
the record. Nothing here places an order, so reconciliation can never create a second order
for an intent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from spark_ray.execution.ids import is_ours
from spark_ray.execution.orders import EXPIRED, OPEN, ManagedOrder, OrderUpdate
from spark_ray.fills.orders import BUY

if TYPE_CHECKING:
    from spark_ray.execution.executor import ExecutorCore


def _needs_asking(o: ManagedOrder) -> bool:
    if o.status in OPEN:
        return True
    filled = sum(f.qty for f in o.fills)
    return o.executed_qty > filled * (1 + 1e-9) + 1e-12


async def reconcile(core: ExecutorCore) -> dict[str, Any]:
    broker, om = core.broker, core.om
    report: dict[str, Any] = {"checked": 0, "resolved": {}, "not_at_venue": [],
                              "fills_recovered": 0, "orphans_canceled": [], "errors": []}
    for o in [o for o in om.orders.values() if _needs_asking(o)]:
        report["checked"] += 1
        fills_before = len(o.fills)
        try:
            ups = await broker.query(o)
        except Exception as exc:
            report["errors"].append(f"query {o.cid}: {type(exc).__name__}: {exc}")
            continue
        if ups is None:
            core.apply([OrderUpdate(o.cid, EXPIRED, source="reconcile",
                                    reason="not at the venue after restart (never placed)")])
            report["not_at_venue"].append(o.cid)
            continue
        core.apply([*ups])
        report["resolved"][o.cid] = o.status
        report["fills_recovered"] += len(o.fills) - fills_before
    try:
        venue_open = await broker.open_orders(list(core.cfg.symbols))
    except Exception as exc:
        venue_open = []
        report["errors"].append(f"open orders: {type(exc).__name__}: {exc}")
    for v in venue_open:
        cid = str(v.get("clientOrderId", ""))
        if is_ours(cid, core.key) and cid not in om:
            orphan = ManagedOrder(cid, str(v.get("symbol", "")), BUY, "limit", 0, 0)
            try:
                await broker.cancel(orphan)
                report["orphans_canceled"].append(cid)
            except Exception as exc:
                report["errors"].append(f"cancel orphan {cid}: {type(exc).__name__}: {exc}")
    report["venue_open_orders"] = len(venue_open)
    try:
        report["account"] = await broker.account()
    except Exception as exc:
        report["errors"].append(f"account: {type(exc).__name__}: {exc}")
    return report
