"""User data stream listen keys: one per account, valid `ttl_s` after creation or keepalive.

Binance semantics: POST on an account that already has an active key returns that key and
extends it; PUT extends; DELETE invalidates; a key nobody keeps alive expires (the server then
sends ``listenKeyExpired``). Pure: time is passed in (monotonic seconds).
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass

_ALPHABET = string.ascii_letters + string.digits
KEY_LENGTH = 60  # Binance listen keys are 60 letters and digits


@dataclass
class _Entry:
    account: str
    expires: float


class ListenKeys:
    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._keys: dict[str, _Entry] = {}
        self._by_account: dict[str, str] = {}

    def create(self, account: str, now: float) -> str:
        """The account's active key (extended), or a new one."""
        key = self._by_account.get(account)
        if key is None:
            key = "".join(secrets.choice(_ALPHABET) for _ in range(KEY_LENGTH))
            self._by_account[account] = key
            self._keys[key] = _Entry(account, 0.0)
        self._keys[key].expires = now + self.ttl_s
        return key

    def keepalive(self, key: str, account: str, now: float) -> bool:
        entry = self._keys.get(key)
        if entry is None or entry.account != account:
            return False
        entry.expires = now + self.ttl_s
        return True

    def close(self, key: str, account: str) -> bool:
        entry = self._keys.get(key)
        if entry is None or entry.account != account:
            return False
        del self._keys[key]
        self._by_account.pop(account, None)
        return True

    def account_of(self, key: str) -> str | None:
        entry = self._keys.get(key)
        return entry.account if entry is not None else None

    def key_of(self, account: str) -> str | None:
        return self._by_account.get(account)

    def expire(self, now: float) -> list[str]:
        """Drop and return the keys whose time is up."""
        gone = [k for k, e in self._keys.items() if now >= e.expires]
        for k in gone:
            entry = self._keys.pop(k)
            self._by_account.pop(entry.account, None)
        return gone
