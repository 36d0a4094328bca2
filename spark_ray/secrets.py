"""Secrets by reference: what travels is where to read a secret, never the secret.

An actor's constructor arguments are pickled into its creation task, which Ray keeps in its
control store (to restart the actor) and may show wherever it shows actor specs; values put in
the object store are readable by any worker of the job. So API keys and tokens never go there:
a :class:`SecretRef` names an environment variable and, optionally, a secrets file, and the
process that needs the secret reads it on its own node, when it needs it.

The secrets file holds ``NAME=value`` lines (``#`` comments, blank lines ignored; the format
of a dotenv file without quoting or expansion). It must be readable by its owner only (mode
0600 or stricter): one readable by group or others is refused, as ssh refuses such a key. On a
multi-node cluster, put it on every node that runs the actor (the environment of a Ray node is
fixed when ``ray start`` ran, and a job's runtime_env would carry the value through Ray).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from spark_ray.errors import UserError

SECRETS_FILE_ENV = "SPARK_RAY_SECRETS_FILE"


def require_owner_only(path: Path, what: str) -> None:
    """UserError (prefixed ``what``) when ``path`` is readable by group or others: a file
    holding a secret must be mode 0600 or stricter, as ssh requires of a private key."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise UserError(f"{what}: {path} is readable by others (mode {mode:o}); "
                        f"run `chmod 600 {path}`")


def create_private(path: Path, data: bytes) -> Path:
    """Create ``path`` with ``data``, mode 0600 from the first byte; never overwrites."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


def read_secrets_file(path: str | Path) -> dict[str, str]:
    """NAME -> value from a 0600 secrets file; UserError naming the file (and line) when it
    is missing, readable by others, or malformed. Values are never in the messages."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"secrets file: {p} not found")
    require_owner_only(p, "secrets file")
    out: dict[str, str] = {}
    for n, raw in enumerate(p.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip().isidentifier():
            raise UserError(f"secrets file: {p}:{n}: expected NAME=value")
        out[name.strip()] = value.strip()
    return out


def write_secrets_file(path: str | Path, values: Mapping[str, str]) -> Path:
    """Create ``path`` (mode 0600 from the start, never overwritten) holding ``values``."""
    return create_private(Path(path), "".join(f"{k}={v}\n" for k, v in values.items()).encode())


@dataclass(frozen=True)
class SecretRef:
    """Where one secret is read: ``env`` (a variable name) first, then that name in the
    secrets ``file`` (default: $SPARK_RAY_SECRETS_FILE when set). Names only: safe to pickle,
    log and show."""

    env: str
    file: str | None = None

    def read(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The secret on this node, or None when neither place has it."""
        env = os.environ if environ is None else environ
        if env.get(self.env):
            return env[self.env]
        file = self.file or env.get(SECRETS_FILE_ENV)
        if file:
            return read_secrets_file(file).get(self.env) or None
        return None

    def require(self, what: str, environ: Mapping[str, str] | None = None) -> str:
        """The secret; UserError saying where it was looked for (never a value)."""
        value = self.read(environ)
        if value is None:
            env = os.environ if environ is None else environ
            file = self.file or env.get(SECRETS_FILE_ENV)
            where = f"${self.env}" + (f" or {self.env}= in {file}" if file else
                                      f" (or a secrets file: ${SECRETS_FILE_ENV})")
            raise UserError(f"{what}: not set; looked for {where}")
        return value


class PrivateSecrets:
    """A secrets file in a fresh 0700 directory, for secrets a run makes for itself (the
    demo's kill token, the simulated venue's API key): its actors read them from here on this
    node. Not under the run folder, so evidence never holds them; :meth:`close` removes it."""

    def __init__(self, values: Mapping[str, str]) -> None:
        import tempfile

        self.dir = Path(tempfile.mkdtemp(prefix="spark-ray-secrets-"))  # mode 0700
        self.path = write_secrets_file(self.dir / "secrets", values)

    def ref(self, name: str) -> SecretRef:
        return SecretRef(name, str(self.path))

    def close(self) -> None:
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)
