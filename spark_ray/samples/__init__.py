"""Real sample market data shipped with the package (see README.md here for the source)."""

from __future__ import annotations

from pathlib import Path

SAMPLES = Path(__file__).resolve().parent / "real"


def sample(name: str) -> Path:
    """Path of a shipped sample file, e.g. ``sample("ETH_BTC-5m.feather")``."""
    path = SAMPLES / name
    if not path.is_file():
        known = ", ".join(sorted(p.name for p in SAMPLES.iterdir()))
        raise FileNotFoundError(f"no sample {name!r}; shipped: {known}")
    return path
