"""Secrets never travel: a live executor reads its API key, secret and kill token on its node,
from a 0600 secrets file; the values it was started with are planted (unique, random) and then
searched for everywhere an operator or another worker could read: the actor's pickled
constructor argument (what Ray keeps in its control store), Ray's state API, the dashboard's
HTTP API, every log of the Ray session, the executor's and breaker's journals and the run's
files. They appear nowhere; the executor still trades with them (signed orders filled at the
venue) and its control plane still takes the token."""

from __future__ import annotations

import json
import os
import secrets
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import ray
from ray import cloudpickle

from spark_ray.actors.executor import start_executor
from spark_ray.adapters import get_adapter
from spark_ray.app.session import current_session_dir
from spark_ray.execution.control import TOKEN_ENV
from spark_ray.execution.executor import ExecutorConfig
from spark_ray.execution.params import load_approved
from spark_ray.execution.spec import ExecutorSpec
from spark_ray.secrets import SecretRef, write_secrets_file


def _get(url: str) -> str:
    """GET from the dashboard, with Ray's token when token authentication is on."""
    from spark_ray.app.auth import find_token_source

    req = urllib.request.Request(url)
    source = find_token_source()
    if source is not None:
        token = os.environ[source] if source == "RAY_AUTH_TOKEN" else \
            Path(source).read_text().strip()
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        raise AssertionError(f"{url}: HTTP {e.code}: {e.read()[:500]!r}") from None


def _files_containing(root: Path, needles: list[str], skip: set[Path]) -> list[str]:
    found = []
    for p in root.rglob("*"):
        if not p.is_file() or p in skip:
            continue
        try:
            data = p.read_bytes()
        except OSError:
            continue
        found += [f"{p}: {n[:4]}..." for n in needles if n.encode() in data]
    return found


def test_keys_and_tokens_are_read_on_the_node_and_appear_nowhere(
        ray_session: Any, make_venue: Any, make_breaker: Any, make_fabric: Any, approved: Any,
        wait_for: Any, venue_keys: Any, tmp_path: Path) -> None:
    key, secret = f"K{secrets.token_hex(12)}", f"S{secrets.token_hex(20)}"
    token = f"T{secrets.token_hex(16)}"
    planted = [key, secret, token]
    venue = make_venue(api_keys={key: secret})
    bname, _ = make_breaker()
    ap = load_approved(approved())

    names = get_adapter("binance").credential_refs()
    vault = tmp_path / "vault"
    vault.mkdir(mode=0o700)
    secrets_file = write_secrets_file(vault / "secrets", {
        names.key.env: key, names.secret.env: secret, TOKEN_ENV: token})
    name = f"executor:sec{uuid.uuid4().hex[:8]}"
    spec = ExecutorSpec(
        config=ExecutorConfig(name=name.replace(":", "-"), symbols=("BTCUSDT",), interval="1s",
                              mode="live", cash=5_000.0, warmup_bars=30),
        strategy=ap.strategy, params=ap.params, journal_path=str(tmp_path / "journal.jsonl"),
        approved_path=ap.path, trusted_keys=ap.trusted_keys, approval=ap.approval,
        broker="binance", rest_url=venue.rest_url, ws_url=venue.ws_url,
        credentials=get_adapter("binance").credential_refs(str(secrets_file)),
        breaker_name=bname, control_port=0,
        control_token=SecretRef(TOKEN_ENV, str(secrets_file)),
        broker_options={"timeout_s": 1.0, "attempts": 4, "backoff_s": 0.05,
                        "recv_window_ms": 1_000})
    shipped = cloudpickle.dumps(spec)  # exactly what Ray stores as the actor's argument
    assert not [n for n in planted if n.encode() in shipped]
    assert key not in venue_keys  # the planted values are this test's own

    ex = start_executor(spec, name)
    try:
        fabric = make_fabric(venue)
        ray.get([n.subscribe.remote(ex, "on_market_data") for n in fabric.normalizers])
        st = wait_for(lambda: (s := ray.get(ex.status.remote()))["orders"]["FILLED"] >= 1 and s,
                      timeout=90, what="a live fill signed with the planted key")
        assert st["mode"] == "live"
        # The kill token was read on the node too: a wrong one is refused, the planted one works.
        url = st["control_url"]
        for given, code in ((token[::-1], 401), (token, 200)):
            req = urllib.request.Request(url + "/kill", json.dumps({"reason": "test"}).encode(),
                                         {"Authorization": f"Bearer {given}",
                                          "Content-Type": "application/json"}, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    got = r.status
            except urllib.error.HTTPError as e:
                got = e.code
            assert got == code, (given == token, got)

        # Everywhere Ray shows or keeps things about actors, tasks, jobs and workers.
        from ray.util import state

        dash = ray_session.dashboard_url
        assert dash
        base = dash if dash.startswith("http") else f"http://{dash}"
        # The executor's own actor and every task of it (its creation task carries the
        # spec); then everything else the session shows, as far as the API returns it (a long
        # test session holds tens of thousands of tasks: their listing is truncated).
        mine = [("actor_id", "=", ex._actor_id.hex())]
        partial = {"address": base, "detail": True, "limit": 10_000,
                   "raise_on_missing_output": False}
        views = [state.list_actors(filters=mine, **partial),  # type: ignore[arg-type]
                 state.list_tasks(filters=mine, **partial),  # type: ignore[arg-type]
                 state.list_actors(**partial), state.list_tasks(**partial),
                 state.list_workers(**partial), state.list_nodes(**partial),
                 state.list_jobs(address=base)]
        assert views[0] and views[1], "the executor's actor and tasks are listed"
        text = json.dumps([[getattr(x, "__dict__", x) for x in v] for v in views], default=str)
        assert not [n for n in planted if n in text], "Ray's state API shows a secret"
        only = ("&filter_keys=actor_id&filter_predicates=%3D&filter_values="
                + ex._actor_id.hex())
        for path in ("/api/v0/actors?detail=1&limit=10000", "/api/v0/tasks?detail=1&limit=100" +
                     only,
                     "/api/jobs/", "/nodes?view=summary"):
            body = _get(base + path)
            assert not [n for n in planted if n in body], f"dashboard {path} shows a secret"
            if "tasks" in path:
                assert ex._actor_id.hex() in body, "the executor's tasks are in the answer"
        ray.get(ex.stop.remote())
    finally:
        ray.kill(ex, no_restart=True)

    # Every log of the session (raylet, GCS, every worker's stdout/stderr), and this run's
    # files: journals, the breaker's, the approval -- all but the secrets file itself.
    leaks = _files_containing(current_session_dir() / "logs", planted, set())
    leaks += _files_containing(tmp_path, planted, {secrets_file})
    assert not leaks, leaks
    assert os.stat(secrets_file).st_mode & 0o077 == 0
