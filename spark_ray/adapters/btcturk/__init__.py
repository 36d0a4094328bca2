"""BTCTurk: the public WebSocket trade feed (``adapters/btcturk/websocket.py``).

What BTCTurk offers here: trades (channel ``trade``), the order book (``depth``: channel
``obdiff``, a full book on joining then change sets) and the best bid/offer (``ticker``) over
WebSocket, TRY-quoted pairs mapped to our symbols (``BTC_TRY`` / ``BTCTRY``). Its trade ids are
not one contiguous sequence per pair, so the fabric detects no trade gaps for it: what a
disconnect missed comes back with the recent-trades list (421) BTCTurk sends on every join, and
is deduplicated. A book out of sync is re-joined (``book_from_stream``), no REST snapshot.
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
        stream_kinds=websocket.STREAM_KINDS, contiguous_trade_ids=False, rest_backfill=(),
        depth_snapshots=False, kline_history=False, trading=False,
        max_streams_per_connection=1_000_000,  # one connection joins every pair
        book_from_stream=True)
    subscribe_pacing_s: ClassVar[float] = websocket.JOIN_PACING_S

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
