"""User data streams: listen keys, and account events to the connections that carry them.

A listen key is one per account, valid `ttl_s` after creation or keepalive. Binance semantics:
POST on an account that already has an active key returns that key and extends it; PUT extends;
DELETE invalidates; a key nobody keeps alive expires (the stream then gets ``listenKeyExpired``).
:class:`ListenKeys` is pure (time is passed in, monotonic seconds); :class:`UserStreams` delivers
the trading desk's events on the Binance connections opened with the key as a stream name.
"""

from __future__ import annotations

import secrets
import string
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from spark_ray.venue import formats

if TYPE_CHECKING:
    from spark_ray.venue.connections import Connection, Hub

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


class UserStreams:
    """Which connections carry which listen key; the desk's events go out through :meth:`emit`."""

    def __init__(self, hub: Hub, keys: ListenKeys) -> None:
        self.hub = hub
        self.keys = keys
        self.conns: dict[str, set[Connection]] = {}

    def is_listen_key(self, name: str) -> bool:
        return self.keys.account_of(name) is not None

    def attach(self, c: Connection, lk: str) -> None:
        c.listen_keys.add(lk)
        c.path = c.path.replace(lk, "<listenKey>")  # a credential: never shown
        self.conns.setdefault(lk, set()).add(c)

    def detach(self, c: Connection) -> None:
        """A connection went away: it no longer carries its user data streams."""
        for lk in c.listen_keys:
            conns = self.conns.get(lk)
            if conns is not None:
                conns.discard(c)
                if not conns:
                    del self.conns[lk]

    def emit(self, account: str, event: dict[str, Any]) -> None:
        """The desk's executionReport / outboundAccountPosition, to the account's streams."""
        lk = self.keys.key_of(account)
        conns = self.conns.get(lk) if lk is not None else None
        if lk is None or not conns:
            return
        self.hub.fanout(conns, lk, None, "userData", [formats.dumps(event)], None, None)

    def sweep(self) -> None:
        """After a DELETE: stop the streams of keys that are no longer valid."""
        for lk in [k for k in self.conns if self.keys.account_of(k) is None]:
            self._drop(lk, expired=False)

    def expire(self, now: float) -> None:
        for lk in self.keys.expire(now):
            self._drop(lk, expired=True)

    def _drop(self, lk: str, *, expired: bool) -> None:
        """A listenKey closed or expired: say so (expired), stop its stream, close bare sockets."""
        conns = self.conns.pop(lk, set())
        for c in list(conns):
            if expired:
                event = {"e": "listenKeyExpired", "E": int(time.time() * 1000), "listenKey": lk}
                self.hub.fanout([c], lk, None, "userData", [formats.dumps(event)], None, None)
            c.listen_keys.discard(lk)
            if not c.streams and not c.listen_keys:
                self.hub.spawn(self.hub.close(c, 1000, "listenKey expired" if expired
                                              else "listenKey closed"))
