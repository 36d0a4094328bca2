"""Fuzzing what operators hand us as files: the settings file (spark_ray.config.load_settings)
and the import formats (spark_ray.data.importer.parse_file). Random bytes, random YAML, random
CSV: either a result or a UserError naming the problem (the CLI's exit 2), never another
exception (a traceback)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import given
from hypothesis import strategies as st

from spark_ray.config import load_settings
from spark_ray.data.importer import parse_file
from spark_ray.errors import UserError

from fuzz_helpers import JSON, fuzz_settings

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                    st.text(max_size=15))
SECTIONS = st.dictionaries(
    st.sampled_from(["ray", "data", "venue", "streams", "execution", "observe", "x", "port"]),
    st.one_of(SCALARS, st.dictionaries(st.sampled_from(
        ["address", "num_cpus", "dashboard_port", "store", "include_dashboard", "namespace",
         "y"]), st.one_of(SCALARS, JSON), max_size=3), JSON), max_size=3)
CONFIG_TEXT = st.one_of(
    SECTIONS.map(lambda d: yaml.safe_dump(d).encode()),
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"[" * 1500, b"a: &a [*a]", b"ray: &a {x: *a}", b"{a: " * 1000,
                     b"\xff\xfe\x00", b"ray: !!python/object:os.system x", b"- 1\n- 2",
                     b"ray: [1, 2"]),
)


def test_settings_file_gives_settings_or_a_user_error() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spark-ray.yaml"

        @fuzz_settings(150)
        @given(text=CONFIG_TEXT)
        def run(text: bytes) -> None:
            path.write_bytes(text)
            try:
                load_settings(path, environ={})
            except UserError as e:
                msg = str(e)
                assert msg and "Traceback" not in msg and len(msg) < 5000, msg[:500]

        run()


CSV_LINE = st.lists(st.one_of(st.integers(-2**63, 2**64).map(str), st.floats().map(str),
                              st.sampled_from(["", "open_time", "true", "x", "1e3", '"a,b"']),
                              st.text(max_size=8)), max_size=12).map(lambda cs: ",".join(cs))
FILE_BYTES = st.one_of(
    st.lists(CSV_LINE, max_size=6).map(lambda ls: "\n".join(ls).encode("utf-8",
                                                                        "surrogatepass")),
    st.binary(max_size=300),
    st.sampled_from([b"", b"\n\n", b"PK\x03\x04garbage", b"\x1f\x8bgarbage",
                     b"1700000000000,1,2,0.5,1.5,10,1700000059999,15,3,5,7,0\n"]),
)
NAMES = st.sampled_from(["BTCUSDT-1m-2024-01-01.csv", "BTCUSDT-trades-2024-01-01.csv",
                         "BTCUSDT-aggTrades-2024-01-01.csv", "BTC_USDT-1m.json",
                         "BTCUSDT-1m-2024-01-01.zip", "BTC_USDT-trades.feather", "x.csv"])


def test_import_formats_give_a_table_or_a_user_error() -> None:
    with tempfile.TemporaryDirectory() as tmp:

        @fuzz_settings(200)
        @given(data=FILE_BYTES, name=NAMES,
               fmt=st.sampled_from(["binance-archive", "freqtrade", "csv", "nope"]))
        def run(data: bytes, name: str, fmt: str) -> None:
            path = Path(tmp) / name
            path.write_bytes(data)
            try:
                parse_file(path, fmt, None, None)
            except UserError as e:
                assert str(e) and len(str(e)) < 5000, str(e)[:500]
            finally:
                path.unlink()

        run()
