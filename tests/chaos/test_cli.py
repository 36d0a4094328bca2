"""``spark-ray chaos``: bad arguments and bad experiment files exit 2 naming what is wrong,
before any Ray or fault; ``list`` shows the declared experiments."""

from __future__ import annotations

from pathlib import Path

import pytest

from spark_ray.app.cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("argv", "needle"), [
    (["chaos", "run", "--experiments", "lag_spike,meteor_strike"],
     "--experiments: unknown id(s) meteor_strike; known: lag_spike, seq_gap"),
    (["chaos", "run", "--quick", "--experiments", "drop"],
     "--quick and --experiments: give one or the other"),
    (["chaos", "run", "--experiments", ",,"], "--experiments: give at least one id"),
    (["chaos", "run", "--experiments", "drop,drop"], "--experiments: an id is repeated"),
    (["chaos", "run", "--rate", "0"], "--rate: must be > 0"),
    (["chaos", "list", "--experiments-dir", "/nonexistent/chaos"],
     "/nonexistent/chaos: experiments folder not found"),
])
def test_bad_arguments_exit_2_naming_the_flag(argv: list[str], needle: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(argv, capsys)
    assert code == 2
    assert needle in err
    assert "Traceback" not in err and out == ""


def test_bad_experiment_file_exits_2_naming_file_and_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.yaml").write_text(
        "id: a\nfault: {kind: venue, target: drop, params: {probabilty: 0.05}}\n"
        "duration_s: 10\nexpect_alert: StreamsFramesMissing\nmax_detect_s: 20\n"
        "max_recover_s: 60\n")
    code, _, err = run(["chaos", "run", "--experiments-dir", str(tmp_path)], capsys)
    assert code == 2
    assert f"{tmp_path / 'a.yaml'}: fault.params: unknown fault field(s): probabilty" in err


def test_list_shows_the_quick_subset(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["chaos", "list", "--quick"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert [ln.split()[0] for ln in lines] == ["lag_spike", "seq_gap", "drop", "kill_normalizer"]
    assert "venue:drop probability=0.05 for 15s -> StreamsFramesMissing" in out
    code, out, _ = run(["chaos", "list"], capsys)
    assert len(out.splitlines()) == 13
