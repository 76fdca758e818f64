"""A minimal classifier for files found exposed on a web server: secrets and personal data.

It runs inside the collector so that only masked findings reach the facts (and hence the
store and every report): the raw content of an exposed `.env` or dump is never kept. The set
is deliberately small (credentials in assignments and URLs, private keys, cloud access keys,
e-mail addresses, Vietnamese mobile numbers and citizen-ID numbers); the document-store
detectors replace it once they exist, behind the same `classify()` signature.
"""

from __future__ import annotations

import re

from pydantic import BaseModel

from scanner.masking import mask_value

MAX_FINDINGS = 20
MAX_SCAN = 256 * 1024  # characters of a file that are classified

_ASSIGN = re.compile(
    r"^\s*(?:export\s+)?(?P<k>[A-Za-z_][A-Za-z0-9_.]*(?:PASS(?:WORD|WD)?|SECRET|TOKEN|API_?KEY|"
    r"PRIVATE_?KEY|ACCESS_?KEY|CREDENTIALS?))\s*[=:]\s*(?P<v>\"[^\"\n]*\"|'[^'\n]*'|[^\s#]+)",
    re.IGNORECASE | re.MULTILINE,
)
_URL_CRED = re.compile(r"\b[a-z][a-z0-9+.-]{1,15}://(?P<u>[^:/@\s]{1,64}):(?P<v>[^@/\s]{1,128})@")
_PRIVATE_KEY = re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----")
_AWS_KEY = re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}\b")
_VN_MOBILE = re.compile(r"(?<!\d)(?:\+84|0)(?:3|5|7|8|9)\d{8}(?!\d)")
_VN_CCCD = re.compile(r"(?<!\d)0\d{2}[0-3]\d{8}(?!\d)")  # province, century/sex, year, serial


class ContentFinding(BaseModel):
    """One kind of sensitive content in a file: what, how often, one masked example."""

    category: str  # "secret" or "personal_data"
    kind: str  # "credential_assignment", "url_credentials", "private_key", "email", ...
    count: int
    example: str  # always masked
    key: str = ""  # for assignments: the variable name (names are not secret)


def _strip(v: str) -> str:
    return v[1:-1] if v[:1] in ("'", '"') and v[-1:] == v[:1] else v


def classify(text: str) -> list[ContentFinding]:
    """Masked findings in `text` (bounded: MAX_SCAN characters, MAX_FINDINGS findings)."""
    text = text[:MAX_SCAN]
    found: dict[tuple[str, str], ContentFinding] = {}

    def add(category: str, kind: str, example: str, key: str = "") -> None:
        slot = (kind, key)
        if slot in found:
            found[slot].count += 1
        elif len(found) < MAX_FINDINGS:
            found[slot] = ContentFinding(
                category=category, kind=kind, count=1, example=example, key=key
            )

    for m in _ASSIGN.finditer(text):
        value = _strip(m["v"])
        if value:
            add("secret", "credential_assignment", mask_value(value), key=m["k"][:64])
    for m in _URL_CRED.finditer(text):
        add("secret", "url_credentials", f"{m['u'][:2]}***:{mask_value(m['v'])}@")
    if _PRIVATE_KEY.search(text):
        add("secret", "private_key", "-----BEGIN ... PRIVATE KEY-----")
    for m in _AWS_KEY.finditer(text):
        add("secret", "cloud_access_key", mask_value(m.group(0), keep=4))
    for m in _EMAIL.finditer(text):
        local, _, domain = m.group(0).partition("@")
        add("personal_data", "email", f"{mask_value(local, keep=1)}@{domain}")
    for m in _VN_MOBILE.finditer(text):
        add("personal_data", "phone_number", mask_value(m.group(0)))
    for m in _VN_CCCD.finditer(text):
        add("personal_data", "citizen_id", mask_value(m.group(0)))
    return list(found.values())
