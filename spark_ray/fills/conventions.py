"""The fill conventions in words: copied into every backtest report, so a reader of the report
knows exactly how its fills were simulated (the same rules paper trading fills by)."""

from __future__ import annotations

CONVENTIONS = {
    "decision": "strategies decide on bar t after its close; no order acts on bar t itself",
    "market": "a market order decided on bar t fills at bar t+1's open (plus slippage)",
    "limit": "a limit order fills on the first later bar whose range reaches it (buy: low <= "
             "limit; sell: high >= limit), at the better of the limit and the open (a bar that "
             "gaps through fills at its open); maker fee",
    "stop": "a stop order triggers on the first later bar whose range reaches it (buy: high >= "
            "stop; sell: low <= stop) and fills at the stop, or at the open when the bar gaps "
            "through it (the worse price: you cannot sell above a market that opened below "
            "your stop); plus slippage; taker fee",
    "same_bar": "when a stop and a limit of one position are both reachable within one bar, the "
                "stop is assumed to fill first (conservative); orders are processed market, "
                "stop, limit",
    "fees": "basis points of notional: taker for market and stop orders, maker for limits",
    "slippage": "adverse, on market and stop fills: fixed bps of price, or a fraction of the "
                "bar's high-low range",
    "account": "spot: no shorting or leverage; buys are capped by cash (fees included), sells "
               "by the position; quantities are fractional unless a lot step is given",
    "filters": "with a lot step the quantity is rounded down to it; an order below the minimum "
               "notional is rejected",
    "end": "positions still open at the end are marked to market at the last close, reported "
           "as open, and not counted as closed trades",
    "annualization": "365 days a year, 24/7, scaled by the bar interval",
}
