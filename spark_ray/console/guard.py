"""Who may change things from the console, and the record of what they changed.

Reading needs no login on loopback. Every mutation needs the operator token
(``SPARK_RAY_CONSOLE_TOKEN``) as ``Authorization: Bearer``; the console holds only its SHA-256
(:class:`TokenHash`), so the token itself never travels to the Serve replica through Ray.
Cross-site requests are refused before the token is looked at: a mutation must be JSON (a
cross-site form cannot send that without a CORS preflight, which the console never grants) and,
when the browser sends ``Origin``, it must be the console's own. Accepted mutations are appended
to a journal with who, why, what and the result.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

TOKEN_ENV = "SPARK_RAY_CONSOLE_TOKEN"  # nosec B105  # the name of an environment variable, not a token
JOURNAL = "console-journal.jsonl"


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenHash:
    """The operator token's SHA-256 (``None``: no token configured, every mutation refused)."""

    sha256: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> TokenHash:
        value = (os.environ if env is None else env).get(TOKEN_ENV, "")
        return cls(token_sha256(value) if value else None)

    def check(self, authorization: str | None) -> tuple[bool, str]:
        """(allowed, why not) for an ``Authorization`` header; constant-time comparison."""
        if self.sha256 is None:
            return False, f"mutations are disabled: the console was started without {TOKEN_ENV}"
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return False, "missing operator token (Authorization: Bearer <token>)"
        ok = hmac.compare_digest(token_sha256(given.strip()), self.sha256)
        return (True, "") if ok else (False, "wrong operator token")


def same_origin(origin: str | None, host: str | None) -> bool:
    """True when the request carries no ``Origin`` (scripts, curl) or its host:port is the one
    the browser addressed (``Host``); a page on another site is refused."""
    if not origin:
        return True
    if origin == "null" or not host:
        return False
    return urlsplit(origin).netloc.lower() == host.lower()


class Journal:
    """``console-journal.jsonl``: one JSON line per accepted mutation (who, why, action,
    target, result, time, client address). Appended and flushed before the answer."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def write(self, action: str, who: str, reason: str, target: dict[str, Any],
              result: str, client: str | None) -> dict[str, Any]:
        entry = {"time": time.time(), "action": action, "who": who, "reason": reason,
                 "target": target, "result": result, "client": client}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as fh:
            fh.write(json.dumps(entry, sort_keys=True, default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return entry

    def read(self, last: int = 200) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        lines = self.path.read_text().splitlines()[-last:]
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out
