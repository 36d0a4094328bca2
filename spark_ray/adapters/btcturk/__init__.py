"""BTCTurk: the public WebSocket feed (``websocket.py``) and public REST (``rest.py``).

What BTCTurk offers here: over WebSocket, trades (channel ``trade``), the order book
(``depth``: channel ``obdiff``, a full book on joining then change sets) and the best bid/offer
(``ticker``); over REST, the latest <= 50 trades, order book snapshots and candle history from
its graph API (``spark-ray data fetch --exchange btcturk``); TRY-quoted pairs mapped to our
symbols (``BTC_TRY`` / ``BTCTRY``). Its trade ids are not one contiguous sequence per pair and
its REST trades cannot be paged by id, so the fabric detects no trade gaps for it: what a
disconnect missed comes back with the recent-trades list (421) BTCTurk sends on every join, and
is deduplicated; frames dropped mid-stream come back from a poll of its REST latest-trades page
(``latest_trades_poll_ms``). A book out of sync is re-joined (``book_from_stream``), no REST
snapshot.
"""

from __future__ import annotations

from typing import Any, ClassVar

from spark_ray.adapters.base import (
    Adapter,
    Capabilities,
    ControlKind,
    FrameParser,
    KlineHistory,
    MarketRest,
)
from spark_ray.adapters.btcturk import rest, websocket
from spark_ray.adapters.events import TradeCols

DEFAULT_WS_URL = "wss://ws-feed-pro.btcturk.com"


class BTCTurkAdapter(Adapter):
    name: ClassVar[str] = "btcturk"
    title: ClassVar[str] = "BTCTurk"
    default_ws_url: ClassVar[str] = DEFAULT_WS_URL
    default_rest_url: ClassVar[str | None] = rest.DEFAULT_REST_URL
    caps: ClassVar[Capabilities] = Capabilities(
        stream_kinds=websocket.STREAM_KINDS, contiguous_trade_ids=False,
        rest_backfill=("trades",), depth_snapshots=False, kline_history=True, trading=False,
        max_streams_per_connection=1_000_000,  # one connection joins every pair
        book_from_stream=True,
        # One page of 50 per pair every 2 s: a dropped frame comes back while fewer than 50
        # trades printed after it (25 trades/s per pair), within BTCTurk's public limits.
        latest_trades_poll_ms=2_000)
    subscribe_pacing_s: ClassVar[float] = websocket.JOIN_PACING_S
    rest_page: ClassVar[int] = rest.TRADES_MAX

    def channels(self, symbols: list[str], kinds: list[str]) -> list[str]:
        self.check_streams(kinds)
        return [websocket.channel_name(k, websocket.btcturk_pair(s))
                for s in symbols for k in kinds]

    def connection_shards(self, channels: list[str], max_per_connection: int) -> list[list[str]]:
        return [list(channels)]  # one connection joins every pair

    def subscribe_messages(self, channels: list[str], request_id: int) -> list[str]:
        # Trade channels first: joins are paced (5 a second) and a trade that prints before its
        # channel is joined comes back only within the 50 of the join's 421 list, while a book
        # joined later loses nothing (it starts from its 431).
        ordered = sorted(channels, key=lambda c: not c.startswith("trade:"))
        return [websocket.channel_messages(c) for c in ordered]

    def resubscribe_messages(self, channels: list[str]) -> list[str]:
        return [m for c in channels for m in (websocket.channel_messages(c, join=False),
                                              websocket.channel_messages(c))]

    def is_data_frame(self, head: bytes) -> bool:
        return websocket.is_data_frame(head)

    def control_kind(self, doc: Any) -> ControlKind:
        return "welcome" if isinstance(doc, list) else "data"

    def parser(self, symbols: set[str] | None,
               symbol_map: dict[str, str] | None = None) -> FrameParser:
        return websocket.BTCTurkParser(symbols, symbol_map)

    # --- REST ---------------------------------------------------------------------------------
    def market_rest(self, base_url: str) -> MarketRest | None:
        return rest.BTCTurkRest(base_url)

    def parse_trade_rows(self, dataset: str, symbol: str, rows: list[dict[str, Any]],
                         recv_ms: int) -> tuple[TradeCols, int]:
        return rest.parse_trade_rows(dataset, symbol, rows, recv_ms)

    def row_id(self, dataset: str, row: dict[str, Any]) -> int | None:
        return rest.row_id(dataset, row)

    def parse_depth_snapshot(self, body: Any) -> tuple[int, list[tuple[float, float]],
                                                       list[tuple[float, float]]]:
        return rest.parse_depth_snapshot(body)

    def kline_history(self, base_url: str) -> KlineHistory:
        return rest.BTCTurkRest(base_url)
