"""An append-only file owned by one process: an exclusive ``flock`` (waiting up to a timeout),
whole-file reads and complete writes.

The breaker's and the executor's journals sit on it: a second process opening the same journal
must fail loudly rather than interleave its lines with the owner's.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time


def lock_exclusive(fd: int, timeout_s: float, what: str) -> None:
    """Take the exclusive lock of ``fd``; RuntimeError naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} is locked by another process") from None
            time.sleep(0.05)


def read_all(fd: int) -> bytes:
    """Everything in the file, whatever the descriptor's offset (``pread``)."""
    chunks = []
    offset = 0
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def write_all(fd: int, data: bytes) -> None:
    """Write every byte (``os.write`` may write fewer); no fsync."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
