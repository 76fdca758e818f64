"""Resolution of credential references. The secret only ever lives in memory."""

from __future__ import annotations

import os
from pathlib import Path

from scanner.inventory import CredentialRef


class CredentialError(Exception):
    """A reference that cannot be resolved; the message names the reference, never a secret."""


def resolve(ref: CredentialRef, what: str = "credential") -> str:
    if ref.env:
        value = os.environ.get(ref.env)
        if value is None:
            raise CredentialError(f"{what}: environment variable {ref.env} is not set")
        return value
    if ref.file:
        path = Path(ref.file).expanduser()
        try:
            return path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise CredentialError(f"{what}: cannot read {path}: {exc.strerror}") from None
    assert ref.keyring
    service, _, user = ref.keyring.partition("/")
    try:
        import keyring  # optional dependency
    except ImportError:
        raise CredentialError(
            f"{what}: keyring:{ref.keyring} needs the 'keyring' package"
        ) from None
    value = keyring.get_password(service, user)
    if value is None:
        raise CredentialError(f"{what}: no keyring entry for {ref.keyring}")
    return str(value)
