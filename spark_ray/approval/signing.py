"""Approver keys and signed approvals: who approved is proven by a signature, not claimed.

Before, an approval was files whose sha256 matched and an ``approved_by`` in free text: anyone
who could write files could write a PASS risk report and approve it. Now ``approve`` signs the
approval (every field of approved.json: the candidate's and the risk report's sha256, the
parameters, the approver's name and the time) with the approver's Ed25519 key (RFC 8032, via
``cryptography``), and ``check`` accepts it only when the signature verifies with a public key
listed under that name in a *trusted-keys file* the operator keeps (like OpenSSH's
``allowed_signers``): one line per approver, ``NAME ed25519 BASE64``.

Keys: ``spark-ray params keygen --name NAME`` writes ``NAME.key`` (PKCS#8 PEM, mode 0600, in
``$SPARK_RAY_KEYS_DIR`` or ``~/.config/spark-ray/keys``) and ``NAME.pub`` (the trusted-keys
line). A private key readable by group or others is refused, as ssh does. The trusted-keys
file is ``$SPARK_RAY_TRUSTED_KEYS`` or ``~/.config/spark-ray/trusted_keys`` unless a command
names one.

The signed bytes are the approval's JSON without its ``signature`` field, with sorted keys
and no whitespace (canonical enough for our own writer and reader: both are Python's json).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from spark_ray.errors import UserError
from spark_ray.secrets import create_private, require_owner_only

KEYS_DIR_ENV = "SPARK_RAY_KEYS_DIR"
TRUSTED_KEYS_ENV = "SPARK_RAY_TRUSTED_KEYS"
ALG = "ed25519"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


def _config_home() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "spark-ray"


def keys_dir(explicit: str | Path | None = None) -> Path:
    """Where approvers' private keys live: ``explicit``, $SPARK_RAY_KEYS_DIR, or the default."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(KEYS_DIR_ENV)
    return Path(env) if env else _config_home() / "keys"


def trusted_keys_path(explicit: str | Path | None = None) -> Path:
    """The trusted-keys file: ``explicit``, $SPARK_RAY_TRUSTED_KEYS, or the default."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(TRUSTED_KEYS_ENV)
    return Path(env) if env else _config_home() / "trusted_keys"


def check_name(name: str, field: str = "--name") -> str:
    if not NAME_RE.fullmatch(name or ""):
        raise UserError(f"{field}: {name!r} is not a key name (letters, digits and . _ @ -, "
                        "starting with a letter or digit, at most 64)")
    return name


def fingerprint(public: Ed25519PublicKey) -> str:
    """SHA256:<base64> of the raw public key, the form ssh-keygen -l prints."""
    digest = hashlib.sha256(_raw(public)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_line(name: str, public: Ed25519PublicKey) -> str:
    """The trusted-keys line for ``name``."""
    return f"{name} {ALG} {base64.b64encode(_raw(public)).decode()}"


@dataclass(frozen=True)
class Signer:
    """An approver's name and private key (read from its 0600 file, never passed around)."""

    name: str
    key: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.key.public_key()


def run_signer(name: str, trusted_path: Path) -> Signer:
    """A key made for one run (the demo, the chaos canary), kept in memory only, and
    ``trusted_path`` written as a trusted-keys file that names only it: what that run's
    executors trust, never the operator's file."""
    signer = Signer(name, Ed25519PrivateKey.generate())
    trusted_path.write_text(public_line(name, signer.public) + "\n")
    return signer


def keygen(name: str, directory: Path) -> tuple[Path, Path, str]:
    """A new key pair for ``name`` in ``directory``: (private key file, public file, the
    trusted-keys line). Never overwrites: a lost private key is replaced by a new name or by
    removing the old files on purpose."""
    check_name(name)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_path, pub_path = directory / f"{name}.key", directory / f"{name}.pub"
    for p in (key_path, pub_path):
        if p.exists():
            raise UserError(f"--name: {p} already exists (keys are never overwritten)")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    create_private(key_path, pem)
    line = public_line(name, key.public_key())
    pub_path.write_text(line + "\n")
    return key_path, pub_path, line


def load_signer(name: str, directory: Path | None = None, key_file: Path | None = None
                ) -> Signer:
    """The approver ``name``'s key from ``key_file`` or ``directory/NAME.key``; UserError when
    it is missing, not an Ed25519 key, or readable by anyone but its owner."""
    check_name(name, "--by")
    path = key_file or keys_dir(directory) / f"{name}.key"
    if not path.is_file():
        raise UserError(f"--by: no private key for {name!r} at {path} (create one with "
                        f"`spark-ray params keygen --name {name}`)")
    require_owner_only(path, "--by")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise UserError(f"--by: {path} is not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UserError(f"--by: {path} is not an Ed25519 key")
    return Signer(name, key)


@dataclass(frozen=True)
class TrustedKeys:
    """Approver name -> public key, from the operator's trusted-keys file."""

    path: Path
    keys: dict[str, Ed25519PublicKey]

    @classmethod
    def load(cls, path: str | Path | None = None) -> TrustedKeys:
        """Parse the file (``#`` comments, blank lines ignored); UserError naming the line of
        any malformed entry, or the file when it is missing."""
        p = trusted_keys_path(path)
        if not p.is_file():
            raise UserError(f"trusted keys: {p} not found (add approvers' lines from "
                            "`spark-ray params keygen` to it, or name the file with "
                            f"--trusted-keys / ${TRUSTED_KEYS_ENV})")
        keys: dict[str, Ed25519PublicKey] = {}
        for n, raw in enumerate(p.read_text().splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            if len(parts) != 3 or parts[1] != ALG or not NAME_RE.fullmatch(parts[0]):
                raise UserError(f"trusted keys: {p}:{n}: expected 'NAME {ALG} BASE64'")
            try:
                raw_key = base64.b64decode(parts[2], validate=True)
                keys[parts[0]] = Ed25519PublicKey.from_public_bytes(raw_key)
            except ValueError:
                raise UserError(f"trusted keys: {p}:{n}: not a base64 Ed25519 public key"
                                ) from None
        return cls(p, keys)


def signed_bytes(doc: dict[str, Any]) -> bytes:
    """What a signature covers: the document without its signature, canonical JSON."""
    body = {k: v for k, v in doc.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sign(doc: dict[str, Any], signer: Signer) -> dict[str, Any]:
    """``doc`` with ``approved_by`` = the signer's name and a ``signature`` over the rest."""
    out = {**{k: v for k, v in doc.items() if k != "signature"}, "approved_by": signer.name}
    out["signature"] = {
        "alg": ALG, "key": signer.name, "fingerprint": fingerprint(signer.public),
        "value": base64.b64encode(signer.key.sign(signed_bytes(out))).decode(),
    }
    return out


def signature_problems(doc: dict[str, Any], trusted: TrustedKeys) -> list[str]:
    """Why ``doc``'s signature is not acceptable (empty: it verifies with a trusted key)."""
    sig = doc.get("signature")
    if not isinstance(sig, dict):
        return ["signature: unsigned approval (approve with a key made by "
                "`spark-ray params keygen`)"]
    name, value = sig.get("key"), sig.get("value")
    if sig.get("alg") != ALG or not isinstance(name, str) or not isinstance(value, str):
        return [f"signature: not an {ALG} signature with a key name and a value"]
    if doc.get("approved_by") != name:
        return [f"signature: signed by {name!r} but approved_by says "
                f"{doc.get('approved_by')!r}"]
    public = trusted.keys.get(name)
    if public is None:
        return [f"signature: signed by {name!r}, which is not in the trusted keys "
                f"({trusted.path})"]
    try:
        public.verify(base64.b64decode(value, validate=True), signed_bytes(doc))
    except (InvalidSignature, ValueError):
        return [f"signature: does not verify with {name!r}'s trusted key: forged, or the "
                "approval was edited after it was signed"]
    return []
