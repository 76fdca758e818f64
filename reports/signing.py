"""Detached Ed25519 signatures over a report directory, so a reviewer can trust what a unit sent.

`sign_directory` writes `assessment.signature.json` beside the reports: a manifest (scan id,
the signer's key id and public key, and the SHA-256 and size of every signed file, the canonical
`assessment.json` always among them) and an Ed25519 signature over the manifest's canonical JSON
(sorted keys, no spaces, UTF-8). `verify_directory` checks the signature with the public key
the reviewer already holds (a key shipped inside the manifest proves nothing by itself, so it
must match the pinned one), then every file's digest; it names each file that is missing,
changed or was added after signing.

Keys are PEM: PKCS#8 for the private key (written 0600), SubjectPublicKeyInfo for the public
one, as `openssl pkey` reads and writes them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_FILE = "assessment.signature.json"
CANONICAL = "assessment.json"
FORMAT = "assay-signature/1"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
_MAX_SIGNATURE_BYTES = 1_000_000


class SigningError(Exception):
    """A key or signature file that cannot be used; the message names the file."""


@dataclass
class Verification:
    ok: bool
    scan_id: str = ""
    key_id: str = ""
    files: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unsigned: list[str] = field(default_factory=list)  # present, but not covered


def canonical_bytes(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(_raw_public(key)).hexdigest()[:16]


def generate_key(path: Path) -> tuple[Path, Path]:
    """Write a new private key to `path` (mode 0600) and its public key to `path`.pub."""
    pub_path = path.with_name(path.name + ".pub")
    if path.exists():
        raise SigningError(f"{path}: already exists; refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        pub_path.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    except OSError as exc:
        raise SigningError(f"{path}: cannot write key: {exc.strerror}") from None
    return path, pub_path


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningError(f"{path}: cannot read signing key: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningError(f"{path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"{path}: the signing key must be Ed25519, not {type(key).__name__}")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningError(f"{path}: cannot read public key: {exc.strerror}") from None
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise SigningError(f"{path}: not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningError(f"{path}: the public key must be Ed25519, not {type(key).__name__}")
    return key


def _digest(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def sign_directory(out_dir: Path, files: list[Path], key_path: Path, scan_id: str) -> Path:
    """Sign `files` (all inside `out_dir`; `assessment.json` must be one of them)."""
    key = load_private_key(key_path)
    for p in files:
        if p.parent.resolve() != out_dir.resolve() or not p.is_file():
            raise SigningError(f"{p}: only files written into {out_dir} can be signed")
    names = sorted({p.name for p in files})
    if CANONICAL not in names:
        raise SigningError(f"{out_dir}: {CANONICAL} must be written to be signed")
    entries = []
    for name in names:
        if not _SAFE_NAME.match(name) or name == SIGNATURE_FILE:
            raise SigningError(f"{out_dir / name}: cannot sign a file of this name")
        digest, size = _digest(out_dir / name)
        entries.append({"name": name, "sha256": digest, "size": size})
    pub = key.public_key()
    signed = {
        "format": FORMAT,
        "algorithm": "ed25519",
        "scan_id": scan_id,
        "key_id": key_id(pub),
        "public_key": base64.b64encode(_raw_public(pub)).decode(),
        "files": entries,
    }
    signature = base64.b64encode(key.sign(canonical_bytes(signed))).decode()
    path = out_dir / SIGNATURE_FILE
    path.write_text(
        json.dumps({"signed": signed, "signature": signature}, indent=2, sort_keys=True) + "\n",
        encoding="utf-8",
    )
    return path


def _read_signature(path: Path) -> tuple[dict[str, Any], bytes]:
    try:
        if path.stat().st_size > _MAX_SIGNATURE_BYTES:
            raise SigningError(f"{path}: too large to be an Assay signature")
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SigningError(f"{path}: cannot read signature: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SigningError(f"{path}: not a JSON signature file ({exc})") from None
    try:
        signed = data["signed"]
        signature = base64.b64decode(data["signature"], validate=True)
        if signed["format"] != FORMAT or signed["algorithm"] != "ed25519":
            raise SigningError(f"{path}: unsupported signature format {signed['format']!r}")
        for entry in signed["files"]:
            if not (isinstance(entry["name"], str) and isinstance(entry["sha256"], str)):
                raise TypeError("file entry")
    except (KeyError, TypeError, ValueError) as exc:
        raise SigningError(f"{path}: malformed signature file ({exc})") from None
    return signed, signature


def verify_directory(out_dir: Path, public_key: Path) -> Verification:
    """Check `out_dir`'s signature against the pinned `public_key`."""
    pinned = load_public_key(public_key)
    sig_path = out_dir / SIGNATURE_FILE
    signed, signature = _read_signature(sig_path)
    v = Verification(ok=False, scan_id=str(signed.get("scan_id", "")), key_id=str(signed["key_id"]))
    if signed.get("public_key") != base64.b64encode(_raw_public(pinned)).decode():
        v.problems.append(
            f"{sig_path}: signed with key {signed['key_id']}, not with the trusted key "
            f"{key_id(pinned)} ({public_key})"
        )
        return v
    try:
        pinned.verify(signature, canonical_bytes(signed))
    except InvalidSignature:
        v.problems.append(f"{sig_path}: the signature does not match its manifest")
        return v
    covered = set()
    for entry in signed["files"]:
        name = entry["name"]
        covered.add(name)
        if not _SAFE_NAME.match(name):
            v.problems.append(f"{sig_path}: refuses file name {name!r}")
            continue
        path = out_dir / name
        if not path.is_file():
            v.problems.append(f"{path}: signed but missing")
            continue
        digest, _size = _digest(path)
        if digest != entry["sha256"]:
            v.problems.append(f"{path}: changed after signing (sha256 {digest[:16]}...)")
            continue
        v.files.append(name)
    if CANONICAL not in covered:
        v.problems.append(f"{sig_path}: does not cover {CANONICAL}")
    v.unsigned = sorted(
        p.name
        for p in out_dir.iterdir()
        if p.is_file() and p.name not in covered and p.name != SIGNATURE_FILE
    )
    v.ok = not v.problems
    return v
