"""E-mail messages (.eml): headers that carry meaning, the text parts, and each attachment
extracted like a file of its own, one level deeper."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Callable
from email.message import EmailMessage

from scanner.detect.findings import TextPart
from scanner.extract.base import Budget, Extracted, SkipReason
from scanner.extract.text import nfc

_TAGS = re.compile(r"<[^>]*>")
ExtractFn = Callable[[str, bytes, Budget, int], Extracted]


def extract_eml(data: bytes, budget: Budget, depth: int, extract: ExtractFn) -> Extracted:
    out = Extracted(kind="eml")
    try:
        msg = email.message_from_bytes(data, policy=email.policy.default)
    except Exception as exc:
        return out.skip(SkipReason.CORRUPT, f"not a parsable message: {exc}")
    assert isinstance(msg, EmailMessage)
    head = [f"{h}: {msg.get(h, '')}" for h in ("From", "To", "Cc", "Subject") if msg.get(h)]
    out.parts.append(TextPart("headers", nfc("\n".join(head))))
    n = 0
    for part in msg.walk():
        if part.is_multipart():
            continue
        filename = part.get_filename()
        try:
            payload = part.get_payload(decode=True)
        except Exception:
            payload = None
        if not isinstance(payload, bytes):
            continue
        ctype = part.get_content_type()
        if filename or not ctype.startswith("text/"):
            n += 1
            name = filename or f"attachment-{n}"
            if depth + 1 > budget.limits.max_depth:
                out.skip(SkipReason.TOO_DEEP, "attachment nesting limit", where=name)
                continue
            out.absorb(extract(name, payload, budget, depth + 1), f"attachment {name}")
            continue
        charset = part.get_content_charset() or "utf-8"
        try:
            text = payload.decode(charset, "replace")
        except LookupError:
            text = payload.decode("utf-8", "replace")
        if ctype == "text/html":
            text = _TAGS.sub(" ", text)
        out.parts.append(TextPart("body", nfc(text)))
    return out
