"""The audit trail: one JSON line per operator mutation, and the rate limit on mutations.

Every mutation point (breaker trip/reset/dry-run, executor kill, params and signals approval,
chaos, the venue's admin endpoint, the console's mutations) appends one line to one log:

    {"ts": "2026-12-07T04:12:30.123456Z", "who": "cli:alice", "action": "breaker-trip",
     "target": {"breaker": "breaker", "scope": "global"}, "source": "cli@host1",
     "outcome": "ok", "reason": "exchange incident"}

``outcome`` is ``ok``, ``refused: <why>`` (bad token, rate limited, bad request, a check that
said no) or ``error: <why>`` (the mutation was allowed and failed). Tokens, keys and secrets are
never written: a target field whose name says it holds one is masked. The log is
``$SPARK_RAY_AUDIT_LOG``, else ``~/.spark-ray/audit.jsonl`` (beside the breaker's and the
executors' journals); several processes append to it at once, each line one ``O_APPEND`` write
under an exclusive ``flock`` (:mod:`spark_ray.lockedfile`), fsync'd before the answer.

:class:`MutationLimiter` is a token bucket per source address (10 mutations per 10 s by default,
``$SPARK_RAY_MUTATION_RATE="N/S"``); the HTTP mutation endpoints answer 429 with
``Retry-After`` over it, and audit the refusal.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import json
import logging
import math
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from spark_ray.errors import CheckFailed, UserError
from spark_ray.lockedfile import lock_exclusive, write_all

AUDIT_ENV = "SPARK_RAY_AUDIT_LOG"
RATE_ENV = "SPARK_RAY_MUTATION_RATE"
DEFAULT_PATH = Path("~/.spark-ray/audit.jsonl")
DEFAULT_RATE = (10, 10.0)  # mutations, per seconds, per source
RATE_LIMITED = "refused: rate limited"
BAD_TOKEN = "refused: bad token"  # nosec B105  # an outcome text, not a token
FIELDS = ("ts", "who", "action", "target", "source", "outcome", "reason")
_SECRET = re.compile(r"token|secret|passw|api_?key|^key$|signature|authorization|private",
                     re.IGNORECASE)
LOCK_TIMEOUT_S = 10.0
log = logging.getLogger(__name__)


def default_path(env: Mapping[str, str] | None = None) -> Path:
    """``$SPARK_RAY_AUDIT_LOG``, else ``~/.spark-ray/audit.jsonl``."""
    value = (os.environ if env is None else env).get(AUDIT_ENV, "").strip()
    return Path(value or DEFAULT_PATH).expanduser()


def cli_user() -> str:
    """``cli:<user>``: who runs a command (a container user with no passwd entry: $USER)."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = os.environ.get("USER") or "unknown"
    return f"cli:{user}"


def cli_source() -> str:
    """``cli@<host>``: where a command runs."""
    return f"cli@{socket.gethostname()}"


MAX_DEPTH = 6  # a target nests no deeper (a hostile body cannot make the line recurse)
MAX_TEXT = 500  # characters of one value (a hostile body cannot bloat the log)


def masked(value: Any, name: str = "", depth: int = 0) -> Any:
    """``value`` with every field whose name says secret (token, key, secret, ...) masked,
    nesting cut at MAX_DEPTH and texts at MAX_TEXT characters."""
    if name and _SECRET.search(name):
        return "***"
    if depth >= MAX_DEPTH and isinstance(value, Mapping | list | tuple):
        return "..."
    if isinstance(value, Mapping):
        return {str(k)[:MAX_TEXT]: masked(v, str(k), depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v, "", depth + 1) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    text = str(value)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "..."


class AuditLog:
    """The append-only audit log (one JSON line per mutation)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path).expanduser() if path else default_path()

    def __repr__(self) -> str:
        return f"AuditLog({str(self.path)!r})"

    def append(self, who: str, action: str, target: Mapping[str, Any] | None, source: str,
               outcome: str, reason: str = "") -> dict[str, Any]:
        """Append one entry (raises OSError/RuntimeError when the file cannot be written)."""
        entry = {"ts": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                 "who": str(who or "anonymous"), "action": str(action),
                 "target": masked(dict(target or {})), "source": str(source or "unknown"),
                 "outcome": str(outcome), "reason": str(reason or "")}
        line = (json.dumps(entry, sort_keys=False, default=str) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            lock_exclusive(fd, LOCK_TIMEOUT_S, f"audit log {self.path}")
            write_all(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)  # releases the lock
        return entry

    def record(self, who: str, action: str, target: Mapping[str, Any] | None, source: str,
               outcome: str, reason: str = "") -> dict[str, Any] | None:
        """:meth:`append`, but a log that cannot be written is a logged error, never a crash
        of the endpoint or command that already acted."""
        try:
            return self.append(who, action, target, source, outcome, reason)
        except (OSError, RuntimeError) as exc:
            log.error("audit log %s: could not append %s by %s (%s): %s", self.path, action,
                      who, outcome, exc)
            return None

    def tail(self, n: int) -> list[dict[str, Any]]:
        """The last ``n`` entries (lines that are not JSON objects are skipped)."""
        if n <= 0 or not self.path.is_file():
            return []
        with self.path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size, block, data = fh.tell(), 1 << 16, b""
            while size > 0 and data.count(b"\n") <= n:
                step = min(block, size)
                size -= step
                fh.seek(size)
                data = fh.read(step) + data
        return [e for e in map(_parse, data.splitlines()) if e is not None][-n:]

    def follow(self, poll_s: float = 0.5, stop: Callable[[], bool] = lambda: False
               ) -> Iterator[dict[str, Any]]:
        """Entries appended from now on (polling), until ``stop()`` says so."""
        offset = self.path.stat().st_size if self.path.is_file() else 0
        rest = b""
        while not stop():
            if self.path.is_file():
                size = self.path.stat().st_size
                if size < offset:  # truncated or replaced: start over
                    offset, rest = 0, b""
                if size > offset:
                    with self.path.open("rb") as fh:
                        fh.seek(offset)
                        chunk = fh.read(size - offset)
                    offset += len(chunk)
                    *lines, rest = (rest + chunk).split(b"\n")
                    for line in lines:
                        entry = _parse(line)
                        if entry is not None:
                            yield entry
                    continue
            time.sleep(poll_s)


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


@contextlib.contextmanager
def audited(log_: AuditLog, who: str, action: str, target: Mapping[str, Any],
            source: str | None = None, reason: str = "") -> Iterator[dict[str, Any]]:
    """Audit the block as one mutation: ``ok`` when it ends, ``refused: ...`` when it raises
    :class:`UserError`, :class:`CheckFailed` or :class:`PermissionError`, ``error: ...`` for
    anything else; the exception goes on. The block may add to ``target`` (the yielded copy)."""
    where = source or cli_source()
    tgt = dict(target)
    try:
        yield tgt
    except (UserError, CheckFailed, PermissionError) as exc:
        log_.record(who, action, tgt, where, f"refused: {_first_line(exc)}", reason)
        raise
    except BaseException as exc:
        log_.record(who, action, tgt, where, f"error: {type(exc).__name__}: "
                                              f"{_first_line(exc)}", reason)
        raise
    log_.record(who, action, tgt, where, "ok", reason)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# --- rate limit ----------------------------------------------------------------------------------

def parse_rate(text: str | None, what: str = RATE_ENV) -> tuple[int, float]:
    """``"N/S"`` (N mutations per S seconds) -> (N, S); ValueError naming ``what``."""
    if text is None or not text.strip():
        return DEFAULT_RATE
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*s?\s*", text)
    if m is None or int(m.group(1)) < 1 or float(m.group(2)) <= 0:
        raise ValueError(f"{what}: {text!r} is not N/S (N >= 1 mutations per S > 0 seconds, "
                         "e.g. 10/10)")
    return int(m.group(1)), float(m.group(2))


class MutationLimiter:
    """A token bucket per source: ``capacity`` mutations at once, refilled at ``capacity`` per
    ``per_s`` seconds. :meth:`take` answers 0.0 (go) or the seconds to wait."""

    MAX_SOURCES = 4096

    def __init__(self, capacity: int = DEFAULT_RATE[0], per_s: float = DEFAULT_RATE[1],
                 clock: Callable[[], float] = time.monotonic) -> None:
        if capacity < 1 or per_s <= 0:
            raise ValueError("rate limit: capacity >= 1 and per_s > 0")
        self.capacity = capacity
        self.per_s = per_s
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # source -> (tokens, at)
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MutationLimiter:
        return cls(*parse_rate((os.environ if env is None else env).get(RATE_ENV)))

    @classmethod
    def parse(cls, text: str | None) -> MutationLimiter:
        return cls(*parse_rate(text))

    def __repr__(self) -> str:
        return f"MutationLimiter({self.capacity}/{self.per_s:g}s per source)"

    @property
    def rate_text(self) -> str:
        return f"{self.capacity} mutations per {self.per_s:g} s"

    def take(self, source: str) -> float:
        """Spend one token of ``source``: 0.0 when allowed, else seconds until one is free."""
        refill = self.capacity / self.per_s
        with self._lock:
            now = self.clock()
            tokens, at = self._buckets.get(source, (float(self.capacity), now))
            tokens = min(float(self.capacity), tokens + (now - at) * refill)
            if tokens >= 1.0:
                self._buckets[source] = (tokens - 1.0, now)
                self._prune(now, refill)
                return 0.0
            self._buckets[source] = (tokens, now)
            return (1.0 - tokens) / refill

    def _prune(self, now: float, refill: float) -> None:
        if len(self._buckets) <= self.MAX_SOURCES:
            return
        for src, (tokens, at) in list(self._buckets.items()):
            if tokens + (now - at) * refill >= self.capacity:
                del self._buckets[src]

    def refusal(self, retry_s: float) -> tuple[str, dict[str, str]]:
        """(message, headers) of a 429 answer."""
        wait = max(1, math.ceil(retry_s))
        return (f"rate limited: at most {self.rate_text} from one address; retry in {wait} s",
                {"Retry-After": str(wait)})
