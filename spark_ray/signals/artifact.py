"""A trained signal model as files an operator can review, approve and verify.

``model.txt`` is LightGBM's own text format (readable, diffable, no pickle); ``model.json``
says what it is: the feature list in order with each feature's definition, the training data's
fingerprint and shape, the labelling, the out-of-fold report with its baselines, library
versions and the sha256 of ``model.txt``. :func:`load` refuses a model whose file no longer
matches its hash, so what is served is what was reviewed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from spark_ray.signals.inventory import signal

MODEL_FILE = "model.txt"
CARD_FILE = "model.json"
KIND = "spark-ray signal model"


class TamperedModel(ValueError):
    """The model file's sha256 is not the one its card records."""


def _versions() -> dict[str, str]:
    import lightgbm
    import sklearn

    from spark_ray import __version__

    return {"spark_ray": __version__, "lightgbm": lightgbm.__version__,
            "scikit_learn": sklearn.__version__, "numpy": np.__version__}


def save(model: Any, folder: Path, features: list[str], training: dict[str, Any],
         report: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Write ``model.txt`` and ``model.json`` into ``folder``; returns the card."""
    folder.mkdir(parents=True, exist_ok=True)
    text = model.booster_.model_to_string()
    (folder / MODEL_FILE).write_text(text)
    card = {
        "kind": KIND, "model": "gbm", "params": params,
        "features": [{"name": n, "definition": repr(signal(n).feature)} for n in features],
        "training": training, "report": report, "versions": _versions(),
        "model_file": MODEL_FILE,
        "model_sha256": hashlib.sha256(text.encode()).hexdigest(),
    }
    (folder / CARD_FILE).write_text(json.dumps(card, indent=2, default=float))
    return card


class LoadedModel:
    """The served model: scores rows of features in the card's order."""

    def __init__(self, card: dict[str, Any], booster: Any) -> None:
        self.card, self.booster = card, booster
        self.features = [f["name"] for f in card["features"]]

    def predict(self, X: np.ndarray, threads: int = 0) -> np.ndarray:
        """P(up) per row. ``threads=1`` for the live path's small batches: LightGBM's OpenMP
        threads otherwise wait for a busy core, which shows in the latency's tail."""
        out: np.ndarray = self.booster.predict(np.atleast_2d(X), num_threads=threads)
        return out


def load(folder: Path) -> LoadedModel:
    """Read a model folder, verifying the sha256 and that every feature is still defined the
    same way as when it was trained."""
    import lightgbm

    card = json.loads((folder / CARD_FILE).read_text())
    if card.get("kind") != KIND:
        raise ValueError(f"{folder / CARD_FILE}: not a {KIND}")
    text = (folder / card["model_file"]).read_text()
    digest = hashlib.sha256(text.encode()).hexdigest()
    if digest != card["model_sha256"]:
        raise TamperedModel(f"{folder / card['model_file']}: sha256 {digest[:12]}... is not "
                            f"the recorded {card['model_sha256'][:12]}...: refusing to serve it")
    for f in card["features"]:
        now = repr(signal(f["name"]).feature)
        if now != f["definition"]:
            raise ValueError(f"feature {f['name']}: trained as {f['definition']}, now {now}")
    return LoadedModel(card, lightgbm.Booster(model_str=text))
