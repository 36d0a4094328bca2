"""The fill conventions in words: copied into every backtest report, so a reader of the report
knows exactly how its fills were simulated (the same rules paper trading fills by)."""

from __future__ import annotations

from typing import Any

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
    "sessions": "an exchange with a trading calendar (BIST: exchange_calendars XIST) trades "
                "only inside its sessions: bars outside a session are dropped before the run "
                "(the market was closed: no decision, no fill), so an order decided on a "
                "session's last bar fills on the next session's first bar (a market order at "
                "its open), never overnight; backtrader likewise fills a market order at the "
                "next bar's open, https://www.backtrader.com/docu/order-creation-execution/"
                "order-creation-execution/ ('Market ... the opening price of the next bar'). "
                "Venues that never close (crypto) trade every bar",
    "annualization": "365 days a year, 24/7, scaled by the bar interval; an exchange with a "
                     "trading calendar: its trading days a year (XIST about 250) times the bars "
                     "a session holds; volatility, Sharpe and Sortino scale by sqrt(bars a year) "
                     "(IID returns, Lo 2002, The Statistics of Sharpe Ratios)",
}


def conventions(annualization: str | None = None, sessions: str | None = None
                ) -> dict[str, Any]:
    """The conventions with what one run actually used: its annualization (e.g. "XIST trading
    calendar: 250.4 trading days a year x 477.10 1m bars a session = ...") and its sessions."""
    out: dict[str, Any] = dict(CONVENTIONS)
    if annualization:
        out["annualization"] = annualization
    if sessions:
        out["sessions"] = sessions
    return out
