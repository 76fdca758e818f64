"""Plain text and CSV: encoding detection, NFC normalisation, legacy Vietnamese encodings.

Order: byte-order mark, strict UTF-8, UTF-16 without BOM, UTF-8 with a few invalid bytes,
Windows-1258 (its tone marks are combining characters, which NFC then composes), then
charset-normalizer. TCVN3 (the ABC font encoding) has no codec anywhere; it is recognised by
its byte profile and reported, so a reader knows that markings in it may have been missed.
"""

from __future__ import annotations

import codecs
import unicodedata

from scanner.extract.base import Extracted

# Windows-1258 combining tone marks: grave, acute, hook above, tilde, dot below.
_CP1258_TONES = frozenset(b"\xcc\xec\xd2\xde\xf2")
# Bytes that carry most Vietnamese letters in TCVN3 (lower-case font); rare in Western text.
_TCVN3_HINTS = frozenset(b"\xb8\xb5\xb6\xb7\xb9\xa8\xbb\xbe\xc6\xca\xd0\xd5\xd6\xdc\xe7\xe9\xf5")


def nfc(text: str) -> str:
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


def decode(data: bytes) -> tuple[str, list[str]]:
    """Text and notes about how it was decoded."""
    notes: list[str] = []
    for bom, enc in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            return nfc(data.decode(enc, "replace")), notes
    try:
        return nfc(data.decode("utf-8")), notes
    except UnicodeDecodeError:
        pass
    head = data[:65536]
    if head and head.count(0) > len(head) // 4:
        enc = "utf-16-le" if head[1::2].count(0) > head[0::2].count(0) else "utf-16-be"
        notes.append(f"decoded as {enc} (no byte-order mark)")
        return nfc(data.decode(enc, "replace")), notes
    text = data.decode("utf-8", "replace")
    bad = text.count("\ufffd")
    if bad * 200 < len(text):
        notes.append(f"invalid UTF-8: {bad} byte sequence(s) replaced")
        return nfc(text), notes
    high = [b for b in head if b >= 0x80]
    tones = sum(1 for b in high if b in _CP1258_TONES)
    tcvn = sum(1 for b in high if b in _TCVN3_HINTS)
    if high and tones * 8 >= len(high) and tones >= 3:
        notes.append("decoded as Windows-1258 (legacy Vietnamese) and NFC-normalised")
        return nfc(data.decode("cp1258", "replace")), notes
    if high and tcvn * 2 >= len(high) and tcvn >= 8:
        notes.append(
            "looks like TCVN3 (legacy Vietnamese font encoding): decoded as Windows-1252, "
            "Vietnamese words with diacritics may be missed; convert it to Unicode"
        )
        return nfc(data.decode("cp1252", "replace")), notes
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(head).best()
        enc = best.encoding if best else "latin-1"
    except Exception:
        enc = "latin-1"
    notes.append(f"encoding detected as {enc}")
    return nfc(data.decode(enc, "replace")), notes


def extract_text(data: bytes, kind: str = "text") -> Extracted:
    text, notes = decode(data)
    out = Extracted(kind=kind, notes=notes)
    from scanner.detect.findings import TextPart

    out.parts.append(TextPart("", text))
    return out
