"""What the executor needs from a broker, whichever venue is behind it.

A broker submits, cancels and queries orders by client order id, reports the venue's open
orders, balances and trades (for reconciliation), and turns whatever it learns into
:class:`~spark_ray.execution.orders.OrderUpdate` values. Two implementations: the
:class:`~spark_ray.execution.paper.PaperBroker` (the backtest's fill model on live bars) and the
venue adapters' live brokers, e.g. :class:`~spark_ray.adapters.binance.broker.BinanceBroker`
(signed REST + user data stream).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from spark_ray.errors import UserError
from spark_ray.execution.bars import ClosedBar
from spark_ray.execution.filters import SymbolFilters
from spark_ray.execution.orders import ManagedOrder, OrderUpdate
from spark_ray.secrets import SecretRef

UpdateSink = Callable[[list[OrderUpdate]], None]


@dataclass(frozen=True)
class Credentials:
    """An API key and its secret; neither is ever shown."""

    api_key: str = field(repr=False)
    secret: str = field(repr=False)

    def __repr__(self) -> str:
        return "Credentials(***)"

    __str__ = __repr__

    @classmethod
    def from_env(cls, key_env: str, secret_env: str,
                 environ: Mapping[str, str] | None = None) -> Credentials:
        """From the two environment variables a venue's adapter names; UserError names the
        missing one."""
        env = os.environ if environ is None else environ
        missing = [n for n in (key_env, secret_env) if not env.get(n)]
        if missing:
            raise UserError(f"--live: set {' and '.join(missing)} in the environment "
                            "(keys are never taken from flags or files)")
        return cls(env[key_env], env[secret_env])


@dataclass(frozen=True)
class CredentialRefs:
    """Where an API key and its secret are read, on the node that trades
    (:mod:`spark_ray.secrets`): what an executor's spec carries instead of the values, so they
    never go through Ray's control store or object store."""

    key: SecretRef
    secret: SecretRef

    def resolve(self, environ: Mapping[str, str] | None = None) -> Credentials:
        return Credentials(self.key.require("--live: API key", environ),
                           self.secret.require("--live: API secret", environ))


class BrokerError(Exception):
    """The venue refused or failed a request in a way that is not about one order's fate."""


class OutcomeUnknown(BrokerError):
    """A submit whose fate the venue never told us (timeouts, 5xx) even after retries and
    queries; the order stays UNKNOWN until reconciliation asks again."""


class Broker(Protocol):
    name: str

    async def start(self, on_updates: UpdateSink) -> None:
        """Open streams; pushed updates go to ``on_updates`` (on the caller's event loop)."""

    async def exchange_filters(self, symbols: list[str]) -> dict[str, SymbolFilters]: ...

    async def submit(self, order: ManagedOrder) -> list[OrderUpdate]:
        """Place ``order`` under its client order id (at most once). A refusal comes back as a
        REJECTED update; an unknown outcome raises :class:`OutcomeUnknown`."""

    async def cancel(self, order: ManagedOrder) -> list[OrderUpdate]: ...

    async def query(self, order: ManagedOrder) -> list[OrderUpdate] | None:
        """The venue's view of ``order`` (status and fills); None when it does not know it."""

    async def open_orders(self, symbols: list[str]) -> list[dict[str, Any]]: ...

    async def account(self) -> dict[str, Any]: ...

    def on_bar(self, bar: ClosedBar) -> list[OrderUpdate]:
        """A bar closed (the paper broker fills against it; a real venue ignores it)."""

    def restore(self, orders: list[ManagedOrder], balances: dict[str, tuple[float, float]]) -> None:
        """Paper only: rebuild the simulated venue from the journal after a restart."""

    async def close(self) -> None: ...
