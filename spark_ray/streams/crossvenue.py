"""The cross-exchange view: each asset's best bid and offer across venues, in one reference quote.

Several fabrics (one per exchange, ``spark-ray streams up --exchange binance,btcturk``) each keep
the best bid/offer per symbol; this module decides what they add up to. Plain Python (no Ray):
the fabric supervisors and the ``crossvenue`` actor are the shell.

- **Assets.** A venue's symbol maps to a canonical pair by the venue's adapter
  (:meth:`spark_ray.adapters.base.Adapter.split_symbol`): ``BTCUSDT`` -> ``BTC/USDT``,
  ``BTCTRY`` -> ``BTC/TRY``. Quotes of one base asset are compared across venues.
- **Quotes.** A symbol's quote is the normalizer's best bid/offer (``bookTicker``, ``depth``,
  or any other book source the venue has); a symbol with no book yet shows its last trade price
  as both bid and ask, marked ``source: last_trade``. :class:`QuoteTracker` stamps each quote
  with when a poll first saw it change; a quote older than ``max_age_s`` is excluded from the
  asset's view, and the view says so (``excluded``).
- **Conversion.** Prices in another quote currency ``C`` are divided by a rate ``C`` per one
  reference unit (``USDTTRY`` = 34.2 TRY per USDT: 2,052,000 TRY / 34.2 = 60,000 USDT). The rate
  is stated in every output (:class:`RateSpec`): a fixed rate from the command line or config
  (``TRY=34.2``), or the mid of a named venue's symbol (``TRY=btcturk:USDTTRY``); without
  either, the first venue carrying a symbol that pairs ``C`` with the reference (``USDTTRY`` or
  ``TRYUSDT``) is used, and named. A rate whose quote is stale converts nothing (said so).
- **Metrics** (basis points: 1 bp = 0.01 %, https://www.investopedia.com/terms/b/basispoint.asp;
  mid = (bid + ask) / 2):
  ``spread_bps`` = (best ask - best bid) / ((best ask + best bid) / 2) x 10,000 over the best
  bid and best ask across venues (negative: the market is crossed, a venue bids above another's
  offer, before fees); ``basis_bps[v]`` = (mid_v / mid_ref - 1) x 10,000 against the reference
  venue (the first venue, in the order given, that quotes the asset).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

LAST_TRADE = "last_trade"
BPS = 10_000.0


@dataclass(frozen=True)
class Quote:
    """One venue's quote for one symbol, as the view compares them."""

    venue: str
    symbol: str
    base: str
    quote: str
    bid: float
    ask: float
    source: str  # bookTicker | depth | ticker | last_trade
    age_s: float

    @property
    def pair(self) -> str:
        return f"{self.base}/{self.quote}"


@dataclass(frozen=True)
class RateSpec:
    """How prices in ``currency`` become reference-quote prices: a fixed number, or the mid of
    ``symbol`` on ``venue``. ``TRY=34.2`` or ``TRY=btcturk:USDTTRY`` (:func:`parse_rate`)."""

    currency: str
    fixed: float | None = None
    venue: str | None = None
    symbol: str | None = None

    def text(self) -> str:
        if self.fixed is not None:
            return f"{self.currency}={self.fixed:g}"
        return f"{self.currency}={self.venue}:{self.symbol}"


def parse_rate(raw: str, venues: Iterable[str]) -> RateSpec:
    """``"TRY=34.2"`` (fixed, > 0) or ``"TRY=btcturk:USDTTRY"`` (that venue's mid, ``venue``
    one of ``venues``); ValueError says what is wrong."""
    cur, sep, rest = raw.strip().partition("=")
    cur = cur.strip().upper()
    if not sep or not cur.isalnum() or not rest.strip():
        raise ValueError(f"{raw!r}: CURRENCY=RATE or CURRENCY=EXCHANGE:SYMBOL, e.g. TRY=34.2 or "
                         "TRY=btcturk:USDTTRY")
    rest = rest.strip()
    if ":" in rest:
        venue, _, symbol = rest.partition(":")
        known = list(venues)
        if venue not in known:
            raise ValueError(f"{raw!r}: exchange {venue!r} is not one of {', '.join(known)}")
        if not symbol.strip().isalnum():
            raise ValueError(f"{raw!r}: symbol {symbol!r} must be letters or digits")
        return RateSpec(cur, venue=venue, symbol=symbol.strip().upper())
    try:
        value = float(rest)
    except ValueError:
        raise ValueError(f"{raw!r}: {rest!r} is neither a number nor EXCHANGE:SYMBOL") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{raw!r}: the rate must be a positive number")
    return RateSpec(cur, fixed=value)


@dataclass(frozen=True)
class Rate:
    """A resolved rate: ``value`` units of ``currency`` per reference unit (None: none usable,
    ``reason`` says why), and where it came from."""

    currency: str
    reference: str
    value: float | None
    source: str
    age_s: float | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"currency": self.currency, "reference": self.reference, "value": self.value,
                "source": self.source, "age_s": self.age_s, "reason": self.reason}


def _mid(q: Quote) -> float:
    return (q.bid + q.ask) / 2


def _rate_from(q: Quote, currency: str, reference: str, max_age_s: float,
               origin: str) -> Rate:
    source = f"{q.venue} {q.symbol} mid ({q.source}){origin}"
    if q.age_s > max_age_s:
        return Rate(currency, reference, None, source, round(q.age_s, 3),
                    f"{q.venue} {q.symbol} stale: {q.age_s:.1f} s > {max_age_s:g} s")
    mid = _mid(q)
    if not mid > 0:
        return Rate(currency, reference, None, source, round(q.age_s, 3),
                    f"{q.venue} {q.symbol}: no positive mid")
    value = mid if q.base == reference else 1.0 / mid  # USDT/TRY: TRY per USDT is the mid
    return Rate(currency, reference, value, source, round(q.age_s, 3))


def resolve_rate(currency: str, reference: str, quotes: list[Quote],
                 spec: RateSpec | None, max_age_s: float) -> Rate:
    """The rate converting ``currency`` prices into ``reference`` prices (module docstring)."""
    if spec is not None and spec.fixed is not None:
        return Rate(currency, reference, spec.fixed,
                    f"fixed {spec.fixed:g} {currency} per {reference} (configured)")
    if spec is not None:
        q = next((q for q in quotes if q.venue == spec.venue and q.symbol == spec.symbol), None)
        if q is None:
            return Rate(currency, reference, None, f"{spec.venue} {spec.symbol} mid",
                        reason=f"{spec.venue} {spec.symbol}: no quote yet")
        if {q.base, q.quote} != {currency, reference}:
            return Rate(currency, reference, None, f"{spec.venue} {spec.symbol} mid",
                        reason=f"{spec.venue} {spec.symbol} is {q.pair}, not a "
                               f"{reference}/{currency} pair")
        return _rate_from(q, currency, reference, max_age_s, " (configured)")
    for q in quotes:  # venue order: the first venue's pair wins
        if {q.base, q.quote} == {currency, reference}:
            return _rate_from(q, currency, reference, max_age_s, "")
    return Rate(currency, reference, None, "none",
                reason=f"no {reference}/{currency} symbol carried and no rate given "
                       f"(--cross-rate {currency}=RATE or {currency}=EXCHANGE:SYMBOL)")


def build_view(quotes: list[Quote], venues: list[str], reference: str,
               rates: dict[str, RateSpec] | None = None,
               max_age_s: float = 10.0) -> dict[str, Any]:
    """The cross-venue view as plain data (``streams status --json`` prints it as is).

    ``venues`` orders the venues (the first to quote an asset is its basis reference);
    ``rates`` overrides how a quote currency converts (else found among the quotes)."""
    rates = rates or {}
    order = {v: i for i, v in enumerate(venues)}
    quotes = sorted(quotes, key=lambda q: (order.get(q.venue, len(order)), q.symbol))
    resolved: dict[str, Rate] = {}

    def rate_for(cur: str) -> Rate:
        if cur not in resolved:
            resolved[cur] = resolve_rate(cur, reference, quotes, rates.get(cur), max_age_s)
        return resolved[cur]

    for cur in rates:
        rate_for(cur)
    assets: dict[str, dict[str, Any]] = {}
    for q in quotes:
        if q.base == reference:
            continue  # the reference itself (a USDT/TRY book is a rate, not an asset)
        a = assets.setdefault(q.base, {"asset": q.base, "quote": reference, "venues": {},
                                       "excluded": {}})
        if q.venue in a["venues"]:
            continue  # one quote per venue and asset: the first in symbol order
        why = _exclusion(q, reference, max_age_s, rate_for)
        if why is not None:
            a["excluded"].setdefault(q.venue, f"{q.symbol}: {why}")
            continue
        a["excluded"].pop(q.venue, None)
        if q.quote == reference:
            rate, rate_source = 1.0, f"native {reference}"
        else:
            r = rate_for(q.quote)
            assert r.value is not None  # nosec B101  # _exclusion said so; narrows for mypy
            rate, rate_source = r.value, f"/ {r.value:.6g} {q.quote} per {reference}: {r.source}"
        bid, ask = q.bid / rate, q.ask / rate
        a["venues"][q.venue] = {
            "symbol": q.symbol, "pair": q.pair, "bid": bid, "ask": ask, "mid": (bid + ask) / 2,
            "native_bid": q.bid, "native_ask": q.ask, "source": q.source,
            "age_s": round(q.age_s, 3), "rate": rate, "rate_source": rate_source}
    for a in assets.values():
        _summarize(a)
    return {"reference_quote": reference, "max_age_s": max_age_s, "venues": list(venues),
            "rates": {c: r.as_dict() for c, r in sorted(resolved.items())},
            "assets": dict(sorted(assets.items()))}


def _exclusion(q: Quote, reference: str, max_age_s: float,
               rate_for: Callable[[str], Rate]) -> str | None:
    if q.age_s > max_age_s:
        what = "last trade" if q.source == LAST_TRADE else "quote"
        return f"stale: {what} {q.age_s:.1f} s old > {max_age_s:g} s"
    if not (q.bid > 0 and q.ask > 0 and math.isfinite(q.bid) and math.isfinite(q.ask)):
        return "no positive bid and ask"
    if q.quote != reference:
        r = rate_for(q.quote)
        if r.value is None:
            return f"no {q.quote}->{reference} rate: {r.reason}"
    return None


def _summarize(a: dict[str, Any]) -> None:
    v = a["venues"]
    a["best_bid"] = a["best_ask"] = a["spread_bps"] = a["reference_venue"] = None
    a["basis_bps"] = {}
    if not v:
        return
    bid_venue = max(v, key=lambda k: v[k]["bid"])  # dicts keep venue order: ties go first
    ask_venue = min(v, key=lambda k: v[k]["ask"])
    bid, ask = v[bid_venue]["bid"], v[ask_venue]["ask"]
    a["best_bid"] = {"venue": bid_venue, "price": bid}
    a["best_ask"] = {"venue": ask_venue, "price": ask}
    a["spread_bps"] = (ask - bid) / ((ask + bid) / 2) * BPS
    ref = next(iter(v))
    a["reference_venue"] = ref
    a["basis_bps"] = {k: (x["mid"] / v[ref]["mid"] - 1) * BPS for k, x in v.items() if k != ref}


def format_lines(view: dict[str, Any]) -> list[str]:
    """One line per asset for people (``streams status``, the demo)."""
    ref = view["reference_quote"]
    out = []
    for asset, a in view["assets"].items():
        parts = []
        for venue, x in a["venues"].items():
            conv = "" if x["rate"] == 1.0 else f", {x['rate_source']}"
            parts.append(f"{venue} {x['symbol']} {x['bid']:.2f}/{x['ask']:.2f} "
                         f"({x['source']}, {x['age_s']:.1f} s{conv})")
        parts += [f"{venue} excluded ({why})" for venue, why in a["excluded"].items()]
        line = f"{asset}/{ref}: " + "; ".join(parts)
        if a["best_bid"] is not None:
            line += (f" | best bid {a['best_bid']['venue']} {a['best_bid']['price']:.2f}, "
                     f"best ask {a['best_ask']['venue']} {a['best_ask']['price']:.2f}, "
                     f"spread {a['spread_bps']:.2f} bps")
            line += "".join(f", basis {k} {b:+.2f} bps vs {a['reference_venue']}"
                            for k, b in a["basis_bps"].items())
        out.append(line)
    return out


class QuoteTracker:
    """Per symbol of one venue: the latest quote a poll returned and when a poll first saw it
    change (its age; a quote nobody updates grows old and drops out of the view).

    A poll entry is ``{"best": {...} | None, "last_trade": {...} | None}``: ``best`` as the
    normalizer keeps it (``source``, ``update_id``, ``bid_price``, ``ask_price``, ...),
    ``last_trade`` as ``{"price", "trade_id", "seen_ms"}``. The book wins over the last trade."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[tuple[Any, ...], float, dict[str, Any]]] = {}

    def update(self, polled: dict[str, dict[str, Any]], now_s: float) -> None:
        for sym, entry in polled.items():
            q = _quote_of(entry)
            if q is None:
                continue
            sig = (q["source"], q["id"], q["bid"], q["ask"])
            prev = self._seen.get(sym)
            changed = prev is None or prev[0] != sig
            self._seen[sym] = (sig, now_s if changed else prev[1], q)  # type: ignore[index]

    def snapshot(self, now_s: float) -> dict[str, dict[str, Any]]:
        """Per symbol ``{"bid", "ask", "source", "age_s"}`` (plain data for the actor)."""
        return {sym: {"bid": q["bid"], "ask": q["ask"], "source": q["source"],
                      "age_s": round(max(0.0, now_s - since), 3)}
                for sym, (_, since, q) in sorted(self._seen.items())}


def _quote_of(entry: dict[str, Any]) -> dict[str, Any] | None:
    best = entry.get("best")
    if best and best.get("bid_price") is not None and best.get("ask_price") is not None:
        return {"source": str(best.get("source", "book")), "id": best.get("update_id"),
                "bid": float(best["bid_price"]), "ask": float(best["ask_price"])}
    last = entry.get("last_trade")
    if last and last.get("price") is not None:
        p = float(last["price"])
        return {"source": LAST_TRADE, "id": last.get("trade_id"), "bid": p, "ask": p}
    return None


def quotes_from_snapshot(venue: str, snapshot: dict[str, dict[str, Any]],
                         split: Callable[[str], tuple[str, str]]) -> tuple[list[Quote],
                                                                             dict[str, str]]:
    """A venue's :meth:`QuoteTracker.snapshot` as :class:`Quote` s, ``split`` mapping a symbol
    to (base, quote) (the venue adapter's ``split_symbol``). Symbols it cannot split come back
    in the second value with the reason (never guessed)."""
    out: list[Quote] = []
    bad: dict[str, str] = {}
    for sym, s in snapshot.items():
        try:
            base, quote = split(sym)
        except ValueError as e:
            bad[sym] = str(e)
            continue
        out.append(Quote(venue, sym, base, quote, float(s["bid"]), float(s["ask"]),
                         str(s["source"]), float(s["age_s"])))
    return out, bad
