"""The installed layout: actors/, tune/, chaos/ live inside spark_ray, never top-level."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

from helpers import REPO


def test_wheel_installs_non_editable_into_fresh_venv(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(wheels), str(REPO)], check=True, timeout=300)
    (wheel,) = wheels.glob("spark_ray-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"spark_ray", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}
    for sub in ("actors", "tune", "chaos"):
        assert f"spark_ray/{sub}/__init__.py" in names
    # Every package folder of the source tree made it into the wheel (the list is explicit).
    source_pkgs = {p.parent.relative_to(REPO).as_posix()
                   for p in REPO.glob("spark_ray/**/__init__.py")}
    mapped = {f"spark_ray/{d}" for d in ("actors", "tune", "chaos", "grafana")}
    for pkg in source_pkgs | mapped:
        assert f"{pkg}/__init__.py" in names, f"{pkg} missing from the wheel"
    assert "spark_ray/samples/real/ETH_BTC-5m.feather" in names
    assert "spark_ray/grafana/alerts/spark-ray.yml" in names
    assert "spark_ray/tune/spaces/sma_cross.yaml" in names
    # The console's pages, scripts and vendored chart library (with its licence) ship too.
    for page in ("index.html", "trading.html", "console.js", "console.css",
                 "vendor/uplot/uPlot.iife.min.js", "vendor/uplot/LICENSE"):
        assert f"spark_ray/console/static/{page}" in names, page

    env_dir = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    site = Path(subprocess.check_output(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    # Dependencies come from the project venv (a .pth), the package itself from the wheel.
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, timeout=300)
    probe = (
        "import spark_ray, spark_ray.actors, spark_ray.tune, spark_ray.chaos, importlib.util;"
        "print(spark_ray.actors.__file__);"
        "print([m for m in ('actors','tune','chaos') if importlib.util.find_spec(m)])"
    )
    out = subprocess.check_output([py, "-c", probe], text=True, cwd=tmp_path).splitlines()
    assert out[0].startswith(str(site / "spark_ray" / "actors"))
    assert out[1] == "[]", "no generic top-level names may be importable"
    version = subprocess.check_output([env_dir / "bin" / "spark-ray", "--version"], text=True)
    assert version.startswith("spark-ray ")
