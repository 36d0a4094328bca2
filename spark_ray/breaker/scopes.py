"""Breaker scopes: what a trip blocks.

``global`` blocks every order; ``account:NAME`` the orders of that account; ``strategy:NAME``
that strategy's orders; ``symbol:SYMBOL`` that symbol's orders. An order belongs to four scopes
(global, its account, its strategy when it names one, its symbol) and goes out only when all of
them are ARMED, except a position-reducing order, which every scope lets through (and journals).

Each kind of scope runs its own rules: account and strategy scopes the PnL rules on their own
equity and closed trades, symbol scopes the market-data health rules, the global scope the rest
(order, exposure and venue-order rules) and the kill switch. Any scope can be tripped and reset
by hand and switched to dry-run.
"""

from __future__ import annotations

import re
from typing import Literal

GLOBAL = "global"
ScopeKind = Literal["global", "account", "strategy", "symbol"]
KINDS: tuple[ScopeKind, ...] = ("global", "account", "strategy", "symbol")
_NAME = re.compile(r"[A-Za-z0-9_.\-/@:]{1,64}")

# Which rules each kind of scope evaluates (the rest of the config's rules are global).
PNL_RULES = ("max_drawdown", "daily_loss", "consecutive_losses")
DATA_RULES = ("stale_data", "sequence_gaps", "venue_errors", "clock_offset")


def parse_scope(text: str) -> str:
    """``global`` or ``KIND:NAME`` (kind account, strategy or symbol), normalized; ValueError
    naming what is wrong otherwise. Symbols are upper-cased (the fabric reports them so)."""
    s = text.strip()
    if s == GLOBAL:
        return GLOBAL
    kind, sep, name = s.partition(":")
    if not sep or kind not in ("account", "strategy", "symbol"):
        raise ValueError(f"{text!r} is not a scope: use global, account:NAME, strategy:NAME "
                         "or symbol:SYMBOL")
    if not _NAME.fullmatch(name):
        raise ValueError(f"{text!r}: the name after {kind}: must be 1-64 letters, digits or "
                         "_.-/@:")
    return f"{kind}:{name.upper() if kind == 'symbol' else name}"


def scope_kind(scope: str) -> ScopeKind:
    if scope == GLOBAL:
        return "global"
    kind = scope.partition(":")[0]
    if kind == "account":
        return "account"
    if kind == "strategy":
        return "strategy"
    return "symbol"


def scope_name(scope: str) -> str:
    """The part after ``KIND:`` ('' for global)."""
    return scope.partition(":")[2]


def account_scope(name: str) -> str:
    return f"account:{name}"


def strategy_scope(name: str) -> str:
    return f"strategy:{name}"


def symbol_scope(symbol: str) -> str:
    """The scope of ``symbol`` (upper case: the venue's spelling, and the fabric's key)."""
    return f"symbol:{symbol.upper()}"


def order_scopes(symbol: str, account: str, strategy: str) -> tuple[str, ...]:
    """The scopes an order of ``symbol`` by ``account``/``strategy`` must pass."""
    out = [GLOBAL, account_scope(account)]
    if strategy:
        out.append(strategy_scope(strategy))
    out.append(symbol_scope(symbol))
    return tuple(out)
