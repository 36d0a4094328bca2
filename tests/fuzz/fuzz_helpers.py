"""Helpers for the fuzz tests: raw HTTP over a plain socket, a log recorder, Hypothesis
strategies, and the checks every fuzzed server must pass (no 5xx, no hang, one log line at most
per bad request, no traceback, still serving)."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import string
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

HOST = "127.0.0.1"
TIMEOUT_S = 5.0  # per socket operation: longer means the server hangs

# Reproducible in CI (derandomize), bounded in count and time (deadline per example).
def fuzz_settings(max_examples: int) -> settings:
    return settings(max_examples=max_examples, deadline=3000, derandomize=True,
                    database=None, suppress_health_check=list(HealthCheck), print_blob=True)


@dataclass
class Answer:
    status: int | None  # None: the server closed without answering (allowed for garbage)
    head: bytes = b""
    body: bytes = b""


def exchange(port: int, data: bytes, *, patience: float = 0.25,
             timeout: float = TIMEOUT_S) -> Answer:
    """Send ``data`` on a fresh connection and read the answer (until the server closes or the
    first response's Content-Length is in). A server still waiting for more bytes after
    ``patience`` seconds (a request cut short) is sent EOF: it must then close, or answer,
    within ``timeout``; a hang raises ``TimeoutError``."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        # The server may answer and close before taking it all.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            s.sendall(data)
        buf = b""
        s.settimeout(patience)
        deadline = time.monotonic() + timeout
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            except TimeoutError:
                if s.gettimeout() == timeout or time.monotonic() > deadline:
                    raise TimeoutError(f"no answer within {timeout} s of EOF: "
                                       f"{buf[:200]!r}") from None
                s.settimeout(timeout)
                try:
                    s.shutdown(socket.SHUT_WR)  # the request ends here: no more bytes come
                except OSError:
                    break
                continue
            if not chunk:
                break
            buf += chunk
            if b"\r\n\r\n" in buf:
                head, body = buf.split(b"\r\n\r\n", 1)
                n = _content_length(head)
                if n is not None and len(body) >= n:
                    break
    if not buf:
        return Answer(None)
    head, _, body = buf.partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    if not parts[0].startswith(b"HTTP/") or len(parts) < 2 or not parts[1].isdigit():
        raise AssertionError(f"not an HTTP answer: {buf[:200]!r}")
    return Answer(int(parts[1]), head, body)


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return int(value.strip())
    return None


def build(method: str, target: str, headers: dict[str, str] | list[tuple[str, str]],
          body: bytes = b"", *, content_length: bool = True) -> bytes:
    """An HTTP/1.1 request as bytes, whatever the parts (no client-side validation)."""
    items = list(headers.items()) if isinstance(headers, dict) else list(headers)
    lines = [f"{method} {target} HTTP/1.1", f"Host: {HOST}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in items]
    if content_length and body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


def request(port: int, method: str, target: str, headers: Any = (), body: bytes = b"",
            ) -> Answer:
    return exchange(port, build(method, target, headers or {}, body))


def get_json(port: int, target: str, headers: Any = ()) -> tuple[int | None, Any]:
    a = request(port, "GET", target, headers)
    try:
        return a.status, json.loads(a.body) if a.body else None
    except ValueError:
        return a.status, a.body


# --- the log ---------------------------------------------------------------------------------
class LogRecorder(logging.Handler):
    """Every record of every logger (DEBUG and up), formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))

    @property
    def lines(self) -> int:
        return sum(t.count("\n") + 1 for t in self.texts)

    def text(self) -> str:
        return "\n".join(self.texts)


# Libraries' own chatter that is not about a request (Ray, asyncio's selector, Hypothesis).
_QUIET = ("asyncio", "hypothesis", "ray", "filelock", "urllib3", "websockets.client")


@contextmanager
def recorded_log() -> Iterator[LogRecorder]:
    rec = LogRecorder()
    root = logging.getLogger()
    old = root.level
    root.addHandler(rec)
    root.setLevel(logging.DEBUG)
    quiet = {n: logging.getLogger(n).level for n in _QUIET}
    for n in _QUIET:
        logging.getLogger(n).setLevel(logging.WARNING)
    try:
        yield rec
    finally:
        root.removeHandler(rec)
        root.setLevel(old)
        for n, lvl in quiet.items():
            logging.getLogger(n).setLevel(lvl)


@dataclass
class Tally:
    """What a fuzz run sent and got."""

    requests: int = 0
    statuses: dict[Any, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def saw(self, status: int | None, what: str = "") -> None:
        self.requests += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status is not None and status >= 500:
            self.problems.append(f"{status} for {what[:300]}")


def check_log(rec: LogRecorder, tally: Tally) -> None:
    """At most one log line per request sent, and never a traceback."""
    text = rec.text()
    print(f"fuzz: {tally.requests} requests, statuses {tally.statuses}, {rec.lines} log lines")
    for t in rec.texts[:3]:
        print("  log:", t[:300])
    assert "Traceback" not in text, text[:3000]
    assert rec.lines <= max(tally.requests, 1), (rec.lines, tally.requests, text[:3000])


def run_checked(run: Callable[[], None], tally: Tally) -> LogRecorder:
    """Run a fuzz loop with the log recorded: no 5xx, at most one log line per request and
    no traceback (the caller then checks the server still serves). Returns the log."""
    with recorded_log() as rec:
        run()
    assert not tally.problems, tally.problems[:10]
    check_log(rec, tally)
    return rec


# --- strategies --------------------------------------------------------------------------------
_TOKEN_CHARS = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
_STANDARD = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
METHODS = st.one_of(st.just("GET"), st.just("POST"), _STANDARD,
                    st.text(_TOKEN_CHARS, min_size=1, max_size=12))
SEGMENT = st.text(string.ascii_letters + string.digits + "-._~%@:+!$&'()*,;=", max_size=30)
QUERY = st.lists(st.tuples(st.text(string.ascii_letters + "_%+[]", max_size=10),
                           st.text(string.printable.strip() .replace("#", ""), max_size=30)),
                 max_size=5).map(lambda kv: "&".join(f"{k}={v}" for k, v in kv)
                                 .replace(" ", "%20"))
HEADER_VALUE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
CONTENT_TYPES = st.sampled_from([
    "application/json", "application/json; charset=utf-8", "application/json; charset=bogus",
    "application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x",
    "application/json; charset=utf-16", "",
])
HEADERS = st.lists(st.tuples(st.text(_TOKEN_CHARS, min_size=1, max_size=20), HEADER_VALUE),
                   max_size=4).filter(lambda hs: all(k.lower() not in (
                       "host", "content-length", "transfer-encoding", "connection", "expect",
                       "upgrade") for k, _ in hs))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids,
                                                              max_size=4),
    max_leaves=12)


def json_bytes(v: Any) -> bytes:
    return json.dumps(v).encode()  # NaN/Infinity included: Python's json reads them back


BODIES = st.one_of(
    st.just(b""), st.binary(max_size=200), JSON.map(json_bytes),
    st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"{", b"[1,", b'{"a":1e999}', b"\xff\xfe{}", b"null", b'"x"',
                     b"\x00" * 10, b'{"kind": "gap", "count": 1e999}', b"[" * 100_000,
                     b'{"a":' * 50_000]),
)

# Raw HTTP that no client library would send: the bad-request flood of the security report.
RAW_BAD = st.one_of(
    st.integers(8200, 40000).map(lambda n: b"GET /" + b"a" * n + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
    st.integers(8200, 20000).map(lambda n: b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"y" * n
                                 + b"\r\n\r\n"),
    st.binary(min_size=1, max_size=300).map(lambda b: b + b"\r\n\r\n"),
    st.binary(min_size=1, max_size=40).map(
        lambda b: b"GET / HTTP/1.1\r\nHost: x\r\nX-Bad: " + b + b"\r\n\r\n"),
    st.binary(min_size=1, max_size=20).map(lambda b: b"GET / HTTP/1.1\r\n" + b + b"\r\n\r\n"),
    st.sampled_from([b"abc", b"-1", b"1e3", b"0x10", b"99999999999999999999", b" ", b"1, 2"]).map(
        lambda v: b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: " + v + b"\r\n\r\n{}"),
    st.binary(min_size=1, max_size=8).map(
        lambda b: b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + b
        + b"\r\n"),
    st.binary(max_size=12).map(lambda m: m + b" / HTTP/1.1\r\nHost: x\r\n\r\n"),
    st.sampled_from([b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", b"GET / FOO/1.1\r\n\r\n",
                     b"GET /\r\n\r\n", b"\r\n\r\n", b"GET / HTTP/1.1\r\n Host: x\r\n\r\n",
                     b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                     b"Content-Length: 6\r\n\r\nabcde",
                     b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                     b"Content-Length: 3\r\n\r\n0\r\n\r\n"]),
)


def truncated(path: str, headers: Any = ()) -> st.SearchStrategy[bytes]:
    """A POST to ``path`` whose body is shorter than its Content-Length (then EOF)."""
    return st.tuples(st.binary(max_size=50), st.integers(1, 1000)).map(
        lambda bn: build("POST", path, [*headers, ("Content-Type", "application/json"),
                                        ("Content-Length", str(len(bn[0]) + bn[1]))],
                         bn[0], content_length=False))


def mutation_bodies(known: dict[str, st.SearchStrategy[Any]],
                    required: tuple[str, ...] = ()) -> st.SearchStrategy[bytes]:
    """Bodies for an authorized mutation: JSON objects of its own fields (``required`` ones
    always there), mostly with plausible values and a few others, any value at all, a stray
    key now and then; or anything at all."""
    def objects(values: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries(
            {k: values[k] for k in required},
            optional={k: v for k, v in values.items() if k not in required})

    plausible = objects(known)
    wild = objects({k: st.one_of(v, JSON) for k, v in known.items()})
    stray = st.dictionaries(st.text(max_size=8), JSON, min_size=1, max_size=1)
    with_stray = st.tuples(wild, stray).map(lambda ws: {**ws[0], **ws[1]})
    return st.one_of(plausible.map(json_bytes), plausible.map(json_bytes), wild.map(json_bytes),
                     with_stray.map(json_bytes), BODIES)


JSON_CTYPES = st.sampled_from(["application/json", "application/json", "application/json",
                               "application/json; charset=utf-8", "application/json; charset=bogus",
                               "text/plain", "application/json; charset=latin-1", ""])
NUMBERS = st.one_of(st.sampled_from([0, 1, 2, 10, 0.5, 100, 1500, 503, 10**400, -10**400]),
                    st.integers(-2**64, 2**64),
                    st.floats(), st.text(max_size=5))
