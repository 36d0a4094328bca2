"""Several exchanges in one ``spark-ray streams up|status|down``: the flag grammar.

``--exchange binance,btcturk`` (or the flag repeated) names the exchanges, in order (the first
is the cross-venue view's basis reference). Per-exchange flags take ``EXCHANGE:`` prefixes:

- ``--symbols "binance:BTCUSDT,ETHUSDT;btcturk:BTCTRY,USDTTRY"`` (or the flag repeated, one
  exchange each): a prefix switches the exchange, plain symbols after it belong to it. With one
  exchange the prefix is optional (``--exchange binance --symbols BTCUSDT`` as always); with
  several, a symbol before any prefix is an error (which exchange?).
- ``--streams "trade;binance:trade,bookTicker"``: streams before any prefix apply to every
  exchange not named with its own; ``binance:...`` lists that exchange's.
- ``--ws-url binance=ws://h:p,btcturk=ws://h:p/btcturk`` (``--rest-url`` alike): with several
  exchanges each URL names its exchange (``=``, since URLs hold colons); an exchange without one
  uses its adapter's default. One exchange: a plain URL, as always.

Anything malformed is a :class:`~spark_ray.errors.UserError` naming the flag (exit 2).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from typing import Any

from spark_ray.adapters.registry import exchange_names
from spark_ray.errors import UserError

_PREFIX = re.compile(r"^([a-z][a-z0-9_]*):(.*)$")


class JoinValues(argparse.Action):
    """A flag given again adds to its value (``--symbols A --symbols B`` = ``A;B``) instead of
    replacing it. Only for subcommands whose defaults are suppressed, so a value already on the
    namespace came from an earlier occurrence."""

    def __init__(self, *args: Any, sep: str = ";", **kwargs: Any) -> None:
        self.sep = sep
        super().__init__(*args, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: str | Sequence[Any] | None, option_string: str | None = None) -> None:
        prev = getattr(namespace, self.dest, None)
        joined = getattr(namespace, f"_joined_{self.dest}", False)
        value = f"{prev}{self.sep}{values}" if joined and prev is not None else values
        setattr(namespace, self.dest, value)
        setattr(namespace, f"_joined_{self.dest}", True)


def parse_exchanges(raw: str | Sequence[str] | None, default: str = "binance") -> list[str]:
    """``"binance,btcturk"`` -> ``["binance", "btcturk"]`` (order kept, repeats dropped)."""
    items = _items(raw if raw is not None else default, ",")
    known = exchange_names()
    out: list[str] = []
    for ex in items:
        if ex not in known:
            raise UserError(f"--exchange: unknown exchange {ex!r}: one of {', '.join(known)}")
        if ex not in out:
            out.append(ex)
    if not out:
        raise UserError(f"--exchange: at least one of {', '.join(known)}")
    return out


def per_exchange(flag: str, raw: str | Sequence[str], exchanges: list[str],
                 shared: bool) -> dict[str, list[str]]:
    """Items per exchange (module docstring). ``shared``: items before any prefix go to every
    exchange not named (``--streams``); else they need a single exchange (``--symbols``)."""
    plain: list[str] = []
    named: dict[str, list[str]] = {}
    current: str | None = None
    for item in _items(raw, ",;"):
        m = _PREFIX.match(item)
        if m:
            current, item = m.group(1), m.group(2).strip()
            if current not in exchanges:
                raise UserError(f"{flag}: {current!r} is not one of --exchange "
                                f"{','.join(exchanges)}")
            named.setdefault(current, [])
            if not item:
                continue
        if current is None:
            plain.append(item)
        else:
            named[current].append(item)
    if plain and not shared and len(exchanges) > 1:
        raise UserError(f"{flag}: {','.join(plain)} without an exchange: with several exchanges "
                        f"write EXCHANGE:ITEM,... per exchange, e.g. "
                        f"'{exchanges[0]}:{plain[0]};{exchanges[1]}:...'")
    out: dict[str, list[str]] = {}
    for ex in exchanges:
        got = named.get(ex) if ex in named else (plain if shared or len(exchanges) == 1
                                                 else [])
        if not got:
            raise UserError(f"{flag}: nothing given for {ex} (write {ex}:ITEM,...)")
        out[ex] = list(got)
    return out


def per_exchange_url(flag: str, raw: str | None, exchanges: list[str],
                     schemes: tuple[str, ...]) -> dict[str, str | None]:
    """One URL per exchange (None: the adapter's default). One exchange: ``URL`` or
    ``EXCHANGE=URL``; several: ``EXCHANGE=URL,...`` only."""
    out: dict[str, str | None] = dict.fromkeys(exchanges)
    if raw is None:
        return out
    for item in _items(raw, ","):
        ex, sep, url = item.partition("=")
        if not sep or "://" in ex:  # a plain URL
            if len(exchanges) > 1:
                raise UserError(f"{flag}: {item!r} names no exchange: with several exchanges "
                                f"write EXCHANGE=URL, e.g. {exchanges[0]}={item}")
            ex, url = exchanges[0], item
        if ex not in exchanges:
            raise UserError(f"{flag}: {ex!r} is not one of --exchange {','.join(exchanges)}")
        if not url.startswith(schemes):
            raise UserError(f"{flag}: {url!r} must start with {' or '.join(schemes)}")
        if out[ex] is not None:
            raise UserError(f"{flag}: two URLs for {ex}")
        out[ex] = url
    return out


def _items(raw: str | Sequence[str], seps: str) -> list[str]:
    parts = [raw] if isinstance(raw, str) else list(raw)
    for sep in seps:
        parts = [p for part in parts for p in part.split(sep)]
    return [p.strip() for p in parts if p.strip()]
