"""The signal inventory: every signal the platform computes, with its family, inputs, the
horizon it is meant for and one line on what it says. ``spark-ray signals ls`` prints it; the
README's table is generated from it. A signal is listed only once it has both runtimes (batch
and incremental, :mod:`spark_ray.signals.features`) and passes their parity and no-look-ahead
tests."""

from __future__ import annotations

from dataclasses import dataclass

from spark_ray.signals.features import (
    BookImbalance,
    CrossVenueSpread,
    EmaDeviation,
    Feature,
    FlowImbalance,
    MicropriceDeviation,
    QuotedSpread,
    RealizedVolatility,
    SignedVolume,
    TopDepth,
)


@dataclass(frozen=True)
class Signal:
    name: str
    family: str
    inputs: str
    horizon: str
    description: str
    feature: Feature

    def row(self) -> dict[str, str]:
        return {"name": self.name, "family": self.family, "inputs": self.inputs,
                "horizon": self.horizon, "description": self.description}


def _entries() -> list[Signal]:
    trades = "trades: time, price, qty, taker side"
    book = "book: best bid/ask and sizes as of the trade's receive time"
    specs: list[tuple[Feature, str, str, str, str]] = [
        (SignedVolume(1_000), "trade flow", trades, "seconds",
         "taker-buy minus taker-sell quantity in the last second: who is pushing now"),
        (SignedVolume(60_000), "trade flow", trades, "minutes",
         "signed volume over the last minute"),
        (FlowImbalance(60_000), "trade flow", trades, "minutes",
         "signed over total volume in the last minute, in [-1, 1]: flow independent of size"),
        (EmaDeviation(50), "trend", "trades: price", "minutes",
         "price over its 50-trade EMA minus one: stretch from the recent mean"),
        (RealizedVolatility(50), "volatility", "trades: price", "minutes",
         "standard deviation of the last 50 trade-to-trade log returns"),
        (BookImbalance(), "order book", book, "seconds",
         "(bid size - ask size) / (bid size + ask size) at the best levels: queue pressure"),
        (MicropriceDeviation(), "order book", book + "; trades: price", "seconds",
         "trade price over the size-weighted mid minus one: where the trade hit vs fair value"),
        (QuotedSpread(), "order book", book, "seconds",
         "best ask minus best bid in basis points of the mid: cost to cross, thin-book alarm"),
        (TopDepth(), "order book", book, "seconds",
         "quote-currency size resting at the best bid and ask: depth a market order meets"),
    ]
    return [Signal(f.name, fam, inp, hor, desc, f) for f, fam, inp, hor, desc in specs]


XVENUE = "xvenue_spread_bps_"
TEMPLATE = "<exchange>"


def _xvenue(exchange: str) -> Signal:
    return Signal(XVENUE + exchange, "cross-exchange",
                  f"trades; book: best bid/ask of the same symbol on {exchange}", "seconds",
                  f"trade price over the symbol's mid on {exchange} minus one, in bps: this "
                  "venue against the other", CrossVenueSpread(exchange))


# One entry per family member; the cross-exchange spread is listed once, as a template, and
# named per reference exchange (``xvenue_spread_bps_btcturk``): which exchanges there are is
# the adapters' business and which have a book is the lake's (see signals.source.usable).
INVENTORY: tuple[Signal, ...] = (*_entries(), _xvenue(TEMPLATE))
# The signals that read trades alone: what a lake without a recorded book (the real Binance
# samples) can give.
TRADE_SIGNALS: tuple[Signal, ...] = tuple(s for s in INVENTORY if not s.feature.rowwise)


def signal(name: str) -> Signal:
    """One signal by name; an unknown name lists the known ones."""
    for s in INVENTORY:
        if s.name == name and TEMPLATE not in name:
            return s
    if name.startswith(XVENUE) and TEMPLATE not in name:
        exchange = name[len(XVENUE):]
        if exchange.isidentifier() and exchange.islower():
            return _xvenue(exchange)
    if TEMPLATE in name:
        raise KeyError(f"{name!r} is a template: name the reference exchange, e.g. "
                       f"{XVENUE}btcturk")
    raise KeyError(f"unknown signal {name!r}; known: {', '.join(s.name for s in INVENTORY)}")


# What a served model adds beside the features it reads (spark_ray.signals.live.SCORE): a
# signal of the "model output" family, published with them to the executors.
MODEL_OUTPUTS: tuple[dict[str, str], ...] = (
    {"name": "p_up", "family": "model output",
     "inputs": "an approved model (signals train, review, approve) and the features it reads",
     "horizon": "the model's",
     "description": "the model's probability of an up label over its horizon: the upper "
                    "barrier touched first, or a rise at the end (triple-barrier)"},
)


def rows() -> list[dict[str, str]]:
    """Every listed signal: the features, then the model outputs."""
    return [s.row() for s in INVENTORY] + [dict(r) for r in MODEL_OUTPUTS]


def table(signals: tuple[Signal, ...] | None = None) -> str:
    """The inventory (with the model outputs, unless ``signals`` are given) as a text table."""
    cols = ("name", "family", "horizon", "description")
    listed = [s.row() for s in signals] if signals is not None else rows()
    width = {c: max(len(c), *(len(r[c]) for r in listed)) for c in cols[:-1]}
    head = "  ".join(c.upper().ljust(width[c]) for c in cols[:-1]) + "  DESCRIPTION"
    lines = [head] + ["  ".join(r[c].ljust(width[c]) for c in cols[:-1]) + "  " +
                      r["description"] for r in listed]
    return "\n".join(lines)
