"""Write-ahead log: Arrow IPC stream segments, fsync'd per append, replayed after a crash.

The sink acknowledges a batch only after it is here and on disk, so an acknowledged row survives a
kill at any instant. A segment is one IPC stream per dataset; a crash mid-append leaves a torn
last message, which replay detects (Arrow refuses to decode it) and drops: that batch was never
acknowledged, so its sender still holds it and sends it again. Once the rows are in Parquet the
segments are deleted (:meth:`truncate`).

One writer per log: a WAL directory is locked (``flock`` on its ``LOCK`` file, held while the log
is open) and the lock file names its holder (pid, host, actor name, start time). Two sinks on one
lake and exchange would otherwise number segments over each other and each one's flush would
delete the other's acknowledged rows (issue 18). The kernel drops the lock when its process dies,
so a killed sink never leaves a stale lock and its restart (same actor id) replays its segments.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa

from spark_ray.lockedfile import lock_exclusive, read_all, write_all

_SEG = re.compile(r"^(?P<dataset>[a-z_]+)-(?P<seq>\d{10})\.arrows$")
LOCK_FILE = "LOCK"


@dataclass(frozen=True)
class WalOwner:
    """Who writes a WAL, as the lock file records it. ``incarnation`` is what survives a
    restart of the same writer (a Ray actor id): a holder with ours is our previous life still
    exiting, worth waiting for; any other holder is another sink."""

    name: str = "sink"
    namespace: str = ""
    incarnation: str = ""
    pid: int = field(default_factory=os.getpid)
    host: str = field(default_factory=socket.gethostname)
    started: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    def describe(self) -> str:
        where = f" in namespace {self.namespace!r}" if self.namespace else ""
        actor = f", actor {self.incarnation}" if self.incarnation else ""
        return (f"{self.name!r}{where} (pid {self.pid} on host {self.host}{actor}, since "
                f"{self.started})")


class WalLocked(RuntimeError):
    """Another writer holds the WAL directory; the message names it and the way out."""

    def __init__(self, directory: Path, holder: WalOwner | None) -> None:
        self.directory = directory
        self.holder = holder
        who = holder.describe() if holder else "another process (holder not recorded yet)"
        super().__init__(
            f"write-ahead log {directory} is in use by sink {who}: one writer per WAL. Stop "
            f"that fabric first (spark-ray streams down), or give this one its own WAL "
            f"directory (FabricConfig.wal_dir / the sink's wal_dir).")

    def __reduce__(self) -> tuple[Any, ...]:
        # Ray ships a failed actor constructor's exception to the caller by pickling it.
        return (WalLocked, (self.directory, self.holder))


def read_holder(directory: str | os.PathLike[str]) -> WalOwner | None:
    """The writer recorded in a WAL directory's lock file (None: none or unreadable). The record
    outlives its writer; whether it still holds the lock is for :class:`WriteAheadLog` to find."""
    try:
        doc = json.loads((Path(directory) / LOCK_FILE).read_bytes() or b"null")
        return WalOwner(**doc) if isinstance(doc, dict) else None
    except (OSError, ValueError, TypeError):
        return None


class WriteAheadLog:
    def __init__(self, directory: str | os.PathLike[str], owner: WalOwner | None = None,
                 wait_s: float = 5.0, restart_wait_s: float = 60.0) -> None:
        """Open (and lock) the log in ``directory``. :class:`WalLocked` when another writer
        holds it after ``wait_s`` (a stopped fabric's process may take a moment to exit);
        ``restart_wait_s`` when the holder is our own previous
        incarnation (Ray restarts a killed actor while the old process may still be exiting)."""
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.owner = owner or WalOwner()
        self.wait_s = wait_s
        self._lock_fd: int | None = self._lock(wait_s, restart_wait_s)
        self._open: dict[str, tuple[BinaryIO, pa.ipc.RecordBatchStreamWriter, pa.Schema]] = {}
        self._seq = max((int(m["seq"]) for p in self.dir.iterdir()
                         if (m := _SEG.match(p.name))), default=0)
        self.appends = 0
        self.bytes = 0

    def _lock(self, wait_s: float, restart_wait_s: float) -> int:
        fd = os.open(self.dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            try:
                lock_exclusive(fd, wait_s, str(self.dir))
            except RuntimeError:
                holder = read_holder(self.dir)
                mine = bool(self.owner.incarnation) and holder is not None \
                    and holder.incarnation == self.owner.incarnation
                if not mine:
                    raise WalLocked(self.dir, holder) from None
                try:
                    lock_exclusive(fd, restart_wait_s, str(self.dir))
                except RuntimeError:
                    raise WalLocked(self.dir, read_holder(self.dir)) from None
            os.ftruncate(fd, 0)
            write_all(fd, json.dumps(asdict(self.owner)).encode())
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        return fd

    @property
    def locked(self) -> bool:
        return self._lock_fd is not None

    def holder(self) -> dict[str, Any]:
        """The lock file's record (what a second writer is told)."""
        if self._lock_fd is None:
            return {}
        return dict(json.loads(read_all(self._lock_fd) or b"{}"))

    def _relock(self) -> None:
        """Writing again after :meth:`release` (a closed sink reused): take the lock back, and
        refuse if another writer left segments meanwhile (only a new log replays them)."""
        fd = self._lock(self.wait_s, 0.0)
        if self.segments():
            os.close(fd)
            raise RuntimeError(f"write-ahead log {self.dir} holds another writer's segments; "
                               f"open a new log (restart the sink) to replay them first")
        self._lock_fd = fd
        self._seq = 0

    def release(self) -> None:
        """Close the open segments (kept on disk, replayed by the next writer) and unlock:
        what a crash does, minus the torn tail. A later :meth:`append` locks again."""
        self.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __del__(self) -> None:
        # A log dropped without release (a test's simulated crash) unlocks like a dead process.
        fd = getattr(self, "_lock_fd", None)
        if fd is not None:
            os.close(fd)

    def segments(self) -> list[Path]:
        return sorted((p for p in self.dir.iterdir() if _SEG.match(p.name)),
                      key=lambda p: int(_SEG.match(p.name)["seq"]))  # type: ignore[index]

    def append(self, tables: dict[str, pa.Table]) -> None:
        """Append one table per dataset, then fsync every file touched (one durable step)."""
        if self._lock_fd is None:
            self._relock()
        touched: list[BinaryIO] = []
        for dataset, table in tables.items():
            if table.num_rows == 0:
                continue
            entry = self._open.get(dataset)
            if entry is None or entry[2] != table.schema:
                if entry is not None:
                    self._close(dataset)
                self._seq += 1
                path = self.dir / f"{dataset}-{self._seq:010d}.arrows"
                f: BinaryIO = open(path, "wb")  # noqa: SIM115 - held open across appends
                writer = pa.ipc.new_stream(f, table.schema)
                entry = (f, writer, table.schema)
                self._open[dataset] = entry
                self._fsync_dir()
            f, writer, _ = entry
            before = f.tell()
            writer.write_table(table)
            f.flush()
            self.bytes += f.tell() - before
            touched.append(f)
        for f in touched:
            os.fsync(f.fileno())
        self.appends += 1

    def _close(self, dataset: str) -> None:
        f, writer, _ = self._open.pop(dataset)
        try:
            writer.close()
        finally:
            f.close()

    def close(self) -> None:
        for dataset in list(self._open):
            self._close(dataset)

    def truncate(self) -> int:
        """Everything logged so far is in Parquet: delete all segments; returns how many."""
        return self.drop(self.seal())

    def seal(self) -> list[Path]:
        """Close the open segments (later appends start new ones) and return every segment so
        far: what a flush in progress covers, deleted by :meth:`drop` once it is in Parquet."""
        self.close()
        return self.segments()

    def drop(self, segments: list[Path]) -> int:
        for p in segments:
            p.unlink(missing_ok=True)
        self._fsync_dir()
        return len(segments)

    def replay(self) -> tuple[dict[str, list[pa.Table]], int]:
        """Every complete batch in the log by dataset, oldest first; and how many torn tails
        were dropped."""
        out: dict[str, list[pa.Table]] = {}
        torn = 0
        for path in self.segments():
            m = _SEG.match(path.name)
            assert m is not None  # nosec B101  # narrows Optional for mypy, not a check
            dataset = m["dataset"]
            try:
                reader = pa.ipc.open_stream(pa.BufferReader(path.read_bytes()))
                while True:
                    try:
                        batch = reader.read_next_batch()
                    except StopIteration:
                        break
                    out.setdefault(dataset, []).append(pa.Table.from_batches([batch]))
            except (pa.ArrowInvalid, OSError, EOFError):
                torn += 1  # a torn header or message: the rest of this segment never acked
        return out, torn

    def _fsync_dir(self) -> None:
        try:
            fd = os.open(self.dir, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
