"""One short line per bad request, rate-limited: the log of our HTTP servers under a flood.

aiohttp logs every request it cannot parse (over-long request line or header, bad header bytes,
invalid Content-Length, ...) through its server logger as ``"Error handling request from %s"``
*with the traceback*: a dozen lines per bad request, so anyone who can reach the port can flood
the log. :func:`http_logger` gives a server a logger of its own (passed to ``web.AppRunner(...,
logger=...)``) whose filter

- turns a client error (an aiohttp ``HttpProcessingError`` with a 4xx code, or a dropped
  connection) into one line naming the problem, without the traceback; the client's bytes are
  escaped and cut short, so they cannot forge or stretch log lines;
- lets at most ``lines`` records per ``interval_s`` through per (logger, message) key and counts
  the rest; the next record let through says how many were suppressed (one line, no extra).

A server bug (an unhandled exception in a handler, a 500) keeps its traceback, rate-limited too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

LINES = 10  # records per key per interval
INTERVAL_S = 60.0
MAX_DETAIL = 160  # characters of the client's problem kept in the line


def _client_error(exc: BaseException | None) -> str | None:
    """The one-line description of a client's error, or None when it is not one."""
    if exc is None:
        return None
    if isinstance(exc, ConnectionError | TimeoutError):
        return type(exc).__name__
    from aiohttp.http_exceptions import HttpProcessingError

    if isinstance(exc, HttpProcessingError) and 400 <= exc.code < 500:
        return f"{exc.code} {type(exc).__name__}: {exc.message}"
    return None


def one_line(text: str, limit: int = MAX_DETAIL) -> str:
    """``text`` on one printable line of at most ``limit`` characters."""
    flat = " ".join(text.split())
    flat = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in flat)
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


class RateLimitFilter(logging.Filter):
    """At most ``lines`` records per ``interval_s`` per (logger, message); client errors on
    one line without a traceback. Thread-safe; ``suppressed`` counts what it held back."""

    def __init__(self, lines: int = LINES, interval_s: float = INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.lines = lines
        self.interval_s = interval_s
        self.clock = clock
        self.suppressed = 0  # in total, for tests and status
        self._windows: dict[tuple[str, str], list[float]] = {}  # key -> [start, passed, held]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        detail = _client_error(exc)
        key = (record.name, str(record.msg))
        now = self.clock()
        with self._lock:
            w = self._windows.get(key)
            if w is None or now - w[0] >= self.interval_s:
                held = int(w[2]) if w is not None else 0
                if len(self._windows) > 1000:  # keys are message templates: few; stay bounded
                    self._windows.clear()
                w = self._windows[key] = [now, 0, 0]
            else:
                held = 0
            if w[1] >= self.lines:
                w[2] += 1
                self.suppressed += 1
                return False
            w[1] += 1
        if detail is not None:
            record.msg = one_line(record.getMessage()) + ": " + one_line(detail)
            record.args = None
            record.exc_info = None
            record.exc_text = None
        elif exc is None:
            record.msg = one_line(record.getMessage(), 1000)
            record.args = None
        if held:
            record.msg = (f"{record.msg} [{held} similar line{'s' if held > 1 else ''} "
                          f"suppressed in the last {self.interval_s:g} s]")
            record.args = None
        return True


def http_logger(name: str, lines: int = LINES, interval_s: float = INTERVAL_S
                ) -> logging.Logger:
    """The logger a server of ours gives aiohttp (``web.AppRunner(app, logger=...)``): its bad
    requests leave at most one short line each, ``lines`` per ``interval_s`` at most."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RateLimitFilter) for f in logger.filters):
        logger.addFilter(RateLimitFilter(lines, interval_s))
    return logger


def limiter(logger: logging.Logger) -> RateLimitFilter | None:
    """The rate limit on ``logger``, if it has one."""
    return next((f for f in logger.filters if isinstance(f, RateLimitFilter)), None)
