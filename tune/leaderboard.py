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

    @classmethod
    def from_results(cls, strategy: str, results: Any, scenarios: list[str],
                     folds: int) -> Leaderboard:
        rows = []
        for r in results:
            m = r.metrics or {}
            if "objective" not in m:
                continue
            params = {k: v for k, v in (r.config or {}).items()}
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
        return cls(strategy, rows, scenarios)

    @property
    def valid(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if not r["invalid"] and r["objective"] > INVALID]

    def table(self, top: int = 10) -> str:
        names = list(self.rows[0]["params"]) if self.rows else []
        head = (f"{'rank':>4} {'objective':>10} " + " ".join(f"{n:>10}" for n in names)
                + " " + " ".join(f"{s[:12]:>12}" for s in self.scenarios))
        lines = [head, "-" * len(head)]
        for r in self.rows[:top]:
            params = " ".join(f"{r['params'][n]!s:>10}" for n in names)
            sc = " ".join(f"{r['scenarios'].get(s, {}).get('oos_sharpe', float('nan')):>12.3f}"
                          for s in self.scenarios)
            flag = " (stopped early)" if r["stopped_early"] else " (invalid)" if r["invalid"] \
                else ""
            lines.append(f"{r['rank']:>4} {r['objective']:>10.4f} {params} {sc}{flag}")
        lines.append(f"({len(self.rows)} trials; per-scenario columns: out-of-sample Sharpe)")
        return "\n".join(lines)

    def save(self, directory: Path) -> dict[str, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        paths = {"leaderboard.json": directory / "leaderboard.json",
                 "leaderboard.csv": directory / "leaderboard.csv",
                 "leaderboard.png": directory / "leaderboard.png"}
        paths["leaderboard.json"].write_text(json.dumps(
            {"strategy": self.strategy, "scenarios": self.scenarios, "trials": self.rows},
            indent=2, sort_keys=True, default=str) + "\n")
        names = list(self.rows[0]["params"]) if self.rows else []
        metric_keys = ["is_sharpe", "oos_sharpe", "is_return", "oos_return", "oos_max_drawdown",
                       "oos_trades"]
        with paths["leaderboard.csv"].open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["rank", "objective", "folds_done", "stopped_early", "invalid", *names,
                        *[f"{s}.{k}" for s in self.scenarios for k in metric_keys]])
            for r in self.rows:
                w.writerow([r["rank"], repr(r["objective"]), r["folds_done"], r["stopped_early"],
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
        cols = max(len(numeric), 1) + 1
        fig, axes = plt.subplots(1, cols, figsize=(4.2 * cols, 3.6))
        axes = np.atleast_1d(axes)
        obj = np.array([r["objective"] for r in valid])
        if not numeric:
            axes[0].axis("off")
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
