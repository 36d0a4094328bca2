"""The cross-venue core on worked numbers: asset mapping by the adapters, conversion by a stated
rate, best bid/offer across venues, spread and basis in bps, staleness, quote tracking."""

from __future__ import annotations

import pytest

from spark_ray.adapters.registry import get_adapter
from spark_ray.streams.crossvenue import (
    LAST_TRADE,
    Quote,
    QuoteTracker,
    RateSpec,
    build_view,
    format_lines,
    parse_rate,
    quotes_from_snapshot,
)

VENUES = ["binance", "btcturk"]


def q(venue: str, symbol: str, bid: float, ask: float, age: float = 0.5,
      source: str = "bookTicker") -> Quote:
    base, quote = get_adapter(venue).split_symbol(symbol)
    return Quote(venue, symbol, base, quote, bid, ask, source, age)


def test_adapters_split_symbols_into_canonical_pairs() -> None:
    binance, btcturk = get_adapter("binance"), get_adapter("btcturk")
    assert binance.split_symbol("BTCUSDT") == ("BTC", "USDT")
    assert binance.split_symbol("ETHBTC") == ("ETH", "BTC")
    assert binance.split_symbol("BTCFDUSD") == ("BTC", "FDUSD")  # longest quote first
    assert btcturk.split_symbol("BTCTRY") == ("BTC", "TRY")
    assert btcturk.split_symbol("USDTTRY") == ("USDT", "TRY")
    assert btcturk.split_symbol("btc_try") == ("BTC", "TRY")
    with pytest.raises(ValueError, match="XYZABC"):
        binance.split_symbol("XYZABC")


def test_worked_example_btc_across_binance_and_btcturk() -> None:
    """BTCUSDT 59,990/60,010 on Binance; BTCTRY 2,050,000/2,052,000 on BTCTurk converted by
    BTCTurk's USDTTRY mid (34.19 + 34.21) / 2 = 34.20 TRY per USDT: 59,941.52/60,000.00 USDT.
    Best bid 59,990 (Binance), best ask 60,000 (BTCTurk): spread 10 / 59,995 = 1.6668 bps.
    Mids 60,000 and 59,970.76: BTCTurk's basis vs Binance (59,970.76 / 60,000 - 1) = -4.873 bps.
    """
    view = build_view([q("binance", "BTCUSDT", 59_990, 60_010),
                       q("btcturk", "BTCTRY", 2_050_000, 2_052_000),
                       q("btcturk", "USDTTRY", 34.19, 34.21)], VENUES, "USDT")
    rate = view["rates"]["TRY"]
    assert rate["value"] == pytest.approx(34.20)
    assert rate["source"] == "btcturk USDTTRY mid (bookTicker)"
    btc = view["assets"]["BTC"]
    assert list(view["assets"]) == ["BTC"]  # USDT/TRY is the rate, not an asset
    bt = btc["venues"]["btcturk"]
    assert bt["bid"] == pytest.approx(59_941.5205, abs=1e-3)
    assert bt["ask"] == pytest.approx(60_000.0, abs=1e-6)
    assert bt["pair"] == "BTC/TRY" and bt["native_bid"] == 2_050_000
    assert "34.2 TRY per USDT: btcturk USDTTRY mid" in bt["rate_source"]
    assert btc["venues"]["binance"]["rate_source"] == "native USDT"
    assert btc["best_bid"] == {"venue": "binance", "price": 59_990}
    assert btc["best_ask"]["venue"] == "btcturk"
    assert btc["best_ask"]["price"] == pytest.approx(60_000.0)
    assert btc["spread_bps"] == pytest.approx(1.66681, abs=1e-4)
    assert btc["reference_venue"] == "binance"
    assert btc["basis_bps"]["btcturk"] == pytest.approx(-4.8733, abs=1e-3)
    (line,) = format_lines(view)
    assert "best bid binance 59990.00" in line and "spread 1.67 bps" in line
    assert "basis btcturk -4.87 bps vs binance" in line


def test_crossed_market_has_a_negative_spread() -> None:
    """Binance bids 60,100 while BTCTurk offers 2,052,000 / 34.2 = 60,000: crossed by 100,
    spread = -100 / 60,050 = -16.653 bps."""
    view = build_view([q("binance", "BTCUSDT", 60_100, 60_110),
                       q("btcturk", "BTCTRY", 2_050_000, 2_052_000)], VENUES, "USDT",
                      rates={"TRY": RateSpec("TRY", fixed=34.2)})
    btc = view["assets"]["BTC"]
    assert btc["spread_bps"] == pytest.approx(-16.6528, abs=1e-3)
    assert view["rates"]["TRY"]["source"] == "fixed 34.2 TRY per USDT (configured)"


def test_a_fixed_rate_overrides_the_book_and_is_named() -> None:
    view = build_view([q("binance", "BTCUSDT", 59_990, 60_010),
                       q("btcturk", "BTCTRY", 2_050_000, 2_052_000),
                       q("btcturk", "USDTTRY", 34.19, 34.21)], VENUES, "USDT",
                      rates={"TRY": parse_rate("TRY=41", VENUES)})
    bt = view["assets"]["BTC"]["venues"]["btcturk"]
    assert bt["ask"] == pytest.approx(2_052_000 / 41)
    assert "fixed 41 TRY per USDT" in bt["rate_source"]


def test_an_inverse_pair_gives_the_reciprocal_rate() -> None:
    """TRYUSDT at 0.025 USDT per TRY is 40 TRY per USDT: 2,000,000 TRY -> 50,000 USDT."""
    view = build_view([q("binance", "TRYUSDT", 0.025, 0.025),
                       q("btcturk", "BTCTRY", 2_000_000, 2_000_000)], VENUES, "USDT")
    assert view["rates"]["TRY"]["value"] == pytest.approx(40.0)
    assert view["assets"]["BTC"]["venues"]["btcturk"]["bid"] == pytest.approx(50_000.0)


def test_stale_quotes_are_excluded_and_said_so() -> None:
    view = build_view([q("binance", "BTCUSDT", 59_990, 60_010),
                       q("btcturk", "BTCTRY", 2_050_000, 2_052_000, age=12.0,
                         source=LAST_TRADE),
                       q("btcturk", "USDTTRY", 34.19, 34.21)], VENUES, "USDT", max_age_s=10)
    btc = view["assets"]["BTC"]
    assert list(btc["venues"]) == ["binance"]
    assert btc["excluded"]["btcturk"] == "BTCTRY: stale: last trade 12.0 s old > 10 s"
    assert btc["basis_bps"] == {}
    assert btc["spread_bps"] == pytest.approx(20 / 60_000 * 10_000)  # one venue: its own


def test_a_stale_rate_converts_nothing() -> None:
    view = build_view([q("binance", "BTCUSDT", 59_990, 60_010),
                       q("btcturk", "BTCTRY", 2_050_000, 2_052_000),
                       q("btcturk", "USDTTRY", 34.19, 34.21, age=30.0)], VENUES, "USDT",
                      max_age_s=10)
    why = view["assets"]["BTC"]["excluded"]["btcturk"]
    assert why == "BTCTRY: no TRY->USDT rate: btcturk USDTTRY stale: 30.0 s > 10 s"
    assert view["rates"]["TRY"]["value"] is None


def test_no_rate_at_all_is_named_with_the_flag() -> None:
    view = build_view([q("binance", "BTCUSDT", 59_990, 60_010),
                       q("btcturk", "BTCTRY", 2_050_000, 2_052_000)], VENUES, "USDT")
    why = view["assets"]["BTC"]["excluded"]["btcturk"]
    assert "no USDT/TRY symbol carried" in why and "--cross-rate TRY=" in why


def test_a_configured_rate_symbol_must_pair_the_currency_with_the_reference() -> None:
    view = build_view([q("binance", "BTCUSDT", 59_990, 60_010),
                       q("btcturk", "BTCTRY", 2_050_000, 2_052_000)], VENUES, "USDT",
                      rates={"TRY": parse_rate("TRY=btcturk:BTCTRY", VENUES)})
    assert "is BTC/TRY, not a USDT/TRY pair" in view["assets"]["BTC"]["excluded"]["btcturk"]


@pytest.mark.parametrize("raw, msg", [
    ("TRY", "CURRENCY=RATE"), ("TRY=", "CURRENCY=RATE"), ("TRY=-3", "positive"),
    ("TRY=abc", "neither a number"), ("TRY=kraken:USDTTRY", "not one of binance, btcturk"),
    ("TRY=nan", "positive"),
])
def test_parse_rate_rejects_malformed(raw: str, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        parse_rate(raw, VENUES)


def test_quote_tracker_ages_a_quote_from_its_last_change() -> None:
    t = QuoteTracker()
    best = {"source": "bookTicker", "update_id": 7, "bid_price": 10.0, "ask_price": 11.0}
    t.update({"BTCUSDT": {"best": best, "last_trade": None},
              "BTCTRY": {"best": None, "last_trade": {"price": 2e6, "trade_id": 3}},
              "ETHTRY": {"best": None, "last_trade": None}}, now_s=100.0)
    t.update({"BTCUSDT": {"best": best, "last_trade": None},  # unchanged: ages
              "BTCTRY": {"best": None, "last_trade": {"price": 2.1e6, "trade_id": 4}}},
             now_s=103.0)
    snap = t.snapshot(now_s=104.0)
    assert snap == {
        "BTCTRY": {"bid": 2.1e6, "ask": 2.1e6, "source": LAST_TRADE, "age_s": 1.0},
        "BTCUSDT": {"bid": 10.0, "ask": 11.0, "source": "bookTicker", "age_s": 4.0},
    }
    # a book appearing later wins over the last trade
    t.update({"BTCTRY": {"best": {"source": "ticker", "update_id": 1, "bid_price": 2.0e6,
                                  "ask_price": 2.2e6},
                         "last_trade": {"price": 2.1e6, "trade_id": 4}}}, now_s=105.0)
    assert t.snapshot(105.0)["BTCTRY"]["source"] == "ticker"


def test_quotes_from_snapshot_splits_by_the_adapter_and_names_what_it_cannot() -> None:
    snap = {"BTCTRY": {"bid": 1.0, "ask": 2.0, "source": LAST_TRADE, "age_s": 0.2},
            "QQQQQQ": {"bid": 1.0, "ask": 2.0, "source": LAST_TRADE, "age_s": 0.2}}
    quotes, bad = quotes_from_snapshot("btcturk", snap, get_adapter("btcturk").split_symbol)
    assert [(x.base, x.quote, x.source) for x in quotes] == [("BTC", "TRY", LAST_TRADE)]
    assert list(bad) == ["QQQQQQ"]
