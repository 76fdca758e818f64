"""Who may do what on the team server: roles, unit scopes, password and token hashing.

- Passwords are hashed with Argon2id (argon2-cffi's defaults, RFC 9106 profile); API tokens and
  session ids are random 256-bit values of which only the SHA-256 is stored, so a copy of the
  database gives no way in.
- Roles: `admin` (everything), `officer` (reads and changes only the units they are assigned
  to), `reviewer` (reads only; all units or an assigned set). Every query of the server goes
  through a `Principal`, and every unit-scoped row is filtered by `can_read` / `can_write`.
- Login throttling: after `MAX_FAILURES_USER` failed logins for one user name, or
  `MAX_FAILURES_IP` from one address, within `FAILURE_WINDOW`, further attempts are refused
  until the window passes (checked before the password is even looked at).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MAX_FAILURES_USER = 5
MAX_FAILURES_IP = 20
FAILURE_WINDOW = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=8)
TOKEN_PREFIX = "assay_"

_hasher = PasswordHasher()


class Role(StrEnum):
    ADMIN = "admin"
    OFFICER = "officer"
    REVIEWER = "reviewer"


class AccessDenied(Exception):
    """The principal may not read or change this (the API answers 403 or 404)."""


@dataclass(frozen=True)
class Principal:
    user_id: int
    username: str
    role: Role
    units: frozenset[str]  # assigned units (ignored when all_units)
    all_units: bool = False

    def can_read(self, unit: str) -> bool:
        return self.role is Role.ADMIN or self.all_units or unit in self.units

    def can_write(self, unit: str) -> bool:
        if self.role is Role.ADMIN:
            return True
        return self.role is Role.OFFICER and unit in self.units

    def readable(self, all_unit_ids: list[str]) -> list[str]:
        return [u for u in all_unit_ids if self.can_read(u)]

    def require_read(self, unit: str) -> None:
        if not self.can_read(unit):
            raise AccessDenied(f"{self.username} may not read unit {unit!r}")

    def require_write(self, unit: str) -> None:
        if not self.can_write(unit):
            raise AccessDenied(f"{self.username} may not change unit {unit!r}")

    def require_admin(self) -> None:
        if self.role is not Role.ADMIN:
            raise AccessDenied(f"{self.username} is not an administrator")


def hash_password(password: str) -> str:
    if len(password) < 12:
        raise ValueError("a password needs at least 12 characters")
    return _hasher.hash(password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    try:
        return _hasher.check_needs_rehash(stored)
    except InvalidHashError:
        return True


# A fixed hash to verify against when the user does not exist, so that a login for an unknown
# name costs the same time as one with a wrong password (no user enumeration by timing).
DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_secret(prefix: str = "") -> tuple[str, str]:
    """A fresh random secret and the SHA-256 that is stored in its place."""
    plain = prefix + secrets.token_urlsafe(32)
    return plain, sha256(plain)
