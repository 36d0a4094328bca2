"""The ``ray up`` test's node "image": an environment the throwaway SSH user owns outright.

A real node's image ships Python and the package's dependencies; the test's node is this
machine, so the image is made from what this test session already has installed. Earlier the
node's venv *borrowed* the checkout's ``.venv`` through a ``.pth`` file, which works only when
the checkout sits in a world-readable folder: cloned under ``/root`` or any 0700 directory, the
node user could not read it and ``make test`` failed.

Now the image copies the distributions it needs (spark-ray's requirement closure, its extras
included, plus pip and the build backend ``pip install ~/spark-ray`` uses) file by file, as each
distribution's ``RECORD`` lists them, into the node venv's own site-packages, and the caller
hands the copy to the node user. Nothing of the checkout is read by the node afterwards and no
permission of the checkout or of the user's home is changed. spark-ray itself is left out: the
cluster's setup commands install it from the mounted sources, which is what the test checks.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# What `pip install ~/spark-ray` needs on a node besides spark-ray's own requirements: pip
# itself (the venv is made --without-pip, offline) and the build backend of pyproject.toml
# (pip.conf turns build isolation off, so it must already be installed).
BUILD_TOOLS = ("pip", "setuptools", "wheel")


def _wanted(req: Requirement, extras: set[str]) -> bool:
    """Does ``req`` apply here, given the extras its dependant was asked with?"""
    if req.marker is None:
        return True
    return any(req.marker.evaluate({"extra": e}) for e in (extras or {""}))


def requirement_closure(roots: Iterable[str]) -> dict[str, Distribution]:
    """Every installed distribution that ``roots`` need, transitively, extras followed.

    Raises ``LookupError`` naming the missing distribution and who needs it: a node image
    without it would fail to install offline, later and less clearly."""
    todo: list[tuple[str, frozenset[str], str]] = []
    for root in roots:
        req = Requirement(root)
        todo.append((req.name, frozenset(req.extras), "the node image"))
    seen: dict[str, set[str]] = {}
    dists: dict[str, Distribution] = {}
    while todo:
        name, extras, needed_by = todo.pop()
        key = canonicalize_name(name)
        if key in seen and extras <= seen[key]:
            continue
        try:
            dist = dists.get(key) or distribution(name)
        except PackageNotFoundError:
            raise LookupError(f"{name} (needed by {needed_by}) is not installed in "
                              "this environment") from None
        dists[key] = dist
        seen[key] = seen.get(key, set()) | extras
        for line in dist.requires or []:
            req = Requirement(line)
            if _wanted(req, seen[key]):
                todo.append((req.name, frozenset(req.extras), name))
    return dists


def copy_distributions(dists: Iterable[Distribution], site: Path) -> int:
    """Copy each distribution's installed files (its RECORD) into ``site``; returns the bytes
    copied. Files that RECORD places outside site-packages (console scripts in ``bin/``) are
    skipped: the node's launchers are written by the caller."""
    copied = 0
    for dist in dists:
        base = Path(str(dist.locate_file(""))).resolve()
        for rel in dist.files or []:
            src = Path(str(dist.locate_file(rel))).resolve()
            if not src.is_relative_to(base) or not src.is_file():
                continue
            dest = site / src.relative_to(base)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
            copied += src.stat().st_size
    return copied


def node_image_distributions(package: str = "spark-ray") -> list[Distribution]:
    """The distributions a node needs to ``pip install`` ``package`` offline, without it."""
    root = distribution(package)
    deps = [line for line in root.requires or [] if _wanted(Requirement(line), set())]
    closure = requirement_closure([*deps, *BUILD_TOOLS])
    closure.pop(canonicalize_name(package), None)
    return list(closure.values())
