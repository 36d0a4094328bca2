"""The order manager: every order's state, its fills, and the transitions allowed between them.

States are Binance's (NEW, PARTIALLY_FILLED, FILLED, CANCELED, REJECTED, EXPIRED) plus two local
ones: PENDING_NEW (the intent is journaled and the submit is under way) and UNKNOWN (the submit
timed out or failed in a way that leaves the venue's answer unknown; reconciliation resolves it
by asking the venue for the client order id). A terminal state is final; updates arrive from the
submit's answer, the user data stream and REST queries, possibly twice and out of order, so
status only moves forward, cumulative quantities only grow, and a fill is applied once per trade
id.

:class:`ManagedOrder` also serves the strategy as its order handle (``ctx.buy`` returns one): it
carries the fields of the backtest's :class:`~spark_ray.fills.orders.Order` (``status``,
``side`` as +1/-1, ``kind``, ``qty``, ``limit``, ``stop``, ``fill_price``, ``fill_qty``, ``fee``,
``tag``): :class:`~spark_ray.strategy.context.OrderHandle`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from spark_ray.fills.orders import BUY, CANCELED, FILLED, NEW, REJECTED, SELL

# The fill model's statuses plus the venue's own and two local ones.
PENDING_NEW, UNKNOWN = "PENDING_NEW", "UNKNOWN"
PARTIALLY_FILLED, EXPIRED = "PARTIALLY_FILLED", "EXPIRED"
TERMINAL = frozenset({FILLED, CANCELED, REJECTED, EXPIRED})
OPEN = frozenset({PENDING_NEW, UNKNOWN, NEW, PARTIALLY_FILLED})
STATUSES = (PENDING_NEW, UNKNOWN, NEW, PARTIALLY_FILLED, FILLED, CANCELED, REJECTED, EXPIRED)
_RANK = {PENDING_NEW: 0, UNKNOWN: 0, NEW: 1, PARTIALLY_FILLED: 2, FILLED: 3, CANCELED: 3,
         REJECTED: 3, EXPIRED: 3}
# Same-rank moves that still carry news: a timeout after PENDING_NEW, another partial fill.
_SIDEWAYS = frozenset({(UNKNOWN, PENDING_NEW), (PARTIALLY_FILLED, PARTIALLY_FILLED)})
# Binance's PENDING_CANCEL and EXPIRED_IN_MATCH fold into ours.
ALIASES = {"PENDING_CANCEL": NEW, "EXPIRED_IN_MATCH": EXPIRED}


@dataclass(frozen=True, slots=True)
class Fill:
    trade_id: str
    price: float
    qty: float
    commission: float = 0.0
    commission_asset: str = ""
    time_ms: int = 0
    maker: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"trade_id": self.trade_id, "price": self.price, "qty": self.qty,
                "commission": self.commission, "commission_asset": self.commission_asset,
                "time_ms": self.time_ms, "maker": self.maker}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Fill:
        return cls(str(d["trade_id"]), float(d["price"]), float(d["qty"]),
                   float(d.get("commission", 0.0)), str(d.get("commission_asset", "")),
                   int(d.get("time_ms", 0)), bool(d.get("maker", False)))


@dataclass(slots=True)
class OrderUpdate:
    """What a broker learned about one order (any subset of fields)."""

    cid: str
    status: str | None = None
    venue_order_id: int | None = None
    executed_qty: float | None = None  # cumulative
    cum_quote: float | None = None  # cumulative quote amount
    reason: str = ""
    time_ms: int = 0
    fill: Fill | None = None
    source: str = ""  # submit | stream | query | paper | reconcile

    def as_dict(self) -> dict[str, Any]:
        return {"cid": self.cid, "status": self.status, "venue_order_id": self.venue_order_id,
                "executed_qty": self.executed_qty, "cum_quote": self.cum_quote,
                "reason": self.reason, "time_ms": self.time_ms,
                "fill": self.fill.as_dict() if self.fill else None, "source": self.source}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OrderUpdate:
        f = d.get("fill")
        return cls(d["cid"], d.get("status"), d.get("venue_order_id"), d.get("executed_qty"),
                   d.get("cum_quote"), d.get("reason", ""), int(d.get("time_ms", 0)),
                   Fill.from_dict(f) if f else None, d.get("source", ""))


@dataclass(eq=False)
class ManagedOrder:
    """One order of one intent. Sizing is the strategy's (qty, notional or pct); the venue
    parameters (exact decimal strings) are fixed when it is submitted."""

    cid: str
    symbol: str
    side: int  # BUY (+1) or SELL (-1), as fills.orders.Order
    kind: str  # market | limit | stop
    bar_time: int
    seq: int
    qty: float | None = None
    notional: float | None = None
    pct: float | None = None
    limit: float | None = None
    stop: float | None = None
    tag: str = ""
    est_qty: float = 0.0  # quantity estimated at submit (breaker, filters)
    quantity: str | None = None  # venue parameters
    quote_qty: str | None = None
    price: str | None = None
    stop_price: str | None = None
    status: str = PENDING_NEW
    reason: str = ""
    venue_order_id: int | None = None
    executed_qty: float = 0.0
    cum_quote: float = 0.0
    fee: float = 0.0  # commissions in quote terms, as fills.orders.Order.fee
    fills: list[Fill] = field(default_factory=list)
    created_ms: int = 0
    updated_ms: int = 0
    submit_ms: float = 0.0  # monotonic ms the submit went out (tick-to-order)
    flatten: bool = False

    # --- what a strategy reads of an order (strategy.context.OrderHandle) -----------------
    @property
    def id(self) -> str:
        return self.cid

    @property
    def fill_qty(self) -> float:
        return self.executed_qty

    @property
    def fill_price(self) -> float:
        return self.cum_quote / self.executed_qty if self.executed_qty else float("nan")

    @property
    def side_name(self) -> str:
        return "buy" if self.side == BUY else "sell"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    def __repr__(self) -> str:
        return (f"ManagedOrder({self.cid} {self.side_name} {self.kind} {self.symbol} "
                f"qty={self.quantity or self.quote_qty} {self.status})")

    def as_dict(self) -> dict[str, Any]:
        return {"cid": self.cid, "symbol": self.symbol, "side": self.side_name,
                "kind": self.kind, "bar_time": self.bar_time, "seq": self.seq, "qty": self.qty,
                "notional": self.notional, "pct": self.pct, "limit": self.limit,
                "stop": self.stop, "tag": self.tag, "est_qty": self.est_qty,
                "quantity": self.quantity, "quote_qty": self.quote_qty, "price": self.price,
                "stop_price": self.stop_price, "status": self.status, "reason": self.reason,
                "venue_order_id": self.venue_order_id, "executed_qty": self.executed_qty,
                "cum_quote": self.cum_quote, "avg_price": (self.cum_quote / self.executed_qty
                                                           if self.executed_qty else None),
                "fee": self.fee, "fills": [f.as_dict() for f in self.fills],
                "created_ms": self.created_ms, "updated_ms": self.updated_ms,
                "flatten": self.flatten}

    def intent(self) -> dict[str, Any]:
        """What the journal records before the submit (enough to rebuild the order)."""
        d = self.as_dict()
        for k in ("status", "reason", "venue_order_id", "executed_qty", "cum_quote",
                  "avg_price", "fee", "fills", "updated_ms"):
            d.pop(k)
        return d

    @classmethod
    def from_intent(cls, d: dict[str, Any]) -> ManagedOrder:
        return cls(cid=d["cid"], symbol=d["symbol"], side=BUY if d["side"] == "buy" else SELL,
                   kind=d["kind"], bar_time=int(d["bar_time"]), seq=int(d["seq"]),
                   qty=d.get("qty"), notional=d.get("notional"), pct=d.get("pct"),
                   limit=d.get("limit"), stop=d.get("stop"), tag=d.get("tag", ""),
                   est_qty=float(d.get("est_qty", 0.0)), quantity=d.get("quantity"),
                   quote_qty=d.get("quote_qty"), price=d.get("price"),
                   stop_price=d.get("stop_price"), created_ms=int(d.get("created_ms", 0)),
                   flatten=bool(d.get("flatten", False)))


@dataclass(slots=True)
class Applied:
    """What one update changed: the new status (if it moved) and the new fill (if any)."""

    order: ManagedOrder | None
    status: str | None = None
    fill: Fill | None = None
    ignored: str = ""


class OrderManager:
    """All orders by client order id; :meth:`apply` is the only place their state changes."""

    def __init__(self) -> None:
        self.orders: dict[str, ManagedOrder] = {}
        self.stale_updates = 0
        self.unknown_updates = 0

    def __contains__(self, cid: str) -> bool:
        return cid in self.orders

    def get(self, cid: str) -> ManagedOrder | None:
        return self.orders.get(cid)

    def add(self, order: ManagedOrder) -> ManagedOrder:
        if order.cid in self.orders:
            raise KeyError(f"order {order.cid} exists already (one order per intent)")
        self.orders[order.cid] = order
        return order

    def open_orders(self, symbol: str | None = None) -> list[ManagedOrder]:
        return [o for o in self.orders.values()
                if o.status in OPEN and (symbol is None or o.symbol == symbol)]

    def unresolved(self) -> list[ManagedOrder]:
        """Orders whose venue state must be asked for (after a restart or a lost answer)."""
        return [o for o in self.orders.values() if o.status in (PENDING_NEW, UNKNOWN)]

    def apply(self, u: OrderUpdate, base_asset: str = "", quote_asset: str = "") -> Applied:
        o = self.orders.get(u.cid)
        if o is None:
            self.unknown_updates += 1
            return Applied(None, ignored="unknown client order id")
        result = Applied(o)
        if u.venue_order_id is not None:
            o.venue_order_id = u.venue_order_id
        if u.time_ms:
            o.updated_ms = max(o.updated_ms, u.time_ms)
        f = u.fill
        if f is not None and all(x.trade_id != f.trade_id for x in o.fills):
            o.fills.append(f)
            o.executed_qty = max(o.executed_qty, sum(x.qty for x in o.fills))
            o.cum_quote = max(o.cum_quote, sum(x.qty * x.price for x in o.fills))
            if not f.commission_asset or f.commission_asset == quote_asset:
                o.fee += f.commission
            elif f.commission_asset == base_asset:
                o.fee += f.commission * f.price
            result.fill = f
        if u.executed_qty is not None and u.executed_qty > o.executed_qty:
            o.executed_qty = u.executed_qty
        if u.cum_quote is not None and u.cum_quote > o.cum_quote:
            o.cum_quote = u.cum_quote
        status = ALIASES.get(u.status or "", u.status)
        if status is not None:
            if status not in _RANK:
                result.ignored = f"unknown status {status!r}"
            elif o.status in TERMINAL:
                if status != o.status:
                    self.stale_updates += 1
            elif _RANK[status] > _RANK[o.status] or (status, o.status) in _SIDEWAYS:
                if status != o.status:
                    o.status = status
                    result.status = status
                if u.reason and status in (REJECTED, EXPIRED, CANCELED, UNKNOWN):
                    o.reason = u.reason
            elif _RANK[status] < _RANK[o.status]:
                self.stale_updates += 1
        return result

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for o in self.orders.values():
            out[o.status] += 1
        return out
