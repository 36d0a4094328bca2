"""Binance spot: market streams, public REST, signed trading (``adapters/binance/*``).

Modules: ``websocket`` (stream names, SUBSCRIBE, the frame parser, with ``fastparse`` its
vectorized trade path), ``rest`` (klines, back-fill trades, depth, exchangeInfo), ``auth``
(HMAC-SHA256 request signing, shared with the venue simulator), ``broker`` (orders under client
order ids over the signed REST API and the user data stream).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from spark_ray.adapters.base import (
    Adapter,
    Capabilities,
    ControlKind,
    FrameParser,
    MarketRest,
    SpotRest,
)
from spark_ray.adapters.binance import rest, websocket
from spark_ray.adapters.events import TradeCols

if TYPE_CHECKING:
    from spark_ray.execution.broker import Broker, CredentialRefs, Credentials


class BinanceAdapter(Adapter):
    name: ClassVar[str] = "binance"
    title: ClassVar[str] = "Binance"
    default_ws_url: ClassVar[str] = websocket.DEFAULT_WS_URL
    default_rest_url: ClassVar[str | None] = rest.DEFAULT_REST_URL
    caps: ClassVar[Capabilities] = Capabilities(
        stream_kinds=websocket.STREAM_KINDS, contiguous_trade_ids=True,
        rest_backfill=tuple(rest.BACKFILL_PATH), depth_snapshots=True, kline_history=True,
        trading=True, max_streams_per_connection=websocket.MAX_STREAMS_PER_CONNECTION)
    rest_page: ClassVar[int] = rest.PAGE
    ray_kline_etl: ClassVar[bool] = True

    def stream_url(self, base: str) -> str:
        return base.rstrip("/") + "/stream"

    def channels(self, symbols: list[str], kinds: list[str]) -> list[str]:
        return websocket.stream_names(symbols, kinds)

    def subscribe_messages(self, channels: list[str], request_id: int) -> list[str]:
        return [websocket.subscribe_message(channels, request_id)] if channels else []

    def is_data_frame(self, head: bytes) -> bool:
        return websocket.is_data_frame(head)

    def control_kind(self, doc: Any) -> ControlKind:
        if isinstance(doc, dict):
            if doc.get("e") == "serverShutdown":
                return "shutdown"
            if ("result" in doc or "error" in doc) and "id" in doc:
                return "error" if "error" in doc else "answer"
        return "data"

    def stream_key(self, raw: bytes) -> bytes:
        return websocket.stream_key(raw)

    def parser(self, symbols: set[str] | None,
               symbol_map: dict[str, str] | None = None) -> FrameParser:
        return websocket.BinanceParser(symbols)

    def market_rest(self, base_url: str) -> MarketRest | None:
        return rest.BinanceRest(base_url)

    def parse_trade_rows(self, dataset: str, symbol: str, rows: list[dict[str, Any]],
                         recv_ms: int) -> tuple[TradeCols, int]:
        return rest.parse_trade_rows(dataset, symbol, rows, recv_ms)

    def row_id(self, dataset: str, row: dict[str, Any]) -> int | None:
        return rest.row_id(dataset, row)

    def parse_depth_snapshot(self, body: Any) -> tuple[int, list[tuple[float, float]],
                                                       list[tuple[float, float]]]:
        return rest.parse_depth_snapshot(body)

    # Trading modules are imported when asked for: the fabric's actors, which only read market
    # data, do not load the executor's packages.
    def spot_rest(self, base_url: str) -> SpotRest:
        from spark_ray.adapters.binance.spot import SpotRest as BinanceSpotRest

        return BinanceSpotRest(base_url)

    def credentials_from_env(self, environ: Mapping[str, str] | None = None) -> Credentials:
        from spark_ray.adapters.binance.broker import credentials_from_env

        return credentials_from_env(environ)

    def credential_refs(self, secrets_file: str | None = None) -> CredentialRefs:
        from spark_ray.adapters.binance.broker import KEY_ENV, SECRET_ENV
        from spark_ray.execution.broker import CredentialRefs as Refs
        from spark_ray.secrets import SecretRef

        return Refs(SecretRef(KEY_ENV, secrets_file),
                              SecretRef(SECRET_ENV, secrets_file))

    def broker(self, credentials: Credentials, rest_url: str, ws_url: str,
               **options: Any) -> Broker:
        from spark_ray.adapters.binance.broker import BinanceBroker

        return BinanceBroker(credentials, rest_url, ws_url, **options)
