"""Write-ahead log: Arrow IPC stream segments, fsync'd per append, replayed after a crash.

The sink acknowledges a batch only after it is here and on disk, so an acknowledged row survives a
kill at any instant. A segment is one IPC stream per dataset; a crash mid-append leaves a torn
last message, which replay detects (Arrow refuses to decode it) and drops: that batch was never
acknowledged, so its sender still holds it and sends it again. Once the rows are in Parquet the
segments are deleted (:meth:`truncate`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa

_SEG = re.compile(r"^(?P<dataset>[a-z_]+)-(?P<seq>\d{10})\.arrows$")


class WriteAheadLog:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._open: dict[str, tuple[BinaryIO, pa.ipc.RecordBatchStreamWriter, pa.Schema]] = {}
        self._seq = max((int(m["seq"]) for p in self.dir.iterdir()
                         if (m := _SEG.match(p.name))), default=0)
        self.appends = 0
        self.bytes = 0

    def segments(self) -> list[Path]:
        return sorted((p for p in self.dir.iterdir() if _SEG.match(p.name)),
                      key=lambda p: int(_SEG.match(p.name)["seq"]))  # type: ignore[index]

    def append(self, tables: dict[str, pa.Table]) -> None:
        """Append one table per dataset, then fsync every file touched (one durable step)."""
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
            assert m is not None
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
