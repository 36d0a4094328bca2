"""The venue's trading half: accounts, the order lifecycle and fills, with Binance spot semantics.

A :class:`TradingDesk` owns every account (one per configured API key), every order it ever
accepted and every fill. No I/O: the REST layer (:mod:`signed`) calls it with validated
requests, the server calls :meth:`TradingDesk.on_trades` with each batch of market trades, and
user-data events go out through the ``emit`` callback.

- MARKET orders take liquidity from the simulated book level by level (``quantity`` or
  ``quoteOrderQty``); if the book runs out, the rest EXPIRES (Binance's status for it).
- LIMIT orders take what crosses (taker), then rest (GTC), expire the rest (IOC), or expire
  whole unless they fill completely (FOK). LIMIT_MAKER is rejected if it would take.
- Resting orders fill as maker when the market's trades cross their price (:mod:`matching`),
  at their own price, possibly in parts (PARTIALLY_FILLED, then FILLED).
- Balances: a resting BUY locks price * qty of the quote asset, a SELL locks the quantity;
  fills pay out of the lock (a better taker price frees the difference), cancel and expiry
  unlock the rest. Commission is charged in the asset received, as on Binance without BNB: a
  BUY pays it in the base asset, a SELL in the quote asset; maker and taker rates configurable.
- Every step of an order emits an ``executionReport`` and, when balances moved, an
  ``outboundAccountPosition``.
- Account time (transactTime, fills, events) is the wall clock in ms, like Binance's, not the
  market clock (which a replay may set years back or a test may pause).
"""

from __future__ import annotations

import string
import time
from collections.abc import Callable
from typing import Any

from spark_ray.venue.accounts import (
    E8,
    Account,
    InsufficientBalance,
    commission,
    open_account,
    rate_e8,
)
from spark_ray.venue.config import VenueConfig
from spark_ray.venue.engine import MarketEngine
from spark_ray.venue.filters import SymbolFilters
from spark_ray.venue.market import mix64
from spark_ray.venue.matching import Resting, cross, quote_e8, walk
from spark_ray.venue.orders import Fill, NewOrder, Order, Placed
from spark_ray.venue.params import RestError
from spark_ray.venue.rest import average_price
from spark_ray.venue.specs import SymbolSpec, fmt8

Emit = Callable[[str, dict[str, Any]], None]  # (api key of the account, event)
_ALPHABET = string.ascii_letters + string.digits
INSUFFICIENT = "Account has insufficient balance for requested action."


def wall_ms() -> int:
    return int(time.time() * 1000)


class TradingDesk:
    """Accounts, orders and fills of one venue. Call only from the venue's event loop."""

    def __init__(self, config: VenueConfig, market: MarketEngine, *,
                 clock: Callable[[], int] | None = None, emit: Emit | None = None) -> None:
        self.market = market
        self.specs: dict[str, SymbolSpec] = market.specs
        self.clock = clock or wall_ms
        self.emit = emit
        self.seed = config.seed
        self.secrets = config.resolved_api_keys()  # api key -> secret; never logged
        assets = {a for s in self.specs.values() for a in (s.base_asset, s.quote_asset)}
        self.assets = sorted(assets | set(config.starting_balances))
        maker, taker = rate_e8(config.maker_commission), rate_e8(config.taker_commission)
        self.accounts: dict[str, Account] = {
            k: open_account(k, config.starting_balances, self.assets, maker, taker)
            for k in self.secrets
        }
        self.filters = {s: SymbolFilters.of(spec) for s, spec in self.specs.items()}
        self.orders: dict[int, Order] = {}
        self.resting: dict[str, dict[int, Order]] = {s: {} for s in self.specs}
        self.fills: dict[str, list[Fill]] = {k: [] for k in self.accounts}
        self._next_order = 1
        self._next_trade = 1
        self._seq = 0
        self._ids = 0

    # --- placing ---------------------------------------------------------------------------
    def check(self, req: NewOrder) -> tuple[int | None, int | None]:
        """Apply the symbol's filters (-1013); (price in ticks, qty in lot units)."""
        spec, f = self.specs[req.symbol], self.filters[req.symbol]
        market = req.type == "MARKET"
        if req.price is not None:
            f.check_price(req.price)
        if req.qty is not None:
            f.check_qty(req.qty, market=market)
        if market and req.qty is not None:
            avg = round(average_price(self.market, req.symbol) * E8)
            f.check_notional(avg, req.qty, market=True)
        elif market and req.quote_qty is not None:
            f.check_notional(req.quote_qty, E8, market=True)
        elif req.price is not None and req.qty is not None:
            f.check_notional(req.price, req.qty, market=False)
        price = req.price // spec.tick_to8 if req.price is not None else None
        qty = req.qty // spec.unit_to8 if req.qty is not None else None
        return price, qty

    def place(self, key: str, req: NewOrder) -> Placed:
        """Accept and execute an order, or raise RestError (-1013 filters, -2010 rejects)."""
        acct = self.accounts[key]
        spec = self.specs[req.symbol]
        price, qty = self.check(req)
        mine = [o for o in self.resting[req.symbol].values() if o.account == key]
        self.filters[req.symbol].check_open_orders(len(mine))
        if req.client_order_id and any(o.client_order_id == req.client_order_id for o in mine):
            raise RestError(-2010, "Duplicate order sent.")
        if req.type == "MARKET":
            return self._market(acct, spec, req, qty)
        assert price is not None and qty is not None  # nosec B101  # narrows Optional for mypy, not a check
        return self._limit(acct, spec, req, price, qty)

    def _market(self, acct: Account, spec: SymbolSpec, req: NewOrder, qty: int | None
                ) -> Placed:
        buy = req.side == "BUY"
        k = spec.tick_to8 * spec.unit_to8
        book = self.market.books[spec.symbol]
        if qty is not None:
            plan, complete = walk(book, buy=buy, qty=qty)
        else:
            plan, complete = walk(book, buy=buy, quote_budget=req.quote_qty, k=k)
        if buy:
            need, asset = sum(quote_e8(p, q, k) for p, q in plan), spec.quote_asset
        else:
            need, asset = sum(q for _, q in plan) * spec.unit_to8, spec.base_asset
        if need > acct.free(asset):
            raise RestError(-2010, INSUFFICIENT)
        now = self.clock()
        orig = qty if qty is not None else sum(q for _, q in plan)
        order = self._open(acct.key, spec, req, price=0, qty=orig, tif="GTC", now=now)
        self._report(order, "NEW", now)
        fills = []
        for i, (p, q) in enumerate(plan):
            last = i == len(plan) - 1
            fills.append(self._execute(order, p, q, maker=False, now=now,
                                       hold_open=last and not complete))
        if not plan or not complete or order.remaining > 0:
            self._finish(order, "EXPIRED", now)
        return Placed(order, fills, now)

    def _limit(self, acct: Account, spec: SymbolSpec, req: NewOrder, price: int, qty: int
               ) -> Placed:
        buy = req.side == "BUY"
        k = spec.tick_to8 * spec.unit_to8
        plan, _ = walk(self.market.books[spec.symbol], buy=buy, qty=qty, limit=price)
        if req.type == "LIMIT_MAKER" and plan:
            raise RestError(-2010, "Order would immediately match and take.")
        if buy:
            asset, lock = spec.quote_asset, quote_e8(price, qty, k)
        else:
            asset, lock = spec.base_asset, qty * spec.unit_to8
        if lock > acct.free(asset):
            raise RestError(-2010, INSUFFICIENT)
        now = self.clock()
        order = self._open(acct.key, spec, req, price=price, qty=qty, tif=req.time_in_force,
                           now=now)
        if req.time_in_force == "FOK" and sum(q for _, q in plan) < qty:
            order.working_time = -1
            self._report(order, "NEW", now)
            self._finish(order, "EXPIRED", now)
            return Placed(order, [], now)
        try:
            acct.lock(asset, lock, now)
        except InsufficientBalance:  # checked above; kept for safety
            raise RestError(-2010, INSUFFICIENT) from None
        order.locked = lock
        self._report(order, "NEW", now)
        self._position(acct, now)
        fills = [self._execute(order, p, q, maker=False, now=now) for p, q in plan]
        if order.remaining > 0:
            if req.time_in_force == "GTC":
                self.resting[spec.symbol][order.order_id] = order
            else:
                self._finish(order, "EXPIRED", now)
        return Placed(order, fills, now)

    def _open(self, key: str, spec: SymbolSpec, req: NewOrder, *, price: int, qty: int,
              tif: str, now: int) -> Order:
        order = Order(
            order_id=self._next_order, account=key, spec=spec,
            client_order_id=req.client_order_id or self._auto_id(), side=req.side,
            type=req.type, time_in_force=tif, price=price, orig_qty=qty,
            orig_quote=req.quote_qty or 0, time=now, stp=req.stp, update_time=now,
            working_time=now,
        )
        self._next_order += 1
        self.orders[order.order_id] = order
        return order

    def _execute(self, order: Order, price: int, qty: int, *, maker: bool, now: int,
                 hold_open: bool = False) -> Fill:
        """One fill: move balances, charge commission, update the order, emit its events."""
        acct = self.accounts[order.account]
        spec = order.spec
        k = spec.tick_to8 * spec.unit_to8
        quote = quote_e8(price, qty, k)
        base = qty * spec.unit_to8
        rate = acct.maker_rate if maker else acct.taker_rate
        if order.buy:
            if order.type == "MARKET":
                acct.debit(spec.quote_asset, quote, now)
            else:  # pay out of the lock taken at the limit price; a better price frees the rest
                release = (quote_e8(order.price, order.remaining, k)
                           - quote_e8(order.price, order.remaining - qty, k))
                acct.spend_locked(spec.quote_asset, release, now)
                order.locked -= release
                if release > quote:
                    acct.credit(spec.quote_asset, release - quote, now)
            fee, fee_asset = commission(base, rate), spec.base_asset
            acct.credit(spec.base_asset, base - fee, now)
        else:
            if order.type == "MARKET":
                acct.debit(spec.base_asset, base, now)
            else:
                acct.spend_locked(spec.base_asset, base, now)
                order.locked -= base
            fee, fee_asset = commission(quote, rate), spec.quote_asset
            acct.credit(spec.quote_asset, quote - fee, now)
        fill = Fill(self._next_trade, order.order_id, spec.symbol, price, qty, quote, fee,
                    fee_asset, now, order.buy, maker)
        self._next_trade += 1
        order.executed += qty
        order.cum_quote += quote
        order.update_time = now
        order.fills.append(fill)
        self.fills[acct.key].append(fill)
        order.status = "FILLED" if order.remaining == 0 and not hold_open else "PARTIALLY_FILLED"
        if not maker:
            self.market.books[spec.symbol].take(not order.buy, price, qty)
        self._report(order, "TRADE", now, fill)
        self._position(acct, now)
        return fill

    def _finish(self, order: Order, status: str, now: int, cancel_client_id: str = "") -> None:
        """CANCELED or EXPIRED: unlock what the rest held, leave the book, tell the stream."""
        acct = self.accounts[order.account]
        if order.locked:
            asset = order.spec.quote_asset if order.buy else order.spec.base_asset
            acct.unlock(asset, order.locked, now)
            order.locked = 0
        order.status = status
        order.update_time = now
        self.resting[order.symbol].pop(order.order_id, None)
        self._report(order, status, now, cancel_client_id=cancel_client_id)
        self._position(acct, now)

    # --- the tape ------------------------------------------------------------------------
    def on_trades(self, symbol: str, prices: Any, qtys: Any) -> int:
        """Fill resting orders the market's new trades crossed; returns the number of fills."""
        book_orders = self.resting.get(symbol)
        if not book_orders:
            return 0
        resting = [Resting(o.order_id, o.buy, o.price, o.remaining)
                   for o in book_orders.values()]
        fills = cross(resting, prices, qtys)
        if not fills:
            return 0
        now = self.clock()
        for oid, _, q in fills:
            order = self.orders[oid]
            self._execute(order, order.price, q, maker=True, now=now)
            if not order.is_open:
                book_orders.pop(oid, None)
        return len(fills)

    # --- cancel and queries --------------------------------------------------------------
    def find(self, key: str, symbol: str, order_id: int | None, client_id: str | None,
             *, open_only: bool = False) -> Order | None:
        """An account's order by id (then checked against client_id if both), or by client id
        (the open one first, else the latest)."""
        if order_id is not None:
            o = self.orders.get(order_id)
            if o is None or o.account != key or o.symbol != symbol:
                return None
            if client_id is not None and o.client_order_id != client_id:
                return None
            return None if open_only and not o.is_open else o
        assert client_id is not None  # nosec B101  # narrows Optional for mypy, not a check
        for o in self.resting[symbol].values():
            if o.account == key and o.client_order_id == client_id:
                return o
        if open_only:
            return None
        for o in reversed(self.orders.values()):
            if o.account == key and o.symbol == symbol and o.client_order_id == client_id:
                return o
        return None

    def cancel(self, key: str, symbol: str, order_id: int | None, client_id: str | None,
               new_client_id: str | None = None, restrictions: str | None = None
               ) -> tuple[Order, str, int]:
        """Cancel an open order: (order, the cancel's client id, transact time); else -2011."""
        order = self.find(key, symbol, order_id, client_id, open_only=True)
        if order is None:
            raise RestError(-2011, "Unknown order sent.")
        if (restrictions == "ONLY_NEW" and order.status != "NEW") or (
                restrictions == "ONLY_PARTIALLY_FILLED" and order.status != "PARTIALLY_FILLED"):
            raise RestError(-2011, "Order was not canceled due to cancel restrictions.")
        now = self.clock()
        cancel_id = new_client_id or self._auto_id()
        self._finish(order, "CANCELED", now, cancel_client_id=cancel_id)
        return order, cancel_id, now

    def open_orders(self, key: str, symbol: str | None = None) -> list[Order]:
        symbols = [symbol] if symbol is not None else list(self.resting)
        out = [o for s in symbols for o in self.resting[s].values() if o.account == key]
        return sorted(out, key=lambda o: o.order_id)

    def all_orders(self, key: str, symbol: str, order_id: int | None, start: int | None,
                   end: int | None, limit: int) -> list[Order]:
        rows = [o for o in self.orders.values() if o.account == key and o.symbol == symbol]
        if order_id is not None:
            return [o for o in rows if o.order_id >= order_id][:limit]
        if start is not None or end is not None:
            rows = [o for o in rows if (start is None or o.time >= start)
                    and (end is None or o.time <= end)]
            return rows[:limit] if start is not None else rows[-limit:]
        return rows[-limit:]

    def my_trades(self, key: str, symbol: str, *, order_id: int | None = None,
                  from_id: int | None = None, start: int | None = None,
                  end: int | None = None, limit: int = 500) -> list[Fill]:
        rows = [f for f in self.fills[key] if f.symbol == symbol]
        if order_id is not None:
            rows = [f for f in rows if f.order_id == order_id]
        if from_id is not None:
            return [f for f in rows if f.trade_id >= from_id][:limit]
        if start is not None or end is not None:
            rows = [f for f in rows if (start is None or f.time >= start)
                    and (end is None or f.time <= end)]
            return rows[:limit] if start is not None else rows[-limit:]
        return rows[-limit:]

    def account_info(self, key: str, *, omit_zero: bool = False) -> dict[str, Any]:
        """GET /api/v3/account body."""
        return self.accounts[key].info(self.assets, omit_zero=omit_zero)

    def commission_rates(self, key: str) -> dict[str, Any]:
        """POST /api/v3/order/test?computeCommissionRates=true body."""
        return self.accounts[key].commission_rates()

    # --- ground truth (tests) ----------------------------------------------------------------
    def order_rows(self, symbol: str | None = None, key: str | None = None
                   ) -> list[dict[str, Any]]:
        """Every order ever accepted, in the query-order format, oldest first."""
        return [o.query() for o in self.orders.values()
                if (symbol is None or o.symbol == symbol) and (key is None or o.account == key)]

    def trade_rows(self, key: str | None = None, symbol: str | None = None
                   ) -> list[dict[str, Any]]:
        keys = [key] if key is not None else list(self.fills)
        rows = [f for k in keys for f in self.fills.get(k, [])
                if symbol is None or f.symbol == symbol]
        return [f.row(self.specs[f.symbol]) for f in sorted(rows, key=lambda f: f.trade_id)]

    def balances(self, key: str) -> dict[str, dict[str, str]]:
        acct = self.accounts[key]
        return {r["asset"]: {"free": r["free"], "locked": r["locked"]}
                for r in acct.rows(self.assets)}

    # --- events --------------------------------------------------------------------------
    def _report(self, order: Order, exec_type: str, now: int, fill: Fill | None = None,
                cancel_client_id: str = "") -> None:
        self._seq += 1
        if self.emit is not None:
            self.emit(order.account, order.execution_report(exec_type, now, self._seq, fill,
                                                             cancel_client_id))

    def _position(self, acct: Account, now: int) -> None:
        assets = acct.take_touched()
        if assets and self.emit is not None:
            self.emit(acct.key, {
                "e": "outboundAccountPosition",
                "E": now,
                "u": acct.update_time,
                "B": [{"a": a, "f": fmt8(acct.balance(a).free), "l": fmt8(acct.balance(a).locked)}
                      for a in assets],
            })

    def _auto_id(self) -> str:
        """A 22-character client order id like Binance generates, deterministic per seed."""
        self._ids += 1
        h = (mix64(self.seed, self._ids, 0x5A17) << 64) | mix64(self.seed, self._ids, 0xC0DE)
        chars = []
        for _ in range(22):
            h, r = divmod(h, len(_ALPHABET))
            chars.append(_ALPHABET[r])
        return "".join(chars)
