"""Masking of secrets and sensitive values before anything is stored or printed."""

from __future__ import annotations

import re
from typing import Any

_SECRET_KEYS = re.compile(
    r"(pass(word|wd|phrase)?|secret|token|api[_-]?key|private[_-]?key|credential|auth(orization)?"
    r"|requirepass|masterauth)$",
    re.IGNORECASE,
)
# key=value / key: value pairs inside free text (banners, config lines, URLs with userinfo)
_INLINE = re.compile(
    r"(?P<k>\b(?:pass(?:word|wd)?|secret|token|api[_-]?key|requirepass|masterauth)\b\s*[=:]\s*|"
    r"\b(?:requirepass|masterauth)\s+)"
    r"(?P<v>\"[^\"]*\"|'[^']*'|\S+)",
    re.IGNORECASE,
)
_URL_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]+):(?P<pw>[^@/\s]+)@")


def mask_value(value: str, keep: int = 2) -> str:
    """`0912345678` -> `09******78`: enough to find it again, never enough to reuse it."""
    if len(value) <= 2 * keep + 2:
        return "*" * len(value)
    return value[:keep] + "*" * (len(value) - 2 * keep) + value[-keep:]


def mask_text(text: str) -> str:
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:****@", text)
    return _INLINE.sub(lambda m: f"{m['k']}****", text)


def mask_evidence(value: Any, key: str = "") -> Any:
    """Return a copy of evidence with secret-named keys and inline secrets masked."""
    if isinstance(value, dict):
        return {k: mask_evidence(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_evidence(v, key) for v in value]
    if isinstance(value, str):
        if key and _SECRET_KEYS.search(key) and value:
            return "****"
        return mask_text(value)
    return value
