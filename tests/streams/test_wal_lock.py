"""One writer per write-ahead log, with real processes: the lock names its holder, a second
writer stops without touching the holder's segments, and a killed holder leaves no stale lock."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow as pa
import pytest

from spark_ray.streams.wal import LOCK_FILE, WalLocked, WalOwner, WriteAheadLog, read_holder

HOLDER = textwrap.dedent("""
    import sys, time
    import pyarrow as pa
    from spark_ray.streams.wal import WalOwner, WriteAheadLog
    wal = WriteAheadLog(sys.argv[1], WalOwner(name="sink:binance", namespace="fabric-a"))
    wal.append({"trades": pa.table({"x": pa.array(range(int(sys.argv[2])), pa.int64())})})
    print("ready", flush=True)
    time.sleep(600)
""")


def _start_holder(wal_dir: Path, rows: int) -> subprocess.Popen[str]:
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(wal_dir), str(rows)],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    return p


def test_a_second_writer_stops_naming_the_holder_and_touches_nothing(tmp_path: Path) -> None:
    wal_dir = tmp_path / "_wal" / "binance"
    holder = _start_holder(wal_dir, 7)
    try:
        before = {p.name: p.read_bytes() for p in wal_dir.iterdir()}
        t0 = time.monotonic()
        with pytest.raises(WalLocked) as err:
            WriteAheadLog(wal_dir, WalOwner(name="sink:binance", namespace="fabric-b"),
                          wait_s=0.5)
        assert time.monotonic() - t0 < 5  # another sink's lock: no restart wait
        msg = str(err.value)
        for part in ("'sink:binance'", "'fabric-a'", f"pid {holder.pid}",
                     socket.gethostname(), str(wal_dir), "wal_dir"):
            assert part in msg, (part, msg)
        assert err.value.holder is not None and err.value.holder.pid == holder.pid
        # The refused writer neither numbered, sealed nor dropped anything.
        assert {p.name: p.read_bytes() for p in wal_dir.iterdir()} == before
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_leaves_no_stale_lock_and_its_rows_replay(tmp_path: Path) -> None:
    wal_dir = tmp_path / "wal"
    holder = _start_holder(wal_dir, 5)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    stale = read_holder(wal_dir)
    assert stale is not None and stale.pid == holder.pid  # the record outlives the process...
    t0 = time.monotonic()
    wal = WriteAheadLog(wal_dir, WalOwner(name="sink:binance", namespace="fabric-b"))
    assert time.monotonic() - t0 < 2  # ...the lock does not
    logged, torn = wal.replay()
    assert [t.num_rows for t in logged["trades"]] == [5] and torn == 0
    assert wal.holder()["pid"] == os.getpid()
    assert read_holder(wal_dir) == WalOwner(**wal.holder())
    wal.release()


def test_own_previous_incarnation_is_waited_for(tmp_path: Path) -> None:
    """A restarted actor (same incarnation id) waits for its old process to let go; another
    owner with an empty incarnation never matches."""
    wal_dir = tmp_path / "wal"
    old = WriteAheadLog(wal_dir, WalOwner(name="sink", incarnation="actor-1"))
    with pytest.raises(WalLocked):
        WriteAheadLog(wal_dir, WalOwner(name="sink", incarnation="actor-2"), wait_s=0.1,
                      restart_wait_s=30)
    import threading

    threading.Timer(0.5, old.release).start()
    t0 = time.monotonic()
    new = WriteAheadLog(wal_dir, WalOwner(name="sink", incarnation="actor-1"), wait_s=0.1,
                        restart_wait_s=30)
    assert 0.3 < time.monotonic() - t0 < 10
    new.append({"trades": pa.table({"x": pa.array([1], pa.int64())})})
    assert (wal_dir / LOCK_FILE).exists() and len(new.segments()) == 1
    new.release()
    # Released with a segment on disk: someone else takes over, a write of ours is refused
    # rather than numbering or sealing over the rows it has to replay.
    other = WriteAheadLog(wal_dir, WalOwner(name="other"), wait_s=0.1)
    with pytest.raises(WalLocked, match="'other'"):
        new.append({"trades": pa.table({"x": pa.array([2], pa.int64())})})
    other.release()
    with pytest.raises(RuntimeError, match="another writer's segments"):
        new.append({"trades": pa.table({"x": pa.array([2], pa.int64())})})
    assert len(new.segments()) == 1 and not new.locked


def test_a_closed_store_lets_the_next_fabric_in_at_once(tmp_path: Path) -> None:
    from spark_ray.streams.normalize import warmup_trades
    from spark_ray.streams.store import StreamStore

    root = str(tmp_path / "lake")
    first = StreamStore(root, "binance", owner=WalOwner(name="sink:a"))
    first.write({"trades": warmup_trades()})
    first.close()  # flushed: the WAL is empty and unlocked, though this object lives on
    t0 = time.monotonic()
    second = StreamStore(root, "binance", owner=WalOwner(name="sink:b"))
    assert time.monotonic() - t0 < 1.0 and second.wal.holder()["name"] == "sink:b"
    with pytest.raises(WalLocked, match="'sink:b'"):
        first.write({"trades": warmup_trades().set_column(
            2, "trade_id", pa.array([2], pa.int64()))})
    second.close()
