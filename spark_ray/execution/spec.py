"""Everything an ExecutorActor needs to (re)build its core, as one picklable value.

The actor keeps its constructor argument across Ray restarts, so a restarted executor rebuilds
the same core from the same spec: same journal, same breaker, same broker, and it re-checks the
approval file before trading again. Credentials and the control token travel here as values
whose repr is masked; nothing in the spec is logged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from spark_ray.execution.binance import DEFAULT_WS_URL, BinanceBroker, Credentials
from spark_ray.execution.broker import Broker
from spark_ray.execution.control import DEFAULT_PORT, Token
from spark_ray.execution.executor import ExecutorConfig, ExecutorCore
from spark_ray.execution.gate import Gate
from spark_ray.execution.journal import ExecJournal
from spark_ray.execution.paper import PaperBroker
from spark_ray.execution.rest import DEFAULT_REST_URL, PublicRest
from spark_ray.strategy.loader import load_strategy


@dataclass
class ExecutorSpec:
    config: ExecutorConfig
    strategy: str
    params: dict[str, Any]
    journal_path: str
    approved_path: str | None = None  # re-checked on every (re)start
    approval: dict[str, Any] = field(default_factory=dict)
    broker: Literal["paper", "binance"] = "paper"
    rest_url: str | None = DEFAULT_REST_URL  # filters and warm-up (paper), everything (live)
    ws_url: str = DEFAULT_WS_URL  # user data stream (live)
    credentials: Credentials | None = field(default=None, repr=False)
    breaker_name: str = "breaker"
    control_host: str = "127.0.0.1"
    control_port: int | None = DEFAULT_PORT  # None: no control plane; 0: any free port
    control_token: Token | None = field(default=None, repr=False)
    broker_options: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> ExecutorSpec:
        from spark_ray.errors import UserError

        if self.broker == "binance":
            if self.credentials is None:
                raise UserError("--live: API key and secret are required")
            if not self.rest_url:
                raise UserError("--rest-url: live trading needs the venue's REST URL")
        if self.broker == "paper" and self.config.mode != "paper":
            raise UserError("mode: the paper broker only trades in paper mode")
        if self.broker == "binance" and self.config.mode != "live":
            raise UserError("mode: the Binance broker only trades in live mode")
        if self.control_port is not None and not 0 <= self.control_port <= 65535:
            raise UserError("--port: outside 0..65535")
        load_strategy(self.strategy)
        return self


def build_broker(spec: ExecutorSpec, public: PublicRest | None = None) -> Broker:
    cfg = spec.config
    if spec.broker == "binance":
        assert spec.credentials is not None and spec.rest_url
        return BinanceBroker(spec.credentials, spec.rest_url, spec.ws_url, **spec.broker_options)
    per = cfg.cash / len(cfg.symbols)
    source = public.exchange_filters if public is not None else None
    return PaperBroker(dict.fromkeys(cfg.symbols, per), cfg.costs(), filter_source=source)


def build_core(spec: ExecutorSpec, gate: Gate) -> ExecutorCore:
    """The core of one executor (the actor calls this on every start)."""
    cfg = spec.config
    public = PublicRest(spec.rest_url) if spec.rest_url else None
    klines = public.klines if public is not None and cfg.warmup_bars else None
    core = ExecutorCore(cfg, load_strategy(spec.strategy), spec.params,
                        build_broker(spec, public), ExecJournal(spec.journal_path), gate, klines,
                        spec.approval)
    if public is not None:
        core.closers.append(public.close)
    return core
