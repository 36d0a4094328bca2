"""``make bench``: run every ``benchmarks/bench_*.py`` and keep their JSON in an evidence bundle.

Each benchmark prints one JSON object comparing this project with its peers measured in the same
run; this runner prints them together and stores ``bench.json`` in ``runs/<NONCE>/``.
Run one benchmark with ``python benchmarks/run_all.py NAME`` (e.g. ``ray_costs``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from spark_ray.evidence import run_folder

HERE = Path(__file__).resolve().parent


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
        run.write_json("bench.json", results, "benchmark results, each beside its peers")
        run.exit_code = code
    print(json.dumps(results, indent=2))
    print(f"evidence bundle: {run.path}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
