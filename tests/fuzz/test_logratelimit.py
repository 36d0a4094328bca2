"""spark_ray.logratelimit: at most N lines per interval per message, client errors on one line
without a traceback, server errors keep theirs, the suppressed count is reported."""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from hypothesis import given
from hypothesis import strategies as st

from spark_ray.logratelimit import RateLimitFilter, http_logger, limiter, one_line

from fuzz_helpers import LogRecorder, fuzz_settings


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _logger(name: str, f: RateLimitFilter) -> tuple[logging.Logger, LogRecorder]:
    log = logging.getLogger(name)
    log.filters.clear()
    log.addFilter(f)
    rec = LogRecorder()
    log.addHandler(rec)
    log.propagate = False
    log.setLevel(logging.DEBUG)
    return log, rec


def _raise(exc: BaseException) -> None:
    raise exc


def test_client_errors_are_one_line_and_rate_limited() -> None:
    clock = Clock()
    f = RateLimitFilter(lines=3, interval_s=60, clock=clock)
    log, rec = _logger("test.logratelimit.client", f)
    bad = BadHttpMessage("Invalid header token:\n\n  b'Bad\\nHeader'\n     ^")
    for _ in range(100):
        try:
            _raise(bad)
        except BadHttpMessage as e:
            log.exception("Error handling request from %s", "127.0.0.1", exc_info=e)
    assert len(rec.texts) == 3 and f.suppressed == 97
    assert all("\n" not in t and "Traceback" not in t for t in rec.texts)
    assert "400 BadHttpMessage: Invalid header token" in rec.texts[0]
    clock.t = 61.0
    try:
        _raise(LineTooLong("a" * 10_000, "8190"))
    except LineTooLong as e:
        log.exception("Error handling request from %s", "127.0.0.1", exc_info=e)
    assert len(rec.texts) == 4
    assert "[97 similar lines suppressed in the last 60 s]" in rec.texts[3]
    assert len(rec.texts[3]) < 500


def test_server_errors_keep_their_traceback_but_are_rate_limited() -> None:
    f = RateLimitFilter(lines=2, interval_s=60, clock=Clock())
    log, rec = _logger("test.logratelimit.server", f)
    for _ in range(5):
        try:
            _raise(KeyError("bug"))
        except KeyError:
            log.exception("Unhandled exception")
    assert len(rec.texts) == 2 and "Traceback" in rec.texts[0] and f.suppressed == 3


def test_http_logger_installs_one_filter() -> None:
    a = http_logger("test.logratelimit.http")
    b = http_logger("test.logratelimit.http")
    assert a is b and sum(isinstance(x, RateLimitFilter) for x in a.filters) == 1
    assert limiter(a) is not None


@fuzz_settings(200)
@given(text=st.text(), limit=st.integers(10, 300))
def test_one_line_is_one_short_printable_line(text: str, limit: int) -> None:
    out = one_line(text, limit)
    assert len(out) <= limit and out.isprintable() and "\n" not in out
