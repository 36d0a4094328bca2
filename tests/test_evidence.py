"""Evidence bundles: NONCE, run.json, INDEX.txt, manifest, pack/verify and tamper detection."""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path

import pytest

from spark_ray.evidence import (
    INDEX,
    MANIFEST,
    RUN_JSON,
    create_run,
    new_nonce,
    pack,
    run_folder,
    verify,
)

from helpers import run_cli

NONCE = re.compile(r"^\d{14}-\d{6}$")


def test_nonce_format_and_uniqueness() -> None:
    nonces = {new_nonce() for _ in range(2000)}
    assert all(NONCE.match(n) for n in nonces)
    assert len(nonces) > 1990  # 6 random digits: collisions within one second are rare


def test_run_folder_contents(tmp_path: Path) -> None:
    with run_folder(tmp_path, command=["spark-ray", "x"], config={"store": "lake"}) as run:
        run.write_json("result.json", {"a": 1}, "the result")
        (run.path / "stray.txt").write_text("not registered")
    assert NONCE.match(run.path.name)
    meta = json.loads((run.path / RUN_JSON).read_text())
    assert meta["command"] == ["spark-ray", "x"]
    assert meta["config"] == {"store": "lake"}
    assert meta["status"] == "ok" and meta["exit_code"] == 0
    assert meta["versions"]["ray"] and meta["versions"]["pyarrow"]
    assert meta["host"]["hostname"]
    assert meta["started"] <= meta["ended"]
    index = (run.path / INDEX).read_text().splitlines()
    assert "result.json\tthe result" in index
    assert any(line.startswith("stray.txt\t") for line in index)
    manifest = json.loads((run.path / MANIFEST).read_text())
    assert set(manifest) == {"result.json", "stray.txt", RUN_JSON, INDEX}
    assert verify(run.path).ok


def test_failed_run_records_failure(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), run_folder(tmp_path) as run:
        raise RuntimeError("boom")
    meta = json.loads((run.path / RUN_JSON).read_text())
    assert meta["status"] == "failed" and meta["exit_code"] == 1
    assert verify(run.path).ok


def test_artifact_names_stay_inside(tmp_path: Path) -> None:
    run = create_run(tmp_path)
    with pytest.raises(ValueError):
        run.file("../escape.txt", "no")


def _files(tmp_path: Path) -> list[Path]:
    a = tmp_path / "in" / "a.csv"
    b = tmp_path / "in" / "sub" / "a.csv"
    c = tmp_path / "in" / "report.json"
    for p, text in ((a, "x,y\n1,2\n"), (b, "other\n"), (c, '{"ok": true}\n')):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return [a, b, c]


def test_pack_verify_and_tamper_detection_folder(tmp_path: Path) -> None:
    files = _files(tmp_path)
    res = run_cli("evidence", "pack", "--out", str(tmp_path / "runs"), *map(str, files))
    assert res.code == 0, res.err
    folder = Path(res.out.split("run folder:")[1].split()[0])
    assert (folder / "in" / "a.csv").read_text() == "x,y\n1,2\n"  # name clash kept apart
    assert (folder / "sub" / "a.csv").read_text() == "other\n"
    ok = run_cli("evidence", "verify", str(folder))
    assert ok.code == 0, ok.err
    assert "intact" in ok.out

    (folder / "report.json").write_text('{"ok": false}\n')  # modified
    (folder / "sub" / "a.csv").unlink()  # missing
    (folder / "extra.bin").write_bytes(b"\0")  # unexpected
    bad = run_cli("evidence", "verify", str(folder))
    assert bad.code == 1
    assert "modified: report.json" in bad.err
    assert "missing: sub/a.csv" in bad.err
    assert "unexpected: extra.bin" in bad.err


def test_pack_archive_and_tampered_archive(tmp_path: Path) -> None:
    run, arc = pack(_files(tmp_path), tmp_path / "runs", with_archive=True)
    assert arc is not None and arc.name == f"{run.nonce}.tar.gz"
    assert verify(arc).ok
    res = run_cli("evidence", "verify", str(arc))
    assert res.code == 0, res.err

    # Rebuild the archive with one file changed: verify must name it.
    work = tmp_path / "unpacked"
    with tarfile.open(arc) as tar:
        tar.extractall(work, filter="data")
    (work / run.nonce / "report.json").write_text("tampered\n")
    forged = tmp_path / "forged.tar.gz"
    with tarfile.open(forged, "w:gz") as tar:
        tar.add(work / run.nonce, arcname=run.nonce)
    res = run_cli("evidence", "verify", str(forged))
    assert res.code == 1
    assert "modified: report.json" in res.err


def test_verify_rejects_non_bundles(tmp_path: Path) -> None:
    res = run_cli("evidence", "verify", str(tmp_path / "nothing"))
    assert res.code == 2 and "no such run folder" in res.err
    (tmp_path / "empty").mkdir()
    res = run_cli("evidence", "verify", str(tmp_path / "empty"))
    assert res.code == 1 and MANIFEST in res.err


def test_pack_missing_file_is_usage_error(tmp_path: Path) -> None:
    res = run_cli("evidence", "pack", "--out", str(tmp_path), str(tmp_path / "absent.txt"))
    assert res.code == 2
    assert "absent.txt: not a file" in res.err
    assert not any(tmp_path.iterdir()), "nothing partially written"
