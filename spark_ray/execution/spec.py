"""Everything an ExecutorActor needs to (re)build its core, as one picklable value.

The actor keeps its constructor argument across Ray restarts, so a restarted executor rebuilds
the same core from the same spec: same journal, same breaker, same broker, and it re-checks the
approval file before trading again. Credentials and the control token are *references* here
(:mod:`spark_ray.secrets`): the actor reads them on its node, so no secret is in the spec.
Which venue's REST and broker serve the spec is its ``exchange`` (an adapter name); the actor
shell builds them from the adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from spark_ray.execution.broker import CredentialRefs
from spark_ray.execution.control import DEFAULT_PORT
from spark_ray.execution.executor import ExecutorConfig
from spark_ray.secrets import SecretRef
from spark_ray.strategy.loader import load_strategy
from spark_ray.tls import TlsFiles

PAPER = "paper"
VENUE_DEFAULT = "venue-default"  # a URL field's default: the exchange's own URL (its adapter's)


@dataclass
class ExecutorSpec:
    config: ExecutorConfig
    strategy: str
    params: dict[str, Any]
    journal_path: str
    approved_path: str | None = None  # re-checked on every (re)start
    trusted_keys: str | None = None  # approvers it accepts (None: the node's default file)
    approval: dict[str, Any] = field(default_factory=dict)
    broker: str = PAPER  # "paper", or the exchange whose broker places real orders
    exchange: str = "binance"  # whose REST gives filters and warm-up bars (and trades, live)
    rest_url: str | None = VENUE_DEFAULT  # filters and warm-up (paper), everything (live)
    ws_url: str = VENUE_DEFAULT  # user data stream (live)
    # Where the API key and secret are read on the executor's node: never the values (they
    # would be pickled into the actor's creation task, kept in Ray's control store).
    credentials: CredentialRefs | None = None
    breaker_name: str = "breaker"
    control_host: str = "127.0.0.1"
    control_port: int | None = DEFAULT_PORT  # None: no control plane; 0: any free port
    control_token: SecretRef | None = None  # where the kill token is read, on the node
    control_tls: TlsFiles | None = None  # HTTPS for the control plane (paths on the node)
    broker_options: dict[str, Any] = field(default_factory=dict)
    # A signal model's folder: a signal actor publishes to this executor and each bar waits
    # (``signal_wait_ms``) for the signals of its last trade. None: bars carry no signals.
    signals_model: str | None = None

    @property
    def live(self) -> bool:
        return self.broker != PAPER

    def validate(self) -> ExecutorSpec:
        from spark_ray.errors import UserError

        if self.live:
            if self.broker != self.exchange:
                raise UserError(f"broker: {self.broker!r} is neither 'paper' nor the "
                                f"exchange {self.exchange!r}")
            if self.credentials is None:
                raise UserError("--live: API key and secret are required")
            if not self.rest_url:
                raise UserError("--rest-url: live trading needs the venue's REST URL")
        if not self.live and self.config.mode != "paper":
            raise UserError("mode: the paper broker only trades in paper mode")
        if self.live and self.config.mode != "live":
            raise UserError(f"mode: the {self.broker} broker only trades in live mode")
        if self.control_port is not None and not 0 <= self.control_port <= 65535:
            raise UserError("--port: outside 0..65535")
        load_strategy(self.strategy)
        return self
