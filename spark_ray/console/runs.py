"""The runs folder as the research and chaos pages show it: backtests, leaderboards, reviews,
approvals, canary tables and evidence bundles.

A run is a folder directly under the root (``spark-ray demo``, ``backtest``, ``optimize`` and
``chaos run`` each write one); its parts are recognised by the files the commands write, in the
folder itself or one level down (the demo keeps ``backtest/``, ``optimize/``, ``chaos/``).
Parsed files are cached by (path, size, mtime), so a folder of 100 runs and 1,000 trials lists
in milliseconds after the first read, and a changed file is read again.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from spark_ray.errors import CheckFailed, UserError
from spark_ray.evidence import MANIFEST, verify_folder

# File name -> the part of a run it marks.
PARTS = {"report.json": "backtest", "leaderboard.json": "optimization",
         "risk-report.json": "review", "approved.json": "approval",
         "chaos-table.json": "chaos"}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
MAX_TRADES = 2000  # rows of a backtest's trades table sent to a page
MAX_POINTS = 5000  # points of a backtest's chart (evenly thinned beyond)


class NotFound(UserError):
    """No such run, part or bundle (HTTP 404)."""


@dataclass
class _Cached:
    key: tuple[int, int]
    value: Any


class RunsFolder:
    """Reads (never writes, except approvals) the runs under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self._cache: dict[Path, _Cached] = {}

    # --- files ---------------------------------------------------------------------------
    def _load(self, path: Path, parse: Any) -> Any:
        st = path.stat()
        key = (st.st_size, st.st_mtime_ns)
        hit = self._cache.get(path)
        if hit is not None and hit.key == key:
            return hit.value
        value = parse(path)
        self._cache[path] = _Cached(key, value)
        return value

    def _json(self, path: Path) -> Any:
        return self._load(path, lambda p: json.loads(p.read_text()))

    def run_dir(self, run_id: str) -> Path:
        if not _ID.match(run_id or ""):
            raise NotFound(f"run {run_id!r}: not a run id")
        path = self.root / run_id
        if not path.is_dir():
            raise NotFound(f"run {run_id!r}: no such run under {self.root}")
        return path

    def parts(self, run: Path) -> dict[str, Path]:
        """Part name -> the file that marks it (the run folder first, then one level down)."""
        found: dict[str, Path] = {}
        for folder in [run, *sorted(p for p in run.iterdir() if p.is_dir())]:
            for name, part in PARTS.items():
                f = folder / name
                if part not in found and f.is_file():
                    found[part] = f
        if (run / MANIFEST).is_file():
            found["evidence"] = run / MANIFEST
        return found

    # --- listing -------------------------------------------------------------------------
    def list(self) -> dict[str, Any]:
        runs = []
        if self.root.is_dir():
            for run in sorted((p for p in self.root.iterdir() if p.is_dir()
                               and _ID.match(p.name)), key=lambda p: p.name, reverse=True):
                parts = self.parts(run)
                if parts:
                    runs.append({"id": run.name, "created": _created(run),
                                 "kinds": sorted(parts), "summary": self._summary(parts)})
        return {"root": str(self.root), "count": len(runs), "runs": runs}

    def _summary(self, parts: dict[str, Path]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for part, path in parts.items():
            try:
                if part == "backtest":
                    r = self._json(path)
                    m = r.get("metrics", {})
                    out[part] = {"strategy": r.get("strategy"), "symbols": r.get("symbols"),
                                 "sharpe": m.get("sharpe"), "total_return": m.get("total_return"),
                                 "trades": m.get("trades")}
                elif part == "optimization":
                    b = self._json(path)
                    trials = b.get("trials") or []
                    best = min(trials, key=lambda t: t.get("rank") or 1e9) if trials else {}
                    pbo = ((b.get("overfitting") or {}).get("pbo") or {}).get("pbo")
                    out[part] = {"strategy": b.get("strategy"), "trials": len(trials),
                                 "best_objective": best.get("objective"), "pbo": pbo}
                elif part == "review":
                    out[part] = {"verdict": self._json(path).get("verdict")}
                elif part == "approval":
                    a = self._json(path)
                    out[part] = {"approved_by": a.get("approved_by"),
                                 "approved_at": a.get("approved_at")}
                elif part == "chaos":
                    rows = self._json(path).get("rows") or []
                    out[part] = {"experiments": len(rows),
                                 "failed": sum(r.get("status") != "PASS" for r in rows)}
            except (OSError, ValueError) as exc:
                out[part] = {"error": f"{path.name}: {exc}"}
        return out

    # --- one run -------------------------------------------------------------------------
    def detail(self, run_id: str) -> dict[str, Any]:
        run = self.run_dir(run_id)
        parts = self.parts(run)
        doc: dict[str, Any] = {"id": run_id, "created": _created(run), "kinds": sorted(parts)}
        if "backtest" in parts:
            doc["backtest"] = self._backtest(parts["backtest"])
        if "optimization" in parts:
            b = self._json(parts["optimization"])
            pbo = (b.get("overfitting") or {}).get("pbo") or {}
            doc["optimization"] = {"strategy": b.get("strategy"),
                                   "scenarios": b.get("scenarios") or [],
                                   "pbo": pbo.get("pbo"), "pbo_splits": pbo.get("splits"),
                                   "trials": sorted(b.get("trials") or [],
                                                    key=lambda t: t.get("rank") or 1e9)}
        if "review" in parts:
            r = self._json(parts["review"])
            doc["review"] = {k: r.get(k) for k in ("verdict", "checks", "strategy", "params",
                                                   "reviewed", "holdout", "rules")}
        if "approval" in parts:
            doc["approval"] = self._json(parts["approval"])
        doc["approvable"] = ("review" in parts and "approval" not in parts
                             and doc["review"]["verdict"] == "PASS"
                             and (parts["review"].parent / "best.json").is_file())
        return doc

    def _backtest(self, report_path: Path) -> dict[str, Any]:
        r = self._json(report_path)
        folder = report_path.parent
        out: dict[str, Any] = {k: r.get(k) for k in ("strategy", "symbols", "interval",
                                                     "params", "metrics", "orders",
                                                     "benchmark_buy_and_hold")}
        eq = folder / "equity.csv"
        out["equity"] = self._load(eq, _equity_series) if eq.is_file() else None
        tr = folder / "trades.csv"
        trades = self._load(tr, _read_csv) if tr.is_file() else []
        out["trades_total"] = len(trades)
        out["trades"] = trades[:MAX_TRADES]
        return out

    def approve(self, run_id: str, who: str, note: str, keys_dir: str | None = None
                ) -> dict[str, Any]:
        """``params approve`` from the page: only a passed review of an unchanged candidate,
        signed with the key of the approver ``who`` from ``keys_dir`` on the console's node
        (UserError when that approver has no key there: the page cannot approve for someone
        whose key it does not hold)."""
        from spark_ray.approval.approved import approve
        from spark_ray.approval.signing import load_signer

        parts = self.parts(self.run_dir(run_id))
        if "review" not in parts:
            raise NotFound(f"run {run_id}: has no review to approve")
        report = parts["review"]
        best = report.parent / "best.json"
        target = report.parent / "approved.json"
        if target.exists():
            raise CheckFailed(f"run {run_id}: already approved ({target.name})")
        if not best.is_file():
            raise NotFound(f"run {run_id}: no best.json beside {report.name}")
        signer = load_signer(who, Path(keys_dir) if keys_dir else None)
        approved = approve(best, report, signer, note)
        target.write_text(json.dumps(approved, indent=2, sort_keys=True) + "\n")
        return approved

    # --- chaos and evidence --------------------------------------------------------------
    def chaos(self) -> dict[str, Any]:
        """The newest canary table (runs are named by time, newest first)."""
        for run in self.list()["runs"]:
            if "chaos" in run["kinds"]:
                path = self.parts(self.root / run["id"])["chaos"]
                return {"run": run["id"], "file": str(path.relative_to(self.root)),
                        "table": self._json(path)}
        return {"run": None, "table": None}

    def bundles(self) -> dict[str, Any]:
        out = []
        for run in self.list()["runs"]:
            if "evidence" in run["kinds"]:
                folder = self.root / run["id"]
                index = folder / "INDEX.txt"
                manifest = self._json(folder / MANIFEST)
                out.append({"id": run["id"], "files": len(manifest),
                            "index": index.read_text()[:200_000] if index.is_file() else ""})
        return {"bundles": out}

    def verify(self, run_id: str) -> dict[str, Any]:
        folder = self.run_dir(run_id)
        if not (folder / MANIFEST).is_file():
            raise NotFound(f"run {run_id}: not an evidence bundle (no {MANIFEST})")
        try:
            rep = verify_folder(folder)
        except CheckFailed as exc:  # the manifest itself is damaged
            return {"id": run_id, "ok": False, "checked": 0, "tampered": [MANIFEST],
                    "missing": [], "extra": [], "error": str(exc)}
        return {"id": run_id, "ok": rep.ok, "checked": rep.checked, "tampered": rep.modified,
                "missing": rep.missing, "extra": rep.unexpected}


def _created(run: Path) -> str:
    meta = run / "run.json"
    try:
        started = json.loads(meta.read_text()).get("started") if meta.is_file() else None
    except (OSError, ValueError):
        started = None
    if isinstance(started, str):
        return started
    return datetime.fromtimestamp(run.stat().st_mtime, UTC).isoformat()


def _read_csv(path: Path) -> list[dict[str, Any]]:
    with path.open(newline="") as fh:
        return [{k: _cell(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def _cell(v: str | None) -> Any:
    if v is None or v == "":
        return None
    try:
        return float(v)
    except ValueError:
        return v


def _equity_series(path: Path) -> dict[str, Any]:
    """Columns of equity.csv for a chart: epoch seconds, equity, and each ``close_<SYM>``
    (the price line, when the backtest wrote one); thinned evenly to MAX_POINTS."""
    rows = _read_csv(path)
    step = max(1, -(-len(rows) // MAX_POINTS))
    rows = rows[::step]
    out: dict[str, Any] = {"time": [_epoch(r["time"]) for r in rows],
                           "equity": [r.get("equity") for r in rows]}
    closes = [k for k in (rows[0] if rows else {}) if k.startswith("close_")]
    if closes:
        out["price"] = [r.get(closes[0]) for r in rows]
        out["price_symbol"] = closes[0][len("close_"):]
    return out


def _epoch(v: Any) -> float | None:
    if isinstance(v, float):
        return v / 1000.0 if v > 1e11 else v
    if isinstance(v, str):
        return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
    return None
