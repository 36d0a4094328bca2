"""Trading accounts of the venue: balances as exact integers, free and locked, per API key.

Amounts are integer counts of 1e-8 (Binance's 8 decimals) so that locking, filling, fees and
releasing add up exactly and a test can check conservation to the last unit. Every mutation
records the asset in :attr:`Account.touched`, which is what ``outboundAccountPosition`` lists.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from spark_ray.venue.market import mix64
from spark_ray.venue.orders import ZERO
from spark_ray.venue.specs import fmt8

E8 = 100_000_000
_DECIMAL_RE = re.compile(r"^[0-9]{1,20}(\.[0-9]{1,20})?$")


class InsufficientBalance(Exception):
    """Free balance is short: Binance's -2010 "Account has insufficient balance ..."."""


def to_e8(text: str) -> int:
    """A non-negative decimal string -> integer 1e-8 units; ValueError past 8 decimals."""
    if not _DECIMAL_RE.match(text):
        raise ValueError(f"{text!r} is not a non-negative decimal")
    value = Decimal(text) * E8
    if value != value.to_integral_value():
        raise ValueError(f"{text!r} has more than 8 decimals")
    return int(value)


def rate_e8(rate: float) -> int:
    """A commission rate (0.001 = 0.1%) in 1e-8 units, exactly as written."""
    return int(Decimal(repr(rate)) * E8)


def commission(amount_e8: int, rate: int) -> int:
    """Fee on an amount (both 1e-8), rounded half up to the asset's 8 decimals."""
    return (amount_e8 * rate + E8 // 2) // E8


@dataclass
class Balance:
    free: int = 0
    locked: int = 0


@dataclass
class Account:
    """One API key's spot wallet and fee schedule."""

    key: str
    maker_rate: int  # 1e-8 units: 100_000 = 0.1%
    taker_rate: int
    balances: dict[str, Balance] = field(default_factory=dict)
    update_time: int = 0
    touched: set[str] = field(default_factory=set)

    @property
    def uid(self) -> int:
        """A stable account number derived from the key (Binance shows a numeric uid)."""
        return mix64(*self.key.encode()) % 1_000_000_000

    def balance(self, asset: str) -> Balance:
        b = self.balances.get(asset)
        if b is None:
            b = self.balances[asset] = Balance()
        return b

    def free(self, asset: str) -> int:
        return self.balance(asset).free

    def _touch(self, asset: str, now_ms: int) -> None:
        self.touched.add(asset)
        self.update_time = now_ms

    def lock(self, asset: str, amount: int, now_ms: int) -> None:
        """Move free -> locked (an order resting on the book); short free raises."""
        b = self.balance(asset)
        if amount > b.free:
            raise InsufficientBalance(asset)
        b.free -= amount
        b.locked += amount
        self._touch(asset, now_ms)

    def unlock(self, asset: str, amount: int, now_ms: int) -> None:
        """Move locked -> free (the unfilled rest of a canceled or expired order)."""
        b = self.balance(asset)
        if amount > b.locked:
            raise AssertionError(f"{asset}: unlock {amount} > locked {b.locked}")
        b.locked -= amount
        b.free += amount
        self._touch(asset, now_ms)

    def spend_locked(self, asset: str, amount: int, now_ms: int) -> None:
        """A fill pays out of what the order had locked."""
        b = self.balance(asset)
        if amount > b.locked:
            raise AssertionError(f"{asset}: spend {amount} > locked {b.locked}")
        b.locked -= amount
        self._touch(asset, now_ms)

    def debit(self, asset: str, amount: int, now_ms: int) -> None:
        """A market order pays straight from free (checked before it executes)."""
        b = self.balance(asset)
        if amount > b.free:
            raise InsufficientBalance(asset)
        b.free -= amount
        self._touch(asset, now_ms)

    def credit(self, asset: str, amount: int, now_ms: int) -> None:
        self.balance(asset).free += amount
        self._touch(asset, now_ms)

    def take_touched(self) -> list[str]:
        """Assets changed since the last call, sorted (one outboundAccountPosition's list)."""
        out = sorted(self.touched)
        self.touched.clear()
        return out

    def rows(self, assets: Iterable[str], *, omit_zero: bool = False) -> list[dict[str, str]]:
        """GET /api/v3/account balances: asset, free, locked as 8-decimal strings."""
        out = []
        for a in assets:
            b = self.balance(a)
            if omit_zero and b.free == 0 and b.locked == 0:
                continue
            out.append({"asset": a, "free": fmt8(b.free), "locked": fmt8(b.locked)})
        return out

    def info(self, assets: Iterable[str], *, omit_zero: bool = False) -> dict[str, Any]:
        """GET /api/v3/account body."""
        return {
            "makerCommission": self.maker_rate // 10_000,  # Binance: in 0.01% units
            "takerCommission": self.taker_rate // 10_000,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {"maker": fmt8(self.maker_rate), "taker": fmt8(self.taker_rate),
                                "buyer": ZERO, "seller": ZERO},
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": self.update_time,
            "accountType": "SPOT",
            "balances": self.rows(assets, omit_zero=omit_zero),
            "permissions": ["SPOT"],
            "uid": self.uid,
        }

    def commission_rates(self) -> dict[str, Any]:
        """POST /api/v3/order/test?computeCommissionRates=true body."""
        zero = {"maker": ZERO, "taker": ZERO}
        return {
            "standardCommissionForOrder": {"maker": fmt8(self.maker_rate),
                                           "taker": fmt8(self.taker_rate)},
            "specialCommissionForOrder": zero,
            "taxCommissionForOrder": zero,
            "discount": {"enabledForAccount": False, "enabledForSymbol": False,
                         "discountAsset": "BNB", "discount": ZERO},
        }


def open_account(key: str, starting: Mapping[str, str | int | float], assets: Iterable[str],
                 maker_rate: int, taker_rate: int) -> Account:
    """A fresh account: every listed asset at 0, then the configured starting balances."""
    acct = Account(key, maker_rate, taker_rate)
    for a in assets:
        acct.balance(a)
    for a, amount in starting.items():
        acct.balance(a).free = to_e8(str(amount))
    return acct
