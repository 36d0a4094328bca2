"""HTTPS for our servers, and the rule that keeps bearer tokens off the network in clear.

A server of ours serves HTTPS when given a certificate and its key (PEM files, read where the
server runs; the key file should be 0600). Clients verify the server against the system's CAs
or a CA file they are given (``--tls-ca``); verification is never turned off. On a
non-loopback bind without TLS, a request carrying a token is refused (HTTP 403) before the
token is looked at: on the network it would have crossed in clear.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from spark_ray.errors import UserError

PLAIN_TOKEN_REFUSED = ("tokens are refused over plain HTTP on a non-loopback bind: serve HTTPS "  # nosec B105  # a message, not a token
                       "(--tls-cert/--tls-key) or bind 127.0.0.1")


@dataclass(frozen=True)
class TlsFiles:
    """A server's certificate chain and private key (paths: safe to pass to an actor)."""

    cert: str
    key: str

    def server_context(self) -> ssl.SSLContext:
        """TLS 1.2+ server context; UserError naming the file that does not load."""
        for what, path in (("--tls-cert", self.cert), ("--tls-key", self.key)):
            if not Path(path).is_file():
                raise UserError(f"{what}: {path} not found")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_cert_chain(self.cert, self.key)
        except (ssl.SSLError, OSError) as exc:
            raise UserError(f"--tls-cert/--tls-key: {self.cert} and {self.key} do not load as "
                            f"a PEM certificate and its key ({exc})") from None
        return ctx


def tls_files(cert: str | None, key: str | None) -> TlsFiles | None:
    """Both or neither: UserError naming the missing flag otherwise."""
    if bool(cert) != bool(key):
        raise UserError("--tls-key: give it with --tls-cert" if cert else
                        "--tls-cert: give it with --tls-key")
    return TlsFiles(cert, key) if cert and key else None


def client_context(cafile: str | None = None) -> ssl.SSLContext:
    """Verifying client context: the system's CAs, or ``cafile`` (a private CA)."""
    return ssl.create_default_context(cafile=cafile)


def is_loopback_host(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def plain_token_risk(host: str, tls: TlsFiles | None) -> bool:
    """True when tokens sent to this bind would cross a network in clear."""
    return tls is None and not is_loopback_host(host)
