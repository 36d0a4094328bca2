"""Evidence bundles: every run leaves a folder that proves what it produced and how.

A run folder ``<out>/<NONCE>/`` holds the run's artifacts plus ``run.json`` (what ran, where,
with which config and versions), ``INDEX.txt`` (one line per artifact) and
``sha256-manifest.json`` (every file's sha256 and size), so a reviewer can verify later that
nothing was modified, lost or slipped in.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import platform
import secrets
import shutil
import socket
import subprocess  # nosec B404  # runs git rev-parse with fixed argv, no shell
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from spark_ray.errors import CheckFailed, UserError

MANIFEST = "sha256-manifest.json"
INDEX = "INDEX.txt"
RUN_JSON = "run.json"
TRACKED_DISTRIBUTIONS = (
    "spark-ray", "ray", "websockets", "pyarrow", "pandas", "numpy", "prometheus-client",
    "pydantic", "pyyaml", "aiohttp",
)


def new_nonce(now: datetime | None = None) -> str:
    """``YYYYMMDDHHMMSS-NNNNNN``: UTC time plus 6 random digits, so runs sort and never collide."""
    ts = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")
    return f"{ts}-{secrets.randbelow(1_000_000):06d}"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _git_commit() -> str | None:
    try:
        out = subprocess.run(  # nosec B603 B607  # fixed argv, no shell; git from PATH by design, failure -> None
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for dist in TRACKED_DISTRIBUTIONS:
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = None
    return found


def _iter_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() or path.is_symlink():
            yield path


def build_manifest(root: Path) -> dict[str, dict[str, Any]]:
    """sha256 and size of every file under ``root`` except the manifest itself."""
    manifest: dict[str, dict[str, Any]] = {}
    for path in _iter_files(root):
        rel = path.relative_to(root).as_posix()
        if rel == MANIFEST:
            continue
        manifest[rel] = {"sha256": sha256_file(path), "size": path.stat().st_size}
    return manifest


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@dataclass
class RunFolder:
    """A run's evidence bundle under construction; :meth:`finish` seals it."""

    path: Path
    nonce: str
    command: list[str]
    config: dict[str, Any]
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    artifacts: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    exit_code: int = 0

    def file(self, name: str, description: str) -> Path:
        """Register an artifact to be written at ``name`` (relative) and return its path."""
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts:
            raise ValueError(f"artifact name must be relative inside the run folder: {name}")
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        self.artifacts[rel.as_posix()] = description
        return target

    def write_json(self, name: str, data: Any, description: str) -> Path:
        target = self.file(name, description)
        target.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
        return target

    def add(self, source: Path, description: str, name: str | None = None) -> Path:
        """Copy an existing file into the run folder as an artifact."""
        target = self.file(name or source.name, description)
        shutil.copy2(source, target)
        return target

    def _run_json(self, status: str, exit_code: int | None) -> dict[str, Any]:
        return {
            "nonce": self.nonce,
            "command": self.command,
            "config": self.config,
            "versions": _versions(),
            "git_commit": _git_commit(),
            "host": {"hostname": socket.gethostname(), "platform": platform.platform(),
                     "user": getpass.getuser(), "python": sys.executable},
            "started": self.started.isoformat(),
            "ended": datetime.now(UTC).isoformat() if status != "running" else None,
            "status": status,
            "exit_code": exit_code,
            **self.extra,
        }

    def finish(self, exit_code: int = 0) -> None:
        """Write run.json, INDEX.txt and the manifest; unregistered files get a generic entry."""
        status = "ok" if exit_code == 0 else "failed"
        _atomic_write_text(self.path / RUN_JSON, json.dumps(
            self._run_json(status, exit_code), indent=2, sort_keys=True, default=str) + "\n")
        entries = {RUN_JSON: "what ran: command, redacted config, versions, host, times, status"}
        for path in _iter_files(self.path):
            rel = path.relative_to(self.path).as_posix()
            if rel not in (INDEX, MANIFEST, RUN_JSON):
                entries[rel] = self.artifacts.get(rel, "artifact")
        entries[MANIFEST] = "sha256 and size of every other file in this folder"
        index = "".join(f"{rel}\t{desc}\n" for rel, desc in sorted(entries.items()))
        _atomic_write_text(self.path / INDEX, index)
        _atomic_write_text(self.path / MANIFEST,
                           json.dumps(build_manifest(self.path), indent=2, sort_keys=True) + "\n")


def create_run(out: Path, command: Iterable[str] | None = None,
               config: dict[str, Any] | None = None) -> RunFolder:
    """Make a fresh ``out/<NONCE>/`` (retrying on the astronomically rare collision)."""
    out.mkdir(parents=True, exist_ok=True)
    for _ in range(10):
        nonce = new_nonce()
        path = out / nonce
        try:
            path.mkdir()
        except FileExistsError:
            continue
        run = RunFolder(path=path, nonce=nonce, command=list(command or sys.argv),
                        config=config or {})
        _atomic_write_text(path / RUN_JSON, json.dumps(
            run._run_json("running", None), indent=2, sort_keys=True, default=str) + "\n")
        return run
    raise RuntimeError(f"could not create a unique run folder under {out}")


@contextmanager
def run_folder(out: Path, command: Iterable[str] | None = None,
               config: dict[str, Any] | None = None) -> Iterator[RunFolder]:
    """Context manager: the bundle is sealed on exit, with status failed if an exception escaped."""
    run = create_run(out, command, config)
    try:
        yield run
    except BaseException:
        run.finish(exit_code=1)
        raise
    run.finish(exit_code=run.exit_code)


def archive(run: Path) -> Path:
    """Write ``<NONCE>.tar.gz`` beside the run folder (entries under ``<NONCE>/``)."""
    target = run.parent / f"{run.name}.tar.gz"
    tmp = target.with_name(f".{target.name}.tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        tar.add(run, arcname=run.name)
    os.replace(tmp, target)
    return target


def pack(files: Iterable[Path], out: Path, with_archive: bool = False,
         command: Iterable[str] | None = None) -> tuple[RunFolder, Path | None]:
    """Bundle existing files into a new run folder (and optionally an archive)."""
    sources = [Path(f) for f in files]
    if not sources:
        raise UserError("evidence pack: give at least one FILE")
    for src in sources:
        if not src.is_file():
            raise UserError(f"evidence pack: {src}: not a file")
    names = [s.name for s in sources]
    clash = sorted({n for n in names if names.count(n) > 1})
    with run_folder(out, command) as run:
        for src in sources:
            # Same file names from different folders keep their parent folder to stay distinct.
            name = f"{src.parent.name}/{src.name}" if src.name in clash else src.name
            run.add(src, f"packed from {src}", name=name)
    return run, archive(run.path) if with_archive else None


@dataclass
class VerifyReport:
    modified: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not (self.modified or self.missing or self.unexpected)

    def lines(self) -> list[str]:
        return ([f"modified: {p}" for p in self.modified] + [f"missing: {p}" for p in self.missing]
                + [f"unexpected: {p}" for p in self.unexpected])


def verify_folder(root: Path) -> VerifyReport:
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise CheckFailed(f"{root}: no {MANIFEST}; not an evidence bundle (missing: {MANIFEST})")
    try:
        expected = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckFailed(f"modified: {MANIFEST} (not valid JSON: {exc})") from None
    report = VerifyReport()
    actual = {p.relative_to(root).as_posix() for p in _iter_files(root)} - {MANIFEST}
    for rel, meta in sorted(expected.items()):
        path = root / rel
        if rel not in actual:
            report.missing.append(rel)
            continue
        report.checked += 1
        if path.stat().st_size != meta.get("size") or sha256_file(path) != meta.get("sha256"):
            report.modified.append(rel)
    report.unexpected = sorted(actual - set(expected))
    return report


def verify(path: Path) -> VerifyReport:
    """Verify a run folder or a ``.tar.gz`` archive of one."""
    if path.is_dir():
        return verify_folder(path)
    if path.is_file() and tarfile.is_tarfile(path):
        with tempfile.TemporaryDirectory(prefix="spark-ray-verify-") as tmp, \
                tarfile.open(path) as tar:
            # The "data" filter refuses absolute paths, links outside and device files.
            tar.extractall(tmp, filter="data")
            roots = [p for p in Path(tmp).iterdir()]
            if len(roots) != 1 or not roots[0].is_dir():
                raise CheckFailed(f"{path}: archive must hold exactly one run folder")
            return verify_folder(roots[0])
    raise UserError(f"evidence verify: {path}: no such run folder or archive")
