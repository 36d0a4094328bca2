"""BTCTurk: the public WebSocket trade feed (``adapters/btcturk/websocket.py``).

What BTCTurk offers here today: trades over WebSocket, TRY-quoted pairs mapped to our symbols
(``BTC_TRY`` / ``BTCTRY``). Its trade ids are not one contiguous sequence per pair, so the
fabric neither detects gaps nor back-fills them for it (capabilities below).
"""

from __future__ import annotations

from typing import Any, ClassVar

from spark_ray.adapters.base import Adapter, Capabilities, ControlKind, FrameParser
from spark_ray.adapters.btcturk import websocket

DEFAULT_WS_URL = "wss://ws-feed-pro.btcturk.com"


class BTCTurkAdapter(Adapter):
    name: ClassVar[str] = "btcturk"
    title: ClassVar[str] = "BTCTurk"
    default_ws_url: ClassVar[str] = DEFAULT_WS_URL
    caps: ClassVar[Capabilities] = Capabilities(
        stream_kinds=("trade",), contiguous_trade_ids=False, rest_backfill=(),
        depth_snapshots=False, kline_history=False, trading=False,
        max_streams_per_connection=1_000_000)  # one connection joins every pair
    subscribe_pacing_s: ClassVar[float] = websocket.JOIN_PACING_S

    def channels(self, symbols: list[str], kinds: list[str]) -> list[str]:
        self.check_streams(kinds)
        return [websocket.btcturk_pair(s) for s in symbols]

    def connection_shards(self, channels: list[str], max_per_connection: int) -> list[list[str]]:
        return [list(channels)]  # one connection joins every pair

    def subscribe_messages(self, channels: list[str], request_id: int) -> list[str]:
        return [websocket.join_message(pair) for pair in channels]

    def is_data_frame(self, head: bytes) -> bool:
        return websocket.is_data_frame(head)

    def control_kind(self, doc: Any) -> ControlKind:
        return "welcome" if isinstance(doc, list) else "data"

    def parser(self, symbols: set[str] | None,
               symbol_map: dict[str, str] | None = None) -> FrameParser:
        return websocket.BTCTurkParser(symbols, symbol_map)
