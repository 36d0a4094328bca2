"""Token authentication when the CLI joins a running Ray cluster.

Ray 2.5x+ turns token authentication on for ``ray start --head`` whenever a token exists (it
generates ``~/.ray/auth_token`` on the first local ``ray.init``). A client that joins with an
explicit address (``--address`` / ``RAY_ADDRESS``) does *not* switch token mode on by itself
(only ``address="auto"`` does, see ``ray._private.worker.init``), so it retries for ~20 s with
"Authentication token is missing" in Ray's C++ log and ends in a bare ``ConnectionError``.

:func:`prepare_join` does for an explicit address what Ray does for ``auto``: when
``RAY_AUTH_MODE`` is unset and a token is available (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH``,
``~/.ray/auth_token``, the same order as Ray's loader), it sets ``RAY_AUTH_MODE=token`` for this
process. An explicit ``RAY_AUTH_MODE`` is always respected. :func:`explain_join_failure` turns a
failed join into a message that names exactly what to set. The token itself is never read into
a message, a log line or the object store: only where it came from.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

AUTH_MODE_ENV = "RAY_AUTH_MODE"
TOKEN_ENV = "RAY_AUTH_TOKEN"  # nosec B105  # the name of an environment variable, not a token
TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"  # nosec B105  # the name of an environment variable, not a token


def default_token_path() -> Path:
    """Where ``ray start`` / ``ray get-auth-token --generate`` keep the token."""
    return Path.home() / ".ray" / "auth_token"


@dataclass(frozen=True)
class AuthPlan:
    """How this process will authenticate to the cluster it joins."""

    mode: str                # "token", "disabled" or "unset" (Ray's default for a client)
    token_source: str | None  # "RAY_AUTH_TOKEN", a file path, or None when no token was found
    switched_on: bool        # True when we set RAY_AUTH_MODE=token ourselves


def find_token_source() -> str | None:
    """Where a token is available, in Ray's loader order; None when there is none."""
    if os.environ.get(TOKEN_ENV, "").strip():
        return TOKEN_ENV
    custom = os.environ.get(TOKEN_PATH_ENV, "").strip()
    if custom:
        path = Path(custom).expanduser()
        return str(path) if _readable_token(path) else None
    path = default_token_path()
    return str(path) if _readable_token(path) else None


def _readable_token(path: Path) -> bool:
    try:
        return path.is_file() and bool(path.read_text(encoding="utf-8").strip())
    except OSError:
        return False


def prepare_join() -> AuthPlan:
    """Switch token mode on for joining a cluster when a token is available and the mode unset."""
    explicit = os.environ.get(AUTH_MODE_ENV)
    source = find_token_source()
    if explicit is not None:
        return AuthPlan(mode=explicit.strip().lower() or "unset", token_source=source,
                        switched_on=False)
    if source is None:
        return AuthPlan(mode="unset", token_source=None, switched_on=False)
    os.environ[AUTH_MODE_ENV] = "token"
    if "ray" in sys.modules:
        # Ray caches its config at import; refresh it so this process sees token mode (what
        # Ray's own ``_enable_token_auth`` does for a local ``ray.init``).
        from ray._raylet import Config  # type: ignore[attr-defined]

        Config.initialize("")
    return AuthPlan(mode="token", token_source=source, switched_on=True)


def explain_join_failure(address: str, plan: AuthPlan) -> str:
    """What to do when joining ``address`` failed: names the variables and the file to set."""
    head = f"could not join the Ray cluster at {address}"
    if plan.mode == "token":
        return (f"{head} with the token from {plan.token_source or 'nowhere'} (RAY_AUTH_MODE="
                f"token). If the cluster is up, its token differs: copy the head node's "
                f"~/.ray/auth_token to {default_token_path()} or point {TOKEN_PATH_ENV} at a copy "
                f"(or set {TOKEN_ENV}); on the head node `ray get-auth-token` prints it.")
    if plan.mode == "disabled":
        return (f"{head} with RAY_AUTH_MODE=disabled. If the cluster uses token authentication "
                f"(Ray's default for `ray start --head`), unset RAY_AUTH_MODE or set it to "
                f"'token' and provide the head node's token in {default_token_path()}, "
                f"{TOKEN_PATH_ENV} or {TOKEN_ENV}.")
    return (f"{head}. Is it running (`ray status --address {address}`)? If it uses token "
            f"authentication (Ray's default for `ray start --head`), no token was found: copy "
            f"the head node's ~/.ray/auth_token to {default_token_path()}, or set "
            f"{TOKEN_PATH_ENV}=<file> or {TOKEN_ENV}=<token> (spark-ray then sets "
            f"RAY_AUTH_MODE=token itself).")
