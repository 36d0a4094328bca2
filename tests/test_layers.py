"""The house rules of docs/ARCHITECTURE.md, checked on the source: what may import what.

- Ray at the edges: the domain packages never import ``ray`` (not even inside a function) nor
  an edge package (actors, tune, chaos, app); only the edges wire Ray.
- No cycles between packages: the domain's packages form layers (one may import another only
  if that one never imports it back, directly or through others).
- No exchange-name branches outside ``spark_ray/adapters/`` and the venue simulator: code that
  must behave differently per venue asks the adapter's capabilities instead.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import REPO

# Import name -> folder, as setuptools' package-dir maps them.
EDGE_DIRS = {"spark_ray.actors": "actors", "spark_ray.tune": "tune", "spark_ray.chaos": "chaos",
             "spark_ray.app": "spark_ray/app"}
DOMAIN = ("adapters", "approval", "backtest", "breaker", "console", "data", "execution", "fills",
          "lake", "observe", "research", "signals", "strategy", "streams", "venue")
EXCHANGES = {"binance", "btcturk"}


def _modules(folder: Path) -> Iterator[Path]:
    yield from sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """Every module ``path`` imports (absolute names), wherever the import statement stands."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def _package_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "spark_ray" or len(parts) < 2:
        return None
    return parts[1]


def test_the_layout_exists() -> None:
    for name in DOMAIN:
        assert (REPO / "spark_ray" / name / "__init__.py").is_file(), name
    for folder in EDGE_DIRS.values():
        assert (REPO / folder / "__init__.py").is_file(), folder


@pytest.mark.parametrize("package", DOMAIN)
def test_the_domain_imports_neither_ray_nor_the_edges(package: str) -> None:
    bad = []
    for path in _modules(REPO / "spark_ray" / package):
        for line, mod in _imports(path):
            top = mod.split(".")[0]
            edge = next((e for e in EDGE_DIRS if mod == e or mod.startswith(e + ".")), None)
            if top == "ray" or edge:
                bad.append(f"{path.relative_to(REPO)}:{line} imports {mod}")
    assert bad == [], "\n".join(bad)


def test_no_cycles_between_packages() -> None:
    graph: dict[str, set[str]] = {}
    where: dict[tuple[str, str], str] = {}
    for package in DOMAIN:
        for path in _modules(REPO / "spark_ray" / package):
            for line, mod in _imports(path):
                other = _package_of(mod)
                if other in DOMAIN and other != package:
                    graph.setdefault(package, set()).add(other)
                    where.setdefault((package, other), f"{path.relative_to(REPO)}:{line}")

    def reaches(a: str, b: str, seen: set[str]) -> bool:
        if a == b:
            return True
        seen.add(a)
        return any(reaches(n, b, seen) for n in graph.get(a, ()) if n not in seen)

    cycles = sorted(f"{a} -> {b} ({where[(a, b)]}) and back" for a, outs in graph.items()
                    for b in outs if reaches(b, a, set()))
    assert cycles == [], "\n".join(cycles)


def _exchange_branches(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        consts: list[ast.expr] = []
        if isinstance(node, ast.Compare):
            for c in (node.left, *node.comparators):
                consts += c.elts if isinstance(c, ast.Tuple | ast.List | ast.Set) else [c]
        elif isinstance(node, ast.Dict):
            consts += [k for k in node.keys if k is not None]
        elif isinstance(node, ast.match_case):
            consts += [n for n in ast.walk(node.pattern) if isinstance(n, ast.Constant)]
        names = [c.value for c in consts if isinstance(c, ast.Constant) and c.value in EXCHANGES]
        if names:
            yield f"{path.relative_to(REPO)}:{getattr(node, 'lineno', '?')} branches on {names}"


def test_no_exchange_name_branches_outside_the_adapters() -> None:
    roots = [REPO / "spark_ray", *(REPO / d for d in ("actors", "tune", "chaos"))]
    allowed = (REPO / "spark_ray" / "adapters", REPO / "spark_ray" / "venue")
    bad = [hit for root in roots for path in _modules(root)
           if not any(path.is_relative_to(a) for a in allowed)
           for hit in _exchange_branches(path)]
    assert bad == [], "\n".join(bad)


def test_the_checks_catch_what_they_forbid(tmp_path: Path) -> None:
    """The rules above are not vacuous: a planted branch and a planted Ray import are found."""
    planted = tmp_path / "planted.py"
    planted.write_text("def f(x):\n    import ray\n    return x.exchange == 'btcturk'\n")
    assert [m for _, m in _imports(planted)] == ["ray"]
    planted.write_text("def f(x):\n    return x.exchange == 'btcturk'\n")
    old = REPO
    try:
        globals()["REPO"] = tmp_path
        assert list(_exchange_branches(planted)) == [
            "planted.py:2 branches on ['btcturk']"]
    finally:
        globals()["REPO"] = old
