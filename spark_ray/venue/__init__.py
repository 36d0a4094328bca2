"""Local venue simulator: a Binance-compatible exchange (and a BTCTurk feed) on loopback.

Clients keep real Binance endpoints as their defaults; tests and demos point them at a venue's
`rest_url` / `ws_url` instead. See :class:`Venue` for the Python API and `spark-ray venue` for the
command.

Modules
-------
- API and settings: :mod:`venue` (:class:`Venue`, thread or process), :mod:`config`
  (:class:`VenueConfig`, checked by pydantic), :mod:`cli`, :mod:`demo`.
- Market model: :mod:`specs`, :mod:`market` (plans, trades, :class:`SymbolMarket`),
  :mod:`sources` (synthetic and replayed candles), :mod:`replay` (reading the lake, any
  exchange's partition: the replay speaks Binance's protocol whatever the data's origin),
  :mod:`hours` (a replayed exchange that closes, e.g. BIST: no trade or kline outside its
  sessions, the clock jumps the closed hours),
  :mod:`candles` (klines), :mod:`book`, :mod:`ledger` (ground truth), :mod:`engine` (all
  symbols behind one clock).
- Wire formats: :mod:`formats` (stream payloads, REST rows, errors), :mod:`exchange_info`.
- REST: :mod:`params` (shared parameter checks), :mod:`rest` (public endpoints),
  :mod:`signed` (trading endpoints), :mod:`ratelimit`; BTCTurk's public REST and graph API:
  :mod:`btcturk_rest`.
- Trading: :mod:`trading` (the desk), :mod:`orders`, :mod:`accounts`, :mod:`filters`,
  :mod:`matching`.
- Faults: :mod:`faults` (what a fault is), :mod:`fault_plan` (what the active ones decide).
- Server (aiohttp): :mod:`server` (app, engine loop, housekeeping) with one handler per
  protocol: :mod:`rest_handler`, :mod:`binance_ws`, :mod:`btcturk_ws`, :mod:`userstream`,
  :mod:`admin`, all sending through :mod:`connections`.

Trading half (Binance spot signed endpoints; :mod:`~spark_ray.venue.signed`,
:mod:`~spark_ray.venue.trading`)
-------------------------------------------------------------------------------------------
Endpoints, as Binance documents them (params in the query string and/or a form body, HMAC-SHA256
``signature`` over query + body via :mod:`spark_ray.adapters.binance.auth`, key in ``X-MBX-APIKEY``,
``timestamp`` + ``recvWindow`` <= 60000, errors ``{"code", "msg"}`` with Binance's statuses):
``POST /api/v3/order`` (MARKET by quantity or quoteOrderQty, LIMIT GTC/IOC/FOK, LIMIT_MAKER;
newClientOrderId; newOrderRespType ACK/RESULT/FULL), ``POST /api/v3/order/test``,
``GET|DELETE /api/v3/order``, ``GET|DELETE /api/v3/openOrders``, ``GET /api/v3/allOrders``,
``GET /api/v3/account``, ``GET /api/v3/myTrades``, ``POST|PUT|DELETE /api/v3/userDataStream``
and the user data stream at ``/ws/<listenKey>`` or ``/stream?streams=<listenKey>``
(``executionReport``, ``outboundAccountPosition``, ``listenKeyExpired``).

Keys: ``VenueConfig.api_keys`` ({key: secret}; default: ``SPARK_RAY_VENUE_API_KEYS`` =
"key:secret,..."; none configured = every signed call answers -2015, so market-data use is
unchanged). Each account starts with ``starting_balances`` (default USDT 100000, other assets 0);
``maker_commission`` / ``taker_commission`` (default 0.001) are charged in the asset received
(BUY: base, SELL: quote), rounded half up to 8 decimals; ``listen_key_ttl_s`` (3600).

Faults (``Venue.inject``): ``order_error`` answers the next ``count`` order submissions with
``status`` (5xx, Binance error body); ``order_timeout`` holds the answer ``delay_ms`` (then the
normal answer, or a reset with ``drop_connection``; when not placed: 503 -1007). Both take
``placed`` (default True): the order really is placed and executes before the client is failed.
Frame faults reach user data streams with ``streams=["userData"]``. The REST faults apply to the
trading paths too. Ground truth: ``Venue.orders()``, ``Venue.my_trades()``,
``Venue.balances(key)``.

Deviations from Binance: order and trade ids are venue-wide sequences, and our fills never
appear on the public tape (trade streams, klines, ``ground_truth``). Taker orders consume the
simulated book's levels (visible in depth); resting orders are not shown in the book and fill as
maker, at their price, from public trades strictly through their price (a trade at the price is
not enough), each trade's size shared among resting orders. Only MARKET, LIMIT and LIMIT_MAKER:
stop, take-profit, iceberg, trailing, OCO/OTO, SOR, amend and cancel-replace are -1014 or absent;
our orders never meet each other (no self-trade prevention; the mode is only echoed).
A signed request's ``timestamp`` may match the wall clock or the market clock of
``/api/v3/time`` (either passes, so a replayed or paused market never makes every request stale);
account times (transactTime, fills, events) are wall-clock ms. ``-2013`` comes with HTTP 400,
as Binance sends it. A listenKey cannot be SUBSCRIBEd on an open connection; DELETE or expiry
closes connections that carry nothing else. The 24 h ticker (REST and the ticker streams) covers
the whole 1 m candles opened in the last 24 h, not a window rolling to the millisecond. A URL
stream name without ``@`` is taken for a listenKey (an unknown one carries nothing), so
``/ws/<n>`` then SUBSCRIBE works as ccxt uses it. ``/sapi/v1/margin/(isolated/)allPairs``
answer ``[]``: the venue is spot only.
"""

from spark_ray.venue.config import TOKEN_ENV, VenueConfig
from spark_ray.venue.faults import FaultKind, FaultSpec
from spark_ray.venue.ratelimit import RateLimitConfig
from spark_ray.venue.venue import Venue

__all__ = ["TOKEN_ENV", "FaultKind", "FaultSpec", "RateLimitConfig", "Venue", "VenueConfig"]
