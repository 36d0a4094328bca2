"""The lake's one atomic write: a file appears whole under its final name, or not at all."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from spark_ray.lake.files import open_root, write_atomic


def test_roots_are_local_paths_or_pyarrow_uris(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               ) -> None:
    monkeypatch.chdir(tmp_path)
    fs, path = open_root("lake/")
    assert isinstance(fs, pafs.LocalFileSystem) and path == str(tmp_path / "lake")
    fs, path = open_root(f"file://{tmp_path}/lake")
    assert isinstance(fs, pafs.LocalFileSystem) and path == str(tmp_path / "lake")
    fs, path = open_root("mock:///lake")
    assert not isinstance(fs, pafs.LocalFileSystem) and path == "lake"


def test_write_creates_folders_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    fs, root = open_root(tmp_path)
    target = f"{root}/a/month=2024-01/data.parquet"
    write_atomic(fs, target, b"one")
    write_atomic(fs, target, b"two")
    assert Path(target).read_bytes() == b"two"
    assert os.listdir(Path(target).parent) == ["data.parquet"]


def test_a_write_that_fails_before_the_rename_keeps_the_old_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fs, root = open_root(tmp_path)
    target = f"{root}/data.parquet"
    write_atomic(fs, target, b"old")

    def crash(fd: int) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk gone"):
        write_atomic(fs, target, b"new")
    assert Path(target).read_bytes() == b"old"
    # what a crash leaves is a hidden temp file, which no reader of the lake takes
    assert [p.name for p in tmp_path.iterdir() if p.name != "data.parquet"] == [
        f".data.parquet.{os.getpid()}.tmp"]


def test_non_local_filesystems_write_then_move() -> None:
    fs, root = open_root("mock:///lake")
    write_atomic(fs, f"{root}/x/data.parquet", b"abc")
    with fs.open_input_stream(f"{root}/x/data.parquet") as f:
        assert f.read() == b"abc"
    names = [i.base_name for i in fs.get_file_info(pafs.FileSelector(f"{root}/x"))]
    assert names == ["data.parquet"]
