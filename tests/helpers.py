"""Test helpers shared by every test folder: free ports, a CLI runner, paths.

A module of its own (not conftest.py): several folders have a conftest.py, and
``from conftest import ...`` would pick whichever one Python imported first.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


def signer(name: str = "alice") -> Any:
    """A session approver's key (tests/conftest.py: approver_keys)."""
    from spark_ray.approval.signing import load_signer

    return load_signer(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def cli_env(**extra: str) -> dict[str, str]:
    """Environment for a CLI subprocess: its own Ray ports, no inherited cluster address."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update({
        "SPARK_RAY_RAY__DASHBOARD_PORT": str(free_port()),
        "SPARK_RAY_RAY__METRICS_EXPORT_PORT": str(free_port()),
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    })
    env.update(extra)
    return env


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 300) -> CliResult:
    """Run ``spark-ray ARGS`` as a real subprocess (what a user runs)."""
    proc = subprocess.run(
        [sys.executable, "-m", "spark_ray", *args], capture_output=True, text=True,
        cwd=cwd, env=env or cli_env(), timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca_and_cert(folder: Path) -> tuple[Path, Any]:
    """A private CA and a server certificate for 127.0.0.1 signed by it (PEM files)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("spark-ray test CA"))
          .issuer_name(_name("spark-ray test CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now)
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1"))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_path, cert_path, key_path = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    from spark_ray.tls import TlsFiles

    return ca_path, TlsFiles(str(cert_path), str(key_path))
