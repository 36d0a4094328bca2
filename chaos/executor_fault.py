"""``kill_executor``: kill a live-trading executor while the venue holds an order's answer.

The injection starts an :class:`~spark_ray.actors.executor.ExecutorActor` trading (signed, live
mode) on the canary's venue with the canary's fabric feeding it, waits for it to trade, then
asks the venue to place the next order but hold its answer, and ``ray.kill``\\ s the executor
while that submit is unanswered: the outcome is unknown to the executor. Ray restarts it; the
canary starts it again (as ``spark-ray trade`` supervises), it replays its journal and reconciles
with the venue. Verified: it came back as a new process, the held order was adopted (not sent
again), and every client order id has exactly one order at the venue.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import ray

from spark_ray.chaos.approval import load_synthetic
from spark_ray.chaos.experiments import Experiment
from spark_ray.chaos.faults import Injection
from spark_ray.chaos.stack import Stack
from spark_ray.secrets import PrivateSecrets

EXECUTOR_NAME = "executor:chaos"


class KillExecutor(Injection):
    def __init__(self, exp: Experiment, stack: Stack) -> None:
        super().__init__(exp, stack)
        self.handle: Any = None
        self.breaker: Any = None
        self.journal = stack.work / "executor-journal.jsonl"
        self.cid: str | None = None
        self.before_pid: int | None = None
        self.restarted: dict[str, Any] = {}
        self.final: dict[str, Any] = {}  # the restarted executor's status, before clean-up
        self.final_at = 0.0
        self._next_look = 0.0
        self.vault: PrivateSecrets | None = None

    # --- set-up: a trading executor on the canary's venue and fabric ---------------------------
    def _start(self) -> None:
        from spark_ray.actors.breaker import get_breaker
        from spark_ray.actors.executor import start_executor
        from spark_ray.adapters import get_adapter
        from spark_ray.breaker.models import BreakerConfig
        from spark_ray.execution.executor import ExecutorConfig
        from spark_ray.execution.spec import ExecutorSpec

        stack = self.stack
        key, secret = stack.api_key
        ap = load_synthetic(stack.work / "executor-params", note="kill_executor")
        bname = f"breaker:{stack.namespace}-executor"
        # The platform's rules, minus the ones a 1 s-bar churn trips on purpose-free (losing
        # streaks, order rate): this experiment is about the kill, not the breaker.
        quiet = BreakerConfig.model_validate({
            "consecutive_losses": {"enabled": False}, "order_rate": {"limit": 100_000},
            "daily_loss": {"limit": 0.5}, "max_drawdown": {"limit": 0.5}})
        self.breaker, _ = get_breaker(bname, config=quiet,
                                      journal_path=str(stack.work / "exec-breaker.jsonl"))
        # The executor reads the venue key on its node (a private secrets file), not its spec.
        names = get_adapter("binance").credential_refs()
        self.vault = PrivateSecrets({names.key.env: key, names.secret.env: secret})
        spec = ExecutorSpec(
            config=ExecutorConfig(name=f"chaos-{stack.namespace}", symbols=("BTCUSDT",),
                                  interval="1s", mode="live", cash=5_000.0, warmup_bars=30),
            strategy=ap.strategy, params=ap.params, journal_path=str(self.journal),
            approved_path=ap.path,
            trusted_keys=ap.trusted_keys, approval=ap.approval, broker="binance",
            rest_url=stack.venue.rest_url, ws_url=stack.venue.ws_url,
            credentials=get_adapter("binance").credential_refs(str(self.vault.path)),
            breaker_name=bname, control_port=None,
            # no user data stream: the held answer is the only news of the order
            broker_options={"timeout_s": 3.0, "attempts": 4, "backoff_s": 0.05,
                            "recv_window_ms": 5_000, "user_stream": False})
        self.handle = start_executor(spec, EXECUTOR_NAME, stack.namespace)
        ray.get([n.subscribe.remote(self.handle, "on_market_data")
                 for n in stack.fabric.normalizers], timeout=30)
        deadline = time.monotonic() + 90  # it trades (so its metrics are exported) first
        while time.monotonic() < deadline and len(self._intents()) < 2:
            time.sleep(0.5)
        if len(self._intents()) < 2:
            raise RuntimeError("the executor placed no orders within 90 s")
        time.sleep(6.0)  # a few metric reports from this process before it dies

    def _intents(self) -> list[dict[str, Any]]:
        if not self.journal.exists():
            return []
        rows = [json.loads(x) for x in self.journal.read_text().splitlines() if x.strip()]
        return [r["order"] for r in rows if r.get("k") == "intent"]

    # --- the fault ------------------------------------------------------------------------------
    def inject(self) -> None:
        self._start()
        stack = self.stack
        self.before_pid = ray.get(self.handle.status.remote(), timeout=30)["pid"]
        fid = stack.venue.inject("order_timeout", delay_ms=8000, placed=True, count=1)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any(e["fault_id"] == fid and e["action"] == "injected"
                   for e in stack.venue.fault_log()):
                break
            time.sleep(0.01)
        else:
            raise RuntimeError("no order submission reached the venue within 120 s")
        self.t0 = time.time()
        ray.kill(self.handle, no_restart=False)  # mid-order: placed, answer held
        self.end = self.t0
        self.cid = self._intents()[-1]["cid"]
        self.details.update(venue_fault_id=fid, held_order=self.cid)

    def poll(self, now: float) -> None:
        """Start the restarted executor (what a supervisor does): it reconciles first."""
        if self.restarted or self.t0 is None or now < self._next_look:
            return
        self._next_look = now + 1.0
        with contextlib.suppress(ray.exceptions.RayError, TimeoutError):
            st = ray.get(self.handle.start.remote(), timeout=20)
            # ray.kill is asynchronous: a call just after it may still reach the old process
            if st.get("started") and st.get("pid") != self.before_pid:
                # As TradingRun.supervise does: subscribe the new process (duplicates of trades
                # it already has are dropped by id).
                ray.get([n.subscribe.remote(self.handle, "on_market_data")
                         for n in self.stack.fabric.normalizers], timeout=20)
                self.restarted = st
                self.details["restarted_after_s"] = round(now - self.t0, 1)

    def _observe(self) -> None:
        """The restarted executor, seen while it still runs (the runner cleans up before it
        verifies): started again, fed by the fabric, its status and its breaker's."""
        deadline = time.time() + 90
        while not self.restarted and time.time() < deadline:
            self.poll(time.time())
            time.sleep(0.5)
        n0 = len(self._intents())
        time.sleep(5.0)  # the restarted executor consumes the stream again
        try:
            self.final = ray.get(self.handle.status.remote(), timeout=30)
            self.final_at = time.time()
        except Exception as exc:  # kept in the evidence: why the status could not be read
            self.details["status_error"] = f"{type(exc).__name__}: {str(exc)[:2000]}"
        with contextlib.suppress(Exception):
            ray.get(self.handle.drain.remote(10.0), timeout=30)
        with contextlib.suppress(Exception):
            b = ray.get(self.breaker.status.remote(), timeout=30)
            self.details["executor_breaker"] = {k: b.get(k) for k in ("state", "trips_total",
                                                                      "last_trip")}
        self.details["intents_after_restart"] = len(self._intents()) - n0
        self.details["executor_status"] = {k: self.final.get(k) for k in (
            "pid", "restarted", "batches", "dropped_batches", "queue", "last_data_time",
            "start_error", "breaker_state", "halted")}
        with contextlib.suppress(Exception):
            self.details["subscribers"] = [
                s.get("subscribers") for s in ray.get(
                    [n.status.remote() for n in self.stack.fabric.normalizers], timeout=30)]

    def verify(self) -> dict[str, bool]:
        key, _ = self.stack.api_key
        st, last = self.final, self.final.get("last_data_time")
        venue_orders = self.stack.venue.orders("BTCUSDT", key)
        cids = [o["clientOrderId"] for o in venue_orders]
        intents = {o["cid"] for o in self._intents()}
        rec = self.restarted.get("reconcile", {})
        self.details.update(
            pid_before=self.before_pid, pid_after=st.get("pid"),
            venue_orders=len(cids), intents=len(intents),
            reconcile={k: rec.get(k) for k in ("checked", "resolved", "errors")},
            secret_in_journal=self.stack.api_key[1] in self.journal.read_text())
        return {
            "the executor came back as a new process and started":
                bool(self.restarted) and st.get("pid") not in (None, self.before_pid),
            "the held order was adopted by reconciliation, not sent again":
                self.cid is not None and self.cid in (rec.get("resolved") or {})
                and cids.count(self.cid) == 1,
            "every client order id has exactly one order at the venue":
                len(cids) == len(set(cids)) and set(cids) <= intents,
            "the restarted executor consumes market data again":
                last is not None and self.final_at - float(last) < 5.0
                and st.get("batches", 0) > 0,
            "the API secret is in no journal": not self.details["secret_in_journal"],
        }

    def cleanup(self) -> None:
        if self.handle is not None and self.t0 is not None:
            self._observe()
        if self.handle is not None:
            with contextlib.suppress(Exception):
                ray.get(self.handle.stop.remote(), timeout=30)
            with contextlib.suppress(Exception):
                ray.kill(self.handle, no_restart=True)
        if self.breaker is not None:
            with contextlib.suppress(Exception):
                ray.kill(self.breaker, no_restart=True)
        if self.vault is not None:
            self.vault.close()
