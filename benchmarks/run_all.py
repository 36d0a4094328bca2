"""``make bench``: run every ``benchmarks/bench_*.py`` and keep their JSON in an evidence bundle.

Each benchmark prints one JSON object comparing this project with its peers measured in the same
run; this runner prints them together, stores ``bench.json`` in ``runs/<NONCE>/`` and writes each
result to ``benchmarks/results/<name>.json`` with the machine, library versions and commit it
was measured on (the files the README's numbers come from; commit them with the change).
Run one benchmark with ``python benchmarks/run_all.py NAME`` (e.g. ``ray_costs``).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from spark_ray.evidence import run_folder

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def provenance() -> dict[str, object]:
    """Where a number was measured: machine, Python and library versions, commit."""
    from importlib.metadata import PackageNotFoundError, version

    versions: dict[str, str] = {}
    for pkg in ("ray", "pyarrow", "numpy", "pandas", "websockets", "aiohttp"):
        with contextlib.suppress(PackageNotFoundError):
            versions[pkg] = version(pkg)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True,
                            text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", ".",
                                 ":!benchmarks/results", ":!runs"], cwd=HERE.parent,
                                capture_output=True, text=True).stdout.strip())
    return {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                        "processor": platform.machine()},
            "python": platform.python_version(), "versions": versions,
            "commit": commit + ("-dirty" if dirty else ""),
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def main(argv: list[str]) -> int:
    wanted = set(argv)
    scripts = sorted(p for p in HERE.glob("bench_*.py")
                     if not wanted or p.stem.removeprefix("bench_") in wanted)
    results: dict[str, object] = {}
    code = 0
    with run_folder(Path("runs"), command=[sys.executable, *sys.argv]) as run:
        for script in scripts:
            name = script.stem.removeprefix("bench_")
            print(f"== {name}", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                                  timeout=900)
            if proc.returncode != 0:
                code = 1
                results[name] = {"status": "FAILED", "stderr_tail": proc.stderr[-2000:]}
                print(proc.stderr[-2000:], file=sys.stderr)
                continue
            # Tolerate stray lines before the JSON object (e.g. library warnings on stdout).
            start = proc.stdout.find("\n{")
            results[name] = json.loads(proc.stdout if proc.stdout.startswith("{")
                                       else proc.stdout[start + 1:])
            results[name]["seconds"] = round(time.perf_counter() - t0, 1)  # type: ignore[index]
            RESULTS.mkdir(exist_ok=True)
            (RESULTS / f"{name}.json").write_text(
                json.dumps({"benchmark": name, **provenance(), "result": results[name]},
                           indent=2) + "\n", encoding="utf-8")
        run.write_json("bench.json", results, "benchmark results, each beside its peers")
        run.exit_code = code
    print(json.dumps(results, indent=2))
    print(f"evidence bundle: {run.path}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
