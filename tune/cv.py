"""Cross-validation schemes for the optimizer: which bars each fold trains and tests on.

- ``walkforward`` (the lab's original): the bars split into ``folds + 1`` equal segments; fold k
  trains on segment k and tests on segment k+1 (rolling).
- ``purged``: purged k-fold with an embargo (Marcos López de Prado, *Advances in Financial
  Machine Learning*, Wiley 2018, ch. 7.4): ``folds`` contiguous groups; each is the test set
  once, trained on the rest, minus ``purge`` of the bars right before the test block (their
  outcomes overlap it) and ``embargo`` right after it (serial correlation leaks the test set
  into what follows it).
- ``cpcv``: combinatorial purged cross-validation (same book, ch. 12.4): ``folds`` groups, every
  choice of ``test_groups`` of them is a split's test set (C(N, k) splits), purged and embargoed
  around each test group; each group is tested C(N-1, k-1) times, which gives that many
  complete backtest paths instead of walk-forward's one.

A strategy here has no fitted state, so "training" is the in-sample performance the optimizer
sees and "testing" the out-of-sample performance it must hold. Every window is its own
backtest (flat at its start), as in the walk-forward.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from spark_ray.errors import UserError
from spark_ray.tune.walkforward import Fold, Window, split

CV_KINDS = ("walkforward", "purged", "cpcv")
MAX_SPLITS = 200  # a sweep evaluates every split for every trial: keep it bounded
MIN_WINDOW = 2  # bars: a window shorter than this has no return


@dataclass(frozen=True)
class CVScheme:
    """How a scenario's bars are split into folds (see the module docstring)."""

    kind: Literal["walkforward", "purged", "cpcv"] = "walkforward"
    folds: int = 4  # walk-forward folds; purged k-fold's k; CPCV's number of groups N
    test_groups: int = 2  # CPCV: groups in each split's test set (k)
    purge: float = 0.01  # purged/CPCV: share of the bars dropped before each test block
    embargo: float = 0.01  # purged/CPCV: share of the bars dropped after each test block

    def __post_init__(self) -> None:
        if self.kind not in CV_KINDS:
            raise UserError(f"--cv: {self.kind!r}; expected one of {', '.join(CV_KINDS)}")
        low = 1 if self.kind == "walkforward" else 2 if self.kind == "purged" else 3
        if not low <= self.folds <= 50:
            raise UserError(f"--folds: {self.folds} must be between {low} and 50 for "
                            f"--cv {self.kind}")
        if self.kind == "cpcv":
            if not 1 <= self.test_groups < self.folds:
                raise UserError(f"--test-groups: {self.test_groups} must be between 1 and "
                                f"--folds - 1 ({self.folds - 1})")
            if math.comb(self.folds, self.test_groups) > MAX_SPLITS:
                raise UserError(f"--folds/--test-groups: C({self.folds}, {self.test_groups}) = "
                                f"{math.comb(self.folds, self.test_groups)} splits; the limit "
                                f"is {MAX_SPLITS}")
        for flag, value in (("--purge", self.purge), ("--embargo", self.embargo)):
            if not 0 <= value < 0.2:
                raise UserError(f"{flag}: {value} must be in [0, 0.2) (a share of the bars)")

    @property
    def n_splits(self) -> int:
        if self.kind == "cpcv":
            return math.comb(self.folds, self.test_groups)
        return self.folds

    @property
    def paths(self) -> int:
        """Complete out-of-sample paths: one, or C(N-1, k-1) for CPCV."""
        if self.kind == "cpcv":
            return math.comb(self.folds - 1, self.test_groups - 1)
        return 1

    def describe(self) -> str:
        if self.kind == "walkforward":
            return f"rolling walk-forward, {self.folds} folds"
        extra = f"purge {self.purge:.1%}, embargo {self.embargo:.1%}"
        if self.kind == "purged":
            return f"purged {self.folds}-fold, {extra}"
        return (f"combinatorial purged CV, {self.folds} groups, {self.test_groups} in test: "
                f"{self.n_splits} splits, {self.paths} paths, {extra}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def splits(self, n: int) -> list[Fold]:
        """The folds over ``n`` bars; ValueError when the bars are too few."""
        if self.kind == "walkforward":
            return [Fold((tr,), (te,)) for tr, te in split(n, self.folds)]
        groups = _groups(n, self.folds)
        k = 1 if self.kind == "purged" else self.test_groups
        purge, embargo = round(n * self.purge), round(n * self.embargo)
        out = []
        for test_ids in itertools.combinations(range(len(groups)), k):
            test = tuple(groups[i] for i in test_ids)
            train = _train_windows(n, test, purge, embargo)
            if not train:
                raise ValueError(f"{n} bars leave no training window after purge and embargo")
            out.append(Fold(train, test))
        return out


def _groups(n: int, count: int) -> list[Window]:
    """``count`` contiguous groups of (nearly) equal size covering all n bars."""
    if n // count < MIN_WINDOW * 2:
        raise ValueError(f"{n} bars are too few for {count} cross-validation groups")
    edges = [round(i * n / count) for i in range(count + 1)]
    return [Window(edges[i], edges[i + 1]) for i in range(count)]


def _train_windows(n: int, test: tuple[Window, ...], purge: int,
                   embargo: int) -> tuple[Window, ...]:
    """The bars outside every test window, less ``purge`` bars before and ``embargo`` after
    each, as contiguous windows of at least two bars."""
    cut = sorted((max(0, w.start - purge), min(n, w.end + embargo)) for w in test)
    out: list[Window] = []
    pos = 0
    for lo, hi in cut:
        if lo - pos >= MIN_WINDOW:
            out.append(Window(pos, lo))
        pos = max(pos, hi)
    if n - pos >= MIN_WINDOW:
        out.append(Window(pos, n))
    return tuple(out)
