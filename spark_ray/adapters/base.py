"""The one seam between the platform and an exchange: :class:`Adapter` and its capabilities.

Everything the fabric, the ETL and the executor need to know about a venue is asked of its
adapter: where to connect, what to subscribe to and how, which frames are data, how to parse
them, what its REST API can repair, how to trade. Nothing outside ``spark_ray/adapters/`` (and
the venue simulator, which *is* a venue) branches on an exchange's name; code that must behave
differently per venue reads a capability flag instead, in the manner of freqtrade's
``_ft_has`` dictionaries (https://www.freqtrade.io/en/stable/developer/#exchange-specific-code).

Adding an exchange = a package ``spark_ray/adapters/<name>/`` with a subclass of
:class:`Adapter`, registered in :mod:`spark_ray.adapters.registry` (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from spark_ray.adapters.events import ParsedBatch, TradeCols
from spark_ray.errors import UserError

if TYPE_CHECKING:  # trading types: only venues that trade build them
    from spark_ray.execution.bars import ClosedBar
    from spark_ray.execution.broker import Broker, CredentialRefs, Credentials
    from spark_ray.execution.filters import SymbolFilters

ControlKind = Literal["shutdown", "answer", "error", "welcome", "data"]


@dataclass(frozen=True)
class Capabilities:
    """What a venue offers; the platform's code paths switch on these, never on names."""

    stream_kinds: tuple[str, ...]  # the stream kinds a fabric may subscribe to
    contiguous_trade_ids: bool  # trade ids have no holes, so a hole is a gap to detect
    rest_backfill: tuple[str, ...]  # trade datasets whose gaps REST can repair
    depth_snapshots: bool  # the depth stream can be synced against a REST snapshot
    kline_history: bool  # candles can be fetched over REST (spark-ray data fetch)
    trading: bool  # signed order entry and a user data stream (a live broker)
    max_streams_per_connection: int  # streams one WebSocket connection may carry
    # The depth stream sends its own full book on (re)joining (BTCTurk's obdiff 431): a book out
    # of sync is recovered by leaving and re-joining its channel, not by a REST snapshot.
    book_from_stream: bool = False
    # Trade ids with holes and REST that cannot page by id (BTCTurk: the latest <= 50 trades):
    # the fabric polls that latest page this often per series and keeps what it lacks, which
    # fills frames dropped mid-stream while the hole is still within the page. 0: never.
    latest_trades_poll_ms: int = 0


class FrameParser(Protocol):
    exchange: str

    def parse(self, frames: list[bytes], recv_ms: list[int]) -> ParsedBatch: ...


class MarketRest(Protocol):
    """The REST calls the fabric needs for gap repair and book snapshots."""

    async def trades_page(self, dataset: str, symbol: str, from_id: int,
                          limit: int = ...) -> list[dict[str, Any]]: ...

    async def depth(self, symbol: str, limit: int = ...) -> Any: ...

    async def close(self) -> None: ...


class KlineHistory(Protocol):
    """Candle history paged in-process (``spark-ray data fetch`` for venues without the Ray
    kline ETL): the venue's intervals, one page of bars, its clock and its symbols."""

    @property
    def intervals(self) -> Mapping[str, str]:
        """Our interval -> the venue's name for it."""

    @property
    def page_candles(self) -> int:
        """Bars asked per call."""

    @property
    def request_spacing_s(self) -> float:
        """The least time between two calls (from the venue's documented rate limit)."""

    async def klines(self, symbol: str, interval: str, start_ms: int,
                     end_ms: int) -> list[tuple[int, float, float, float, float, float]]: ...

    async def symbols(self) -> set[str]: ...

    async def server_time_ms(self) -> int: ...

    async def close(self) -> None: ...


class SpotRest(Protocol):
    """The public REST calls a trading executor needs: filters and warm-up bars."""

    async def exchange_filters(self, symbols: list[str]) -> dict[str, SymbolFilters]: ...

    async def closed_bars(self, symbol: str, interval: str, end_open_ms: int,
                          limit: int) -> list[ClosedBar]: ...

    async def close(self) -> None: ...


class Adapter:
    """One exchange's protocol knowledge. Subclasses override what their venue does."""

    name: ClassVar[str]
    title: ClassVar[str]
    default_ws_url: ClassVar[str]
    default_rest_url: ClassVar[str | None] = None
    caps: ClassVar[Capabilities]
    subscribe_pacing_s: ClassVar[float] = 0.0  # pause between subscribe messages
    rest_page: ClassVar[int] = 1000  # rows per back-fill page
    # Candle history comes from the Ray kline ETL (weight-budgeted Binance-protocol pages,
    # ``app/etl.py``); otherwise from :meth:`kline_history`, paged in-process.
    ray_kline_etl: ClassVar[bool] = False

    # Quote assets a symbol written without a separator ends with (``BTCUSDT``, ``BTCTRY``),
    # tried longest first: Binance's quote assets as its exchangeInfo lists them
    # (https://developers.binance.com/docs/binance-spot-api-docs/rest-api/general-endpoints,
    # ``quoteAsset``) and BTCTurk's denominators (https://docs.btcturk.com/public-endpoints/
    # exchange-info, ``denominator``: TRY, USDT, BTC). A venue with other quotes overrides it.
    quote_assets: ClassVar[tuple[str, ...]] = (
        "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "TRY", "EUR", "USD", "BTC", "ETH", "BNB")

    # --- symbols ----------------------------------------------------------------------------
    def split_symbol(self, symbol: str) -> tuple[str, str]:
        """(base, quote) of one of this venue's symbols: ``BTCUSDT`` -> (``BTC``, ``USDT``),
        ``BTCTRY`` or ``BTC_TRY`` -> (``BTC``, ``TRY``). A separator (``/``, ``_``, ``-``) wins;
        else the longest of :attr:`quote_assets` the symbol ends with. ValueError when neither
        tells (the cross-venue view then names the symbol rather than guessing)."""
        s = symbol.strip().upper()
        for sep in ("/", "_", "-"):
            if sep in s:
                base, _, quote = s.partition(sep)
                if base and quote:
                    return base, quote
        for quote in sorted(self.quote_assets, key=len, reverse=True):
            if s.endswith(quote) and len(s) > len(quote):
                return s[: -len(quote)], quote
        raise ValueError(f"{self.title}: symbol {symbol!r} ends with none of the quote assets "
                         f"{', '.join(self.quote_assets)}")

    # --- WebSocket --------------------------------------------------------------------------
    def stream_url(self, base: str) -> str:
        """The URL a connector opens, given the configured stream base URL."""
        return base

    def channels(self, symbols: list[str], kinds: list[str]) -> list[str]:
        """What to subscribe to for ``symbols`` x stream ``kinds`` (venue's own names)."""
        raise NotImplementedError

    def connection_shards(self, channels: list[str], max_per_connection: int) -> list[list[str]]:
        """Channels split over connections of at most ``max_per_connection`` each."""
        if max_per_connection < 1:
            raise ValueError("max_per_connection must be >= 1")
        return [channels[i:i + max_per_connection]
                for i in range(0, len(channels), max_per_connection)] or [[]]

    def subscribe_messages(self, channels: list[str], request_id: int) -> list[str]:
        """The messages that subscribe one connection to ``channels``."""
        raise NotImplementedError

    def resubscribe_messages(self, channels: list[str]) -> list[str]:
        """Leave and re-join ``channels`` on a live connection (``caps.book_from_stream``): the
        venue answers with a fresh full book."""
        raise NotImplementedError

    def depth_channel(self, symbol: str) -> str:
        """The channel (as :meth:`channels` names it) carrying ``symbol``'s depth stream."""
        return self.channels([symbol], ["depth"])[0]

    def is_data_frame(self, head: bytes) -> bool:
        """From a frame's first 10 bytes: data for the parser (True) or a control message."""
        raise NotImplementedError

    def control_kind(self, doc: Any) -> ControlKind:
        """What a parsed control message means to a connector."""
        return "data"

    def stream_key(self, raw: bytes) -> bytes:
        """Which stream a data frame belongs to (chaos reorder swaps within one stream)."""
        return raw[:40]

    def parser(self, symbols: set[str] | None,
               symbol_map: dict[str, str] | None = None) -> FrameParser:
        raise NotImplementedError

    # --- REST ---------------------------------------------------------------------------------
    def market_rest(self, base_url: str) -> MarketRest | None:
        """The REST client for gap repair and depth snapshots (None: the venue has none)."""
        return None

    def parse_trade_rows(self, dataset: str, symbol: str, rows: list[dict[str, Any]],
                         recv_ms: int) -> tuple[TradeCols, int]:
        """Back-fill rows -> trade columns and the number of malformed rows."""
        raise NotImplementedError

    def row_id(self, dataset: str, row: dict[str, Any]) -> int | None:
        raise NotImplementedError

    def parse_depth_snapshot(self, body: Any) -> tuple[int, list[tuple[float, float]],
                                                       list[tuple[float, float]]]:
        """(last update id, bids, asks) of a REST book snapshot; ValueError when malformed."""
        raise NotImplementedError

    def kline_history(self, base_url: str) -> KlineHistory:
        """The client ``spark-ray data fetch`` pages candles from (``caps.kline_history``)."""
        raise UserError(f"{self.title}: no candle history over REST")

    def check_streams(self, kinds: list[str]) -> None:
        """ValueError naming a stream kind this venue does not offer."""
        for k in kinds:
            if k not in self.caps.stream_kinds:
                raise ValueError(f"{self.title} supports {', '.join(self.caps.stream_kinds)} "
                                 f"only, not {k!r}")

    # --- trading ------------------------------------------------------------------------------
    def spot_rest(self, base_url: str) -> SpotRest:
        """Filters and warm-up bars for an executor (paper or live) on this venue."""
        raise UserError(f"{self.title}: trading is not supported (no symbol filters or bars)")

    def credentials_from_env(self, environ: Mapping[str, str] | None = None) -> Credentials:
        raise UserError(f"{self.title}: live trading is not supported")

    def credential_refs(self, secrets_file: str | None = None) -> CredentialRefs:
        """Where this venue's API key and secret are read on the trading node (environment,
        then ``secrets_file``): what an executor's spec carries, never the values."""
        raise UserError(f"{self.title}: live trading is not supported")

    def broker(self, credentials: Credentials, rest_url: str, ws_url: str,
               **options: Any) -> Broker:
        """A live broker (signed orders and the user data stream)."""
        raise UserError(f"{self.title}: live trading is not supported")
