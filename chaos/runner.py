"""The chaos canary: run declared experiments against a live stack and judge each one.

For every experiment, in order: wait until no alert is active (the baseline), account the lake,
inject the fault, then poll Prometheus' ``/api/v1/alerts`` (every 0.5 s) for the expected alert
to fire and, after the fault ended, to resolve; meanwhile watch the sink catch up with the venue
(heal). Then clean up, account again (lost: published by the venue and not in the lake;
duplicates: in the lake more than once; both counted for this experiment only), verify the
fault's own invariants and judge against the declared limits (:mod:`spark_ray.chaos.verdict`).

``kill_node`` needs a multi-node cluster, which a driver already attached to a Ray cannot have:
it runs in a subprocess of its own (:mod:`spark_ray.chaos.nodekill`) with its own cluster and
stack, and sends its measurement back as JSON. Everything goes into one evidence bundle.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess  # nosec B404  # runs our own nodekill module with fixed argv, no shell
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spark_ray.audit import AuditLog, audited, cli_user
from spark_ray.chaos.experiments import Experiment, preflight
from spark_ray.chaos.faults import NotRunnable, make_injection
from spark_ray.chaos.stack import Stack, StackConfig
from spark_ray.chaos.verdict import (
    FAIL,
    Measurement,
    exit_code,
    judge,
    markdown,
    pending,
    table_json,
)
from spark_ray.chaos.watch import AlertTimeline, matching
from spark_ray.config import RayConfig

Log = Callable[[str], None]
POLL_S = 0.5
DRAIN_S = 90.0
# An alert counts as resolved once it stayed inactive this long: one failed scrape or a late
# export can empty an expression for an evaluation, which is not a recovery.
RESOLVE_CONFIRM_S = 3.0
# Ray exports metrics every 10 s by default; the canary's own Ray reports every 2 s so that
# detection times measure the system (rules, scrape) rather than the export period.
REPORT_INTERVAL_ENV = "RAY_metrics_report_interval_ms"
CANARY_REPORT_MS = "2000"
NODEKILL_TIMEOUT_S = 900.0


def say(msg: str) -> None:
    print(f"chaos: {msg}", flush=True)


def _labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f"{k}={v}" for k, v in labels.items()) + "}" if labels else ""


def settle(stack: Stack, exp: Experiment, log: Log) -> bool:
    """Wait (up to ``settle_s``) until the expected alert is neither pending nor firing, so
    its firing can only come from this fault. True when it is quiet. Other alerts still active
    (the previous fault's aftermath: late events, duplicates) are logged and recorded, not
    waited for: they cannot be mistaken for the expected one."""
    deadline = time.monotonic() + exp.settle_s
    t0 = time.monotonic()
    quiet = False
    while time.monotonic() < deadline:
        active = stack.alerts()
        if active is not None and not matching(active, exp.expect_alert, exp.expect_labels,
                                               ("pending", "firing")):
            quiet = True
            break
        time.sleep(1.0)
    waited = time.monotonic() - t0
    if not quiet:
        log(f"  {exp.expect_alert} still active after {waited:.0f} s")
    elif waited > 2:
        log(f"  waited {waited:.0f} s for {exp.expect_alert} to clear")
    return quiet


def run_experiment(stack: Stack, exp: Experiment, log: Log = say) -> Measurement:
    """Inject one fault into ``stack`` and measure detection, recovery, heal, loss."""
    m = Measurement(exp.id, alert=exp.expect_alert + _labels(exp.expect_labels))
    why = exp.missing_requirement()
    if why:
        return pending(exp, why)
    try:
        inj = make_injection(exp, stack)
    except NotRunnable as e:
        return pending(exp, str(e))
    m.baseline_quiet = settle(stack, exp, log)
    before = stack.account(DRAIN_S)
    already = sorted({a["labels"]["alertname"] for a in stack.alerts() or []
                      if a.get("state") == "firing"})
    if already:
        log(f"  firing before the fault (an earlier fault's aftermath): {', '.join(already)}")
    timeline = AlertTimeline()
    log(f"  inject {inj.describe()}; expect {m.alert} within {exp.max_detect_s:g} s")
    wm_end: dict[str, int] | None = None
    next_heal = 0.0
    quiet_since: float | None = None
    try:
        # The injection is an operator mutation like any other: one audit line (ok or error).
        with audited(AuditLog(), cli_user(), "chaos",
                     {"experiment": exp.id, "fault": inj.describe(), "by": "chaos-runner"}):
            inj.inject()
        assert inj.t0 is not None  # nosec B101  # narrows Optional for mypy, not a check
        m.injected_at = inj.t0
        give_up = inj.t0 + exp.duration_s + exp.max_detect_s + exp.max_recover_s + 120
        while True:
            now = time.time()
            if now > give_up:  # e.g. Prometheus stopped answering, or the fault never ended
                log("  giving up on this experiment: no verdict within its limits")
                break
            alerts = stack.alerts()
            if alerts is None:  # Prometheus did not answer: no news either way
                time.sleep(POLL_S)
                continue
            timeline.update(now, alerts)
            inj.poll(now)
            if m.fault_ended_at is None and (end := inj.ended()) is not None:
                m.fault_ended_at = end
                wm_end = stack.watermark()
                log(f"  fault ended after {end - inj.t0:.1f} s")
            if m.fired_at is None and matching(alerts, exp.expect_alert, exp.expect_labels):
                m.fired_at = now
                log(f"  {exp.expect_alert} firing after {now - inj.t0:.1f} s")
            if wm_end is not None and m.healed_at is None and now >= next_heal:
                next_heal = now + 1.0
                if stack.healed(wm_end):
                    m.healed_at = time.time()
            active = matching(alerts, exp.expect_alert, exp.expect_labels, ("pending", "firing"))
            quiet_since = None if active else (quiet_since or now)
            if (m.fired_at is not None and m.fault_ended_at is not None
                    and quiet_since is not None and now - quiet_since >= RESOLVE_CONFIRM_S):
                m.resolved_at = max(quiet_since, m.fault_ended_at)
                log(f"  resolved {m.resolved_at - m.fault_ended_at:.1f} s after the fault ended")
                break
            if m.fired_at is None and now > inj.t0 + exp.max_detect_s and (
                    m.fault_ended_at is not None or now > inj.t0 + exp.duration_s + 60):
                log(f"  {exp.expect_alert} did not fire within {exp.max_detect_s:g} s")
                break
            if (m.fired_at is not None and m.fault_ended_at is not None
                    and now > m.fault_ended_at + exp.max_recover_s):
                log(f"  {exp.expect_alert} still active {exp.max_recover_s:g} s after the fault")
                break
            time.sleep(POLL_S)
    finally:
        inj.cleanup()
    if m.fault_ended_at is None:
        m.fault_ended_at = time.time()
        wm_end = stack.watermark()
    if m.healed_at is None and wm_end is not None:
        m.healed_at = stack.drain(wm_end, DRAIN_S)
    m.checks = inj.verify()
    after = stack.account(DRAIN_S)
    m.lost = max(0, after["lost"] - before["lost"])
    m.duplicates = max(0, after["duplicates"] - before["duplicates"])
    if not after["drained"]:
        m.notes.append(f"the sink had not caught up with the venue after {DRAIN_S:g} s")
    m.details = {"fault": inj.details, "firing_before": already, "alerts": timeline.to_list(),
                 "alerts_fired": timeline.fired(), "lake_before": _brief(before),
                 "lake_after": _brief(after)}
    judge(exp, m)
    log(f"  lost {m.lost}, duplicates {m.duplicates}, healed "
        f"{'-' if m.heal_s is None else f'{m.heal_s:.1f} s'}; other alerts fired: "
        f"{', '.join(a for a in timeline.fired() if a != exp.expect_alert) or 'none'} -> "
        f"{m.status}" + (f" ({'; '.join(m.reasons)})" if m.reasons else ""))
    return m


def _brief(acc: dict[str, Any]) -> dict[str, Any]:
    return {k: acc.get(k) for k in ("published", "stored", "lost", "duplicates", "extra",
                                    "watermark", "drained")}


# --- a whole run --------------------------------------------------------------------------------

@dataclass
class ChaosResult:
    results: list[Measurement]
    run_dir: Path | None = None
    final_lake: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return exit_code(self.results)

    @property
    def markdown(self) -> str:
        return markdown(self.results)


def connect_ray(address: str | None, config: RayConfig | None = None) -> tuple[Any, bool]:
    """Attach (or start a local loopback Ray reporting metrics every 2 s); (session, ours).
    A Ray this process is already attached to (the demo's) is used as it is."""
    import ray

    from spark_ray.app.session import connect

    if ray.is_initialized():
        return None, False
    if not (address or os.environ.get("RAY_ADDRESS") or (config and config.address)):
        os.environ.setdefault(REPORT_INTERVAL_ENV, CANARY_REPORT_MS)
    session = connect(address, config=config, quiet=True)
    return session, session.started_local


def run_experiments(experiments: list[Experiment], work: Path, *, address: str | None = None,
                    ray_config: RayConfig | None = None, stack_cfg: StackConfig | None = None,
                    log: Log = say) -> ChaosResult:
    """Run ``experiments`` in order; ``kill_node`` ones in their multi-node subprocess."""
    preflight(experiments)
    results: dict[str, Measurement] = {}
    local = [e for e in experiments if e.fault.kind != "kill_node"]
    runnable = [e for e in local if not e.missing_requirement()]
    for e in local:
        if (why := e.missing_requirement()) is not None:
            results[e.id] = pending(e, why)
    final: dict[str, Any] = {}
    if runnable:
        _, ours = connect_ray(address, ray_config)
        stack = Stack(work / "stack", stack_cfg, log=lambda s: log(f"  {s}"))
        try:
            log("starting the stack (venue, fabric, control plane, breaker, Prometheus)")
            stack.start()
            loaded = stack.rule_names()
            for i, e in enumerate(runnable, 1):
                log(f"[{i}/{len(runnable)}] {e.id}: {e.description.split('. ')[0].strip()}")
                if e.expect_alert not in loaded:
                    url = stack.client.url if stack.client else ""
                    m = Measurement(e.id, alert=e.expect_alert, status=FAIL,
                                    reasons=[f"alert {e.expect_alert} is not loaded in "
                                             f"Prometheus {url}"])
                else:
                    m = run_experiment(stack, e, log)
                results[e.id] = m
        finally:
            log("stopping the stack; the whole lake against the venue's ground truth")
            final = stack.stop()
            if final:
                log(f"  lake: {final['published']} trades published, {final['stored']} stored, "
                    f"{final['lost']} lost, {final['duplicates']} duplicates")
            if ours:
                from spark_ray.app.session import disconnect

                disconnect()
    for e in experiments:
        if e.fault.kind == "kill_node":
            why = e.missing_requirement()
            results[e.id] = pending(e, why) if why else run_nodekill(e, work / e.id, log)
    return ChaosResult([results[e.id] for e in experiments], final_lake=final)


def run_nodekill(exp: Experiment, work: Path, log: Log = say) -> Measurement:
    """The experiment in ``python -m spark_ray.chaos.nodekill`` (its own 3-node cluster)."""
    work.mkdir(parents=True, exist_ok=True)
    spec = work / "experiment.json"
    result = work / "result.json"
    spec.write_text(json.dumps({"experiment": exp.model_dump(), "source": exp.source}))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    log(f"{exp.id}: a local multi-node cluster in a subprocess (its whole output goes into "
        f"the bundle as {exp.id}-run.log)")
    cmd = [sys.executable, "-m", "spark_ray.chaos.nodekill", "--experiment", str(spec),
           "--work", str(work), "--result", str(result)]
    with audited(AuditLog(), cli_user(), "chaos",
                 {"experiment": exp.id, "fault": "remove a node (local multi-node cluster)",
                  "by": "chaos-runner"}):
        code = _follow(cmd, env, work / "run.log", NODEKILL_TIMEOUT_S)
    if not result.is_file():
        return Measurement(exp.id, alert=exp.expect_alert, status=FAIL,
                           reasons=[f"the multi-node subprocess ended ({code}) without a result"])
    data = json.loads(result.read_text())
    return Measurement.from_dict(data["measurement"])


def _follow(cmd: list[str], env: dict[str, str], log_file: Path, timeout_s: float) -> int:
    """Run ``cmd``: everything it prints goes to ``log_file``, its ``chaos:`` progress lines
    also to our stdout (Ray's own chatter about the killed node stays in the file). Killed
    (by its pid, which we started) if it outlives ``timeout_s``; returns its exit status."""
    import threading

    with log_file.open("w") as sink:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,  # nosec B603  # argv: sys.executable -m our module, our own paths; no shell
                                stdin=subprocess.DEVNULL, text=True, errors="replace")
        timer = threading.Timer(timeout_s, proc.kill)
        timer.start()
        try:
            assert proc.stdout is not None  # nosec B101  # narrows Optional for mypy, not a check
            for line in proc.stdout:
                sink.write(line)
                if line.startswith("chaos:"):
                    print(line, end="", flush=True)
            return proc.wait()
        finally:
            timer.cancel()


def run_chaos(experiments: list[Experiment], out: Path, *, address: str | None = None,
              ray_config: RayConfig | None = None, stack_cfg: StackConfig | None = None,
              command: list[str] | None = None,
              keep_work: bool = False, log: Log = say) -> ChaosResult:
    """Run and write the evidence bundle (table in Markdown and JSON, one JSON per experiment,
    Prometheus config and rules, the venue's fault log, the experiments as declared)."""
    from spark_ray.evidence import create_run

    preflight(experiments)
    run = create_run(Path(out), command or sys.argv,
                     {"experiments": [e.id for e in experiments], "address": address,
                      "stack": (stack_cfg or StackConfig()).__dict__})
    work = Path(tempfile.mkdtemp(prefix="spark-ray-chaos-"))
    code = 1
    try:
        res = run_experiments(experiments, work, address=address, ray_config=ray_config,
                              stack_cfg=stack_cfg, log=log)
        res.run_dir = run.path
        code = res.exit_code
        _write_bundle(run, experiments, res, work)
        print(res.markdown, flush=True)
        log(f"evidence: {run.path}")
        return res
    finally:
        run.exit_code = code
        run.finish(exit_code=code)
        if not keep_work:
            shutil.rmtree(work, ignore_errors=True)


def _write_bundle(run: Any, experiments: list[Experiment], res: ChaosResult,
                  work: Path) -> None:
    run.file("chaos-table.md", "the canary's table: detection, recovery, heal, loss per "
                               "experiment").write_text(res.markdown)
    run.file("chaos-table.json", "the same table as JSON (exit_code: 1 if any failed)") \
        .write_text(table_json(res.results))
    for m in res.results:
        run.write_json(f"experiments/{m.experiment}.json", m.to_dict(),
                       f"{m.experiment}: measurement, alert timeline, checks, lake accounting")
    for e in experiments:
        src = Path(e.source)
        if src.is_file():
            run.add(src, f"{e.id}: the experiment as declared", name=f"declared/{src.name}")
    if res.final_lake:
        run.write_json("lake-final.json", res.final_lake,
                       "the whole lake against the venue's ground truth at the end")
    stack = work / "stack"
    for name, desc in (("prometheus/prometheus.yml", "the Prometheus config the canary ran"),
                       ("venue-fault-log.json", "every fault the venue applied, with times")):
        if (stack / name).is_file():
            run.add(stack / name, desc, name=Path(name).name)
    rules = stack / "prometheus" / "rules"
    if rules.is_dir():
        for r in sorted(rules.glob("*.yml")):
            run.add(r, "alert rules loaded by the canary's Prometheus", name=f"rules/{r.name}")
    for e in experiments:
        for rel, name, desc in (("stack/venue-fault-log.json", f"{e.id}-venue-fault-log.json",
                                 "the venue's fault log (multi-node run)"),
                                ("run.log", f"{e.id}-run.log",
                                 "everything the multi-node subprocess printed")):
            if (work / e.id / rel).is_file():
                run.add(work / e.id / rel, f"{e.id}: {desc}", name=name)
