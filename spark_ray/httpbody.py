"""Request bodies and fields read for our HTTP endpoints: a bad one is a ``ValueError`` whose
message names the problem (``body: not valid JSON ...``, ``count: a number from 1 to 1000000``),
which the handler answers as a 400; never a 500 (unknown charset, JSON nested too deep, a number
too large for an int, NaN or infinity).
"""

from __future__ import annotations

import json
import math
from typing import Any

from spark_ray.logratelimit import one_line


def json_object(raw: bytes, charset: str | None = None, *, empty: bool = False
                ) -> dict[str, Any]:
    """The JSON object ``raw`` holds (``{}`` for an empty body when ``empty``)."""
    if empty and not raw.strip():
        return {}
    encoding = charset or "utf-8"
    try:
        text = raw.decode(encoding)
    except LookupError:
        raise ValueError(f"body: unknown charset {one_line(encoding, 40)!r}") from None
    except UnicodeDecodeError:
        raise ValueError(f"body: not valid {one_line(encoding, 40)} text") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"body: not valid JSON ({e.msg} at line {e.lineno} column "
                         f"{e.colno})") from None
    except RecursionError:
        raise ValueError("body: not valid JSON (nested too deeply)") from None
    if not isinstance(doc, dict):
        raise ValueError("body: expected a JSON object")
    return doc


def number(doc: dict[str, Any], name: str, default: float, lo: float, hi: float) -> float:
    """``doc[name]`` (``default`` when absent) as a finite number in [lo, hi]; a numeric string
    counts, a bool does not."""
    value = doc.get(name, default)
    why = f"{name}: a number from {lo:g} to {hi:g}"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(why)
    try:
        x = float(value)
    except (ValueError, OverflowError):
        raise ValueError(why) from None
    if not math.isfinite(x) or not lo <= x <= hi:
        raise ValueError(why)
    return x
