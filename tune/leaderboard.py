"""Leaderboard and best.json: every trial ranked, the winners with what reproduces them."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spark_ray.tune.trainable import INVALID


@dataclass
class Leaderboard:
    strategy: str
    rows: list[dict[str, Any]]  # ranked, best first
    scenarios: list[str]
    best: dict[str, Any] = field(default_factory=dict)
    experiment_path: str = ""
    # trial id -> scenario -> [[first bar, per-period returns], ...] of its out-of-sample windows
    returns: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    overfit: dict[str, Any] = field(default_factory=dict)  # tune.overfit.overfitting(...)
    period_ms: int = 0
    matrix: Any = None  # T x N out-of-sample returns of the trials in matrix_ids
    matrix_ids: list[str] = field(default_factory=list)

    @classmethod
    def from_results(cls, strategy: str, results: Any, scenarios: list[str],
                     folds: int) -> Leaderboard:
        rows = []
        returns: dict[str, dict[str, list[Any]]] = {}
        for r in results:
            m = r.metrics or {}
            if "objective" not in m:
                continue
            params = {k: v for k, v in (r.config or {}).items()}
            if m.get("oos_returns"):
                returns[str(m.get("trial_id", ""))] = m["oos_returns"]
            rows.append({
                "trial_id": m.get("trial_id", ""),
                "params": params,
                "objective": float(m["objective"]),
                "folds_done": int(m.get("fold", 0)),
                "stopped_early": int(m.get("fold", 0)) < folds and not m.get("invalid"),
                "invalid": m.get("invalid", ""),
                "scenarios": m.get("scenarios", {}),
            })
        # Full walk-forwards outrank early-stopped ones; then by objective.
        rows.sort(key=lambda x: (x["folds_done"] == folds, x["objective"]), reverse=True)
        for i, row in enumerate(rows, start=1):
            row["rank"] = i
        return cls(strategy, rows, scenarios, returns=returns)

    def assess_overfitting(self, period_ms: int, pbo_splits: int = 16) -> dict[str, Any]:
        """Every trial's deflated Sharpe ratio beside its raw one, and the experiment's PBO,
        from the returns the trials recorded (no backtest re-run)."""
        from spark_ray.tune.overfit import overfitting, returns_matrix

        matrix, ids = returns_matrix(self.rows, self.returns, self.scenarios)
        self.period_ms = period_ms
        self.overfit = overfitting(matrix, ids, len(self.valid), period_ms, pbo_splits)
        self.matrix, self.matrix_ids = matrix, ids
        for r in self.rows:
            t = self.overfit["trials"].get(r["trial_id"], {})
            r["oos_sharpe_ann"] = t.get("sharpe_annualized")
            r["dsr"] = t.get("dsr")
        return self.overfit

    def overfitting_summary(self) -> dict[str, Any]:
        """What best.json keeps: PBO without its logits, the inputs, the winner's DSR."""
        from spark_ray.tune.overfit import RETURNS_FILE, candidate

        o = self.overfit
        top = self.best.get("overall", {}).get("trial_id") if self.best else None
        return {"n_trials": o.get("n_trials"), "trials_with_returns": o.get("trials_with_returns"),
                "periods": o.get("periods"), "period": o.get("period"),
                "sr_variance": o.get("sr_variance"), "pbo": o.get("pbo"),
                "reason": o.get("reason"), "returns_file": RETURNS_FILE,
                "candidate": candidate(o, top) if top else None}

    @property
    def valid(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if not r["invalid"] and r["objective"] > INVALID]

    def table(self, top: int = 10) -> str:
        names = list(self.rows[0]["params"]) if self.rows else []
        head = (f"{'rank':>4} {'objective':>10} {'OOS SR':>7} {'DSR':>5} "
                + " ".join(f"{n:>10}" for n in names)
                + " " + " ".join(f"{s[:12]:>12}" for s in self.scenarios))
        lines = [head, "-" * len(head)]
        for r in self.rows[:top]:
            params = " ".join(f"{r['params'][n]!s:>10}" for n in names)
            sc = " ".join(f"{r['scenarios'].get(s, {}).get('oos_sharpe', float('nan')):>12.3f}"
                          for s in self.scenarios)
            flag = " (stopped early)" if r["stopped_early"] else " (invalid)" if r["invalid"] \
                else ""
            lines.append(f"{r['rank']:>4} {r['objective']:>10.4f} {_num(r.get('oos_sharpe_ann'))}"
                         f" {_num(r.get('dsr'), 5, '.2f')} {params} {sc}{flag}")
        lines.append(f"({len(self.rows)} trials; OOS SR: annualized Sharpe of the out-of-sample "
                     "returns, DSR: its deflated Sharpe ratio; per-scenario columns: "
                     "out-of-sample Sharpe)")
        pbo = (self.overfit or {}).get("pbo")
        if pbo:
            lines.append(f"probability of backtest overfitting (CSCV, {pbo['splits']} blocks, "
                         f"{pbo['n_combinations']} combinations): {pbo['pbo']:.2f}")
        return "\n".join(lines)

    def save(self, directory: Path) -> dict[str, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        paths = {"leaderboard.json": directory / "leaderboard.json",
                 "leaderboard.csv": directory / "leaderboard.csv",
                 "leaderboard.png": directory / "leaderboard.png"}
        if self.matrix is not None and self.matrix.size:
            from spark_ray.tune.overfit import RETURNS_FILE, save_matrix

            paths[RETURNS_FILE] = directory / RETURNS_FILE
            sha = save_matrix(paths[RETURNS_FILE], self.matrix, self.matrix_ids, self.period_ms,
                              self.scenarios)
            if self.best.get("overfitting"):
                self.best["overfitting"]["returns_sha256"] = sha
        paths["leaderboard.json"].write_text(json.dumps(
            {"strategy": self.strategy, "scenarios": self.scenarios, "trials": self.rows,
             "overfitting": self.overfit},
            indent=2, sort_keys=True, default=str) + "\n")
        names = list(self.rows[0]["params"]) if self.rows else []
        metric_keys = ["is_sharpe", "oos_sharpe", "is_return", "oos_return", "oos_max_drawdown",
                       "oos_trades"]
        with paths["leaderboard.csv"].open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["rank", "objective", "oos_sharpe_ann", "dsr", "folds_done",
                        "stopped_early", "invalid", *names,
                        *[f"{s}.{k}" for s in self.scenarios for k in metric_keys]])
            for r in self.rows:
                w.writerow([r["rank"], repr(r["objective"]), _cell(r.get("oos_sharpe_ann")),
                            _cell(r.get("dsr")), r["folds_done"], r["stopped_early"],
                            r["invalid"], *[r["params"].get(n) for n in names],
                            *[r["scenarios"].get(s, {}).get(k, "") for s in self.scenarios
                              for k in metric_keys]])
        self._plot(paths["leaderboard.png"], names)
        if self.best:
            paths["best.json"] = directory / "best.json"
            paths["best.json"].write_text(json.dumps(self.best, indent=2, sort_keys=True)
                                          + "\n")
        return paths

    def _plot(self, path: Path, names: list[str]) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np

        valid = self.valid
        numeric = [n for n in names if valid and all(isinstance(r["params"][n], int | float)
                                                     for r in valid)]
        logits = (self.overfit or {}).get("pbo_logits") or []
        cols = max(len(numeric), 1) + 1 + (1 if logits else 0)
        fig, axes = plt.subplots(1, cols, figsize=(4.2 * cols, 3.6))
        axes = np.atleast_1d(axes)
        obj = np.array([r["objective"] for r in valid])
        if not numeric:
            axes[0].axis("off")
        if logits:
            self._plot_logits(axes[-1], np.asarray(logits, dtype=float))
            axes = axes[:-1]
        for ax, n in zip(axes[:-1], numeric, strict=False):
            x = np.array([r["params"][n] for r in valid], dtype=float)
            sc = ax.scatter(x, obj, c=obj, cmap="viridis", s=18)
            ax.set_xlabel(n)
            ax.set_ylabel("objective")
            fig.colorbar(sc, ax=ax)
        ax = axes[-1]
        top = valid[:10]
        width = 0.8 / max(len(self.scenarios), 1)
        for k, s in enumerate(self.scenarios):
            ax.bar(np.arange(len(top)) + k * width,
                   [r["scenarios"].get(s, {}).get("oos_sharpe", 0.0) for r in top], width,
                   label=s)
        ax.set_xticks(np.arange(len(top)) + 0.4 - width / 2, [f"#{r['rank']}" for r in top])
        ax.set_title("out-of-sample Sharpe, top trials", fontsize=9)
        ax.legend(fontsize=7)
        fig.suptitle(f"{self.strategy}: objective over the parameter space", fontsize=10)
        fig.tight_layout()
        fig.savefig(path, dpi=90, metadata={"Software": None})
        plt.close(fig)

    def _plot_logits(self, ax: Any, logits: Any) -> None:
        """CSCV's logit distribution: mass left of 0 is the probability of overfitting."""
        import numpy as np

        pbo = self.overfit["pbo"]["pbo"]
        finite = logits[np.isfinite(logits)]
        ax.hist(finite, bins=min(40, max(10, len(set(finite.round(6))))), color="#4c72b0",
                alpha=0.85)
        ax.axvline(0.0, color="#c44e52", lw=1.5)
        ax.set_xlabel("logit of the IS winner's OOS relative rank")
        ax.set_ylabel("combinations")
        ax.set_title(f"PBO = {pbo:.2f} ({len(logits)} CSCV combinations)", fontsize=9)


def _num(x: Any, width: int = 7, fmt: str = ".2f") -> str:
    return f"{'-':>{width}}" if x is None else f"{x:>{width}{fmt}}"


def _cell(x: Any) -> str:
    return "" if x is None else repr(float(x))
