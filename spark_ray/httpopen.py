"""Opening HTTP URLs without sending loopback traffic through an environment proxy.

``urllib.request.urlopen`` honours ``http_proxy``; a proxy that ``no_proxy`` does not exempt
would then carry our calls to Prometheus, the Ray dashboard or a local metrics port off the
machine. Loopback hosts are always reached directly; other hosts keep the environment's proxy
(an operator's Prometheus may sit behind one).
"""

from __future__ import annotations

import ipaddress
import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPResponse
from typing import cast

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def urlopen(req: str | urllib.request.Request, timeout: float) -> HTTPResponse:
    """``urllib.request.urlopen``, direct (no proxy) for loopback URLs; http(s) only.

    urllib would also open ``file:``, ``ftp:`` and ``data:`` URLs: a configured URL that is
    not http(s) is refused as unreachable (``URLError``, as urllib does for unknown schemes)
    rather than read from the local disk."""
    url = req.full_url if isinstance(req, urllib.request.Request) else req
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise urllib.error.URLError(f"not an http(s) URL: {url!r}")
    if is_loopback(url):
        return cast(HTTPResponse, _DIRECT.open(req, timeout=timeout))
    return cast(HTTPResponse, urllib.request.urlopen(req, timeout=timeout))  # nosec B310  # scheme checked above: http(s) only


def require_http_url(flag: str, url: str | None) -> None:
    """A usage error naming ``flag`` unless ``url`` is absent or an http(s):// URL."""
    from spark_ray.errors import UserError

    if url and not url.startswith(("http://", "https://")):
        raise UserError(f"{flag}: expected an http(s):// URL, got {url!r}")
