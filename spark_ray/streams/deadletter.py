"""Dead-letter store: every frame the normalizer could not accept, with why, kept for inspection.

JSON lines under ``<root>/_deadletter/<exchange>/<writer>.jsonl``: receive time, reason, stream,
size, sha256 and the first ``keep_bytes`` of the frame (hex when it is not UTF-8). One append per
batch; the file rolls over at ``max_bytes`` so a malformed flood cannot fill the disk.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from spark_ray.adapters.events import DeadLetter


def encode(d: DeadLetter, keep_bytes: int = 2048) -> dict[str, Any]:
    head = d.raw[:keep_bytes]
    try:
        text, enc = head.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, enc = head.hex(), "hex"
    return {"recv_ms": d.recv_ms, "reason": d.reason, "stream": d.stream, "size": len(d.raw),
            "sha256": hashlib.sha256(d.raw).hexdigest(), "encoding": enc,
            "truncated": len(d.raw) > keep_bytes, "frame": text}


class DeadLetterStore:
    def __init__(self, directory: str | os.PathLike[str], writer: str,
                 max_bytes: int = 64 * 1024 * 1024, keep_bytes: int = 2048) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / f"{writer}.jsonl"
        self.max_bytes = max_bytes
        self.keep_bytes = keep_bytes
        self.written = 0

    def append(self, letters: Iterable[DeadLetter]) -> int:
        lines = [json.dumps(encode(d, self.keep_bytes), separators=(",", ":")) + "\n"
                 for d in letters]
        if not lines:
            return 0
        if self.path.exists() and self.path.stat().st_size > self.max_bytes:
            self.path.replace(self.path.with_suffix(".jsonl.1"))
        with open(self.path, "a", encoding="utf-8") as f:
            f.writelines(lines)
        self.written += len(lines)
        return len(lines)


def read_dead_letters(directory: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Every record under a dead-letter directory (all writers, rolled files first)."""
    root = Path(directory)
    if not root.exists():
        return
    for p in sorted(root.rglob("*.jsonl*")):
        with open(p, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)
