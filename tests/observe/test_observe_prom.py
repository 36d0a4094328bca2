"""Prometheus process management and ``spark-ray observe up|down|status`` against the session's
real Ray: config from Ray's file service discovery, our PID only, state in a folder."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from spark_ray.app.cli import observe as cli
from spark_ray.app.session import current_session_dir
from spark_ray.config import load_settings
from spark_ray.observe import prom
from spark_ray.observe.prom import PromClient, PromState


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="spark-ray")
    sub = parser.add_subparsers(dest="command")
    cli.add_parser(sub)
    args = parser.parse_args(argv)
    return int(args.handler(args, load_settings(environ={})))


def test_config_scrapes_ray_file_sd_and_loads_rules(tmp_path: Path, promtool: str) -> None:
    sd = tmp_path / "session" / prom.SD_FILE_NAME
    sd.parent.mkdir()
    sd.write_text(json.dumps([{"labels": {"job": "ray"}, "targets": ["127.0.0.1:1"]}]))
    text = prom.render_config(sd, prom.rule_files(), scrape_interval="2s")
    cfg = yaml.safe_load(text)
    (job,) = cfg["scrape_configs"]
    assert job["file_sd_configs"][0]["files"] == [str(sd)]
    assert cfg["global"]["evaluation_interval"] == "2s"
    assert [Path(r).name for r in cfg["rule_files"]] == ["spark-ray-faults.yml", "spark-ray.yml"]
    path = tmp_path / "prometheus.yml"
    path.write_text(text)
    out = subprocess.run([promtool, "check", "config", str(path)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_cli_up_status_down(ray_session: Any, tmp_path: Path, prometheus_bin: str,
                            capsys: pytest.CaptureFixture[str]) -> None:
    session_dir = current_session_dir()
    state_dir = tmp_path / "observe"
    port = prom.free_port()
    saved = {k: os.environ.get(k) for k in ("RAY_PROMETHEUS_HOST", "RAY_GRAFANA_HOST",
                                           "RAY_PROMETHEUS_NAME")}
    try:
        assert _run(["observe", "up", "--session-dir", str(session_dir), "--state-dir",
                     str(state_dir), "--port", str(port)]) == 0
        out = capsys.readouterr().out
        url = f"http://127.0.0.1:{port}"
        assert f"prometheus: {url}" in out and f"RAY_PROMETHEUS_HOST={url}" in out
        assert "RAY_GRAFANA_HOST=DISABLED" in out
        state = PromState.load(state_dir)
        assert state is not None and prom.is_ours(state)
        assert (state_dir / prom.DASHBOARD_ENV_FILE).read_text().startswith(
            f"RAY_PROMETHEUS_HOST={url}\n")
        # A second `up` on the same state dir refuses instead of starting a twin.
        with pytest.raises(Exception, match="already running"):
            _run(["observe", "up", "--session-dir", str(session_dir), "--state-dir",
                  str(state_dir)])
        client = PromClient(url)
        assert client.wait_ray_scraped(40), "Ray's metrics never scraped"
        rules = {r["name"] for g in client.rules() for r in g["rules"]}
        assert {"StreamsIngestLagHigh", "BreakerTripped", "ExecutorDown"} <= rules
        assert _run(["observe", "status", "--state-dir", str(state_dir), "--json"]) == 0
        info = json.loads(capsys.readouterr().out)
        assert info["running"] and info["ready"]
        assert any(t["health"] == "up" for t in info["targets"])
        assert _run(["observe", "down", "--state-dir", str(state_dir)]) == 0
        assert "stopped prometheus pid" in capsys.readouterr().out
        assert not prom.is_ours(state)
        assert not client.ready()
        assert _run(["observe", "status", "--state-dir", str(state_dir)]) == 1
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        st = PromState.load(state_dir)
        if st is not None:
            prom.stop(st)


def test_down_never_signals_a_pid_that_is_not_ours(tmp_path: Path) -> None:
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        state = PromState(pid=victim.pid, port=1, url="http://127.0.0.1:1",
                          state_dir=str(tmp_path), config_file=str(tmp_path / "prometheus.yml"),
                          data_dir="", log_file="", sd_file="", rule_files=[],
                          started=time.time())
        state.save()
        assert _run(["observe", "down", "--state-dir", str(tmp_path)]) == 0
        time.sleep(0.3)
        assert victim.poll() is None, "down killed a process it did not start"
    finally:
        victim.send_signal(signal.SIGTERM)
        victim.wait(10)


def test_up_without_prometheus_is_a_usage_error(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    from spark_ray.errors import UserError

    monkeypatch.setattr(prom, "find_binary", lambda name: None)
    with pytest.raises(UserError, match="apt-get install -y prometheus"):
        _run(["observe", "up", "--session-dir", str(tmp_path), "--state-dir", str(tmp_path)])


def test_missing_binary_fails_under_ci_and_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    from observe_helpers import need

    monkeypatch.setattr(prom, "find_binary", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y prometheus"):
        need("promtool")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        need("promtool")
