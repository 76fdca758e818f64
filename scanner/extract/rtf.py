"""RTF: a small tokenizer that keeps text, headers and footers and drops the rest.

`\\'hh` escapes are decoded with the document's `\\ansicpg` code page (Windows-1258 for
Vietnamese documents), `\\uN` with its `\\ucN` fallback count. Font tables, style sheets,
pictures, embedded objects and ignorable destinations (`{\\*...}`) are skipped.
"""

from __future__ import annotations

import re

from scanner.detect.findings import TextPart
from scanner.extract.base import Extracted, SkipReason
from scanner.extract.text import nfc

_TOKEN = re.compile(
    rb"\\([a-zA-Z]{1,32})(-?\d{1,10})? ?|\\'([0-9a-fA-F]{2})|\\(.)|([{}])|([^\\{}\r\n]+)|[\r\n]+"
)
_SKIP = frozenset(
    b"fonttbl colortbl stylesheet info pict object themedata datastore listtable "
    b"listoverridetable rsidtbl generator xmlnstbl latentstyles fldinst bkmkstart".split()
)
_BREAKS = {b"par": "\n", b"line": "\n", b"row": "\n", b"cell": "\t", b"tab": "\t", b"sect": "\n"}
MAX_DEPTH = 200


def extract_rtf(data: bytes) -> Extracted:
    out = Extracted(kind="rtf")
    codepage = "cp1252"
    m = re.search(rb"\\ansicpg(\d{3,5})", data[:4096])
    if m:
        codepage = f"cp{int(m.group(1))}"
        try:
            "".encode(codepage)
        except LookupError:
            out.notes.append(f"unknown code page {codepage}; read as cp1252")
            codepage = "cp1252"
    stack: list[tuple[bool, int]] = []
    skipping, uc, pending_skip = False, 1, 0
    ignorable = False
    text: list[str] = []
    hexbuf = bytearray()

    def flush_hex() -> None:
        if hexbuf:
            if not skipping:
                text.append(hexbuf.decode(codepage, "replace"))
            hexbuf.clear()

    for tok in _TOKEN.finditer(data):
        word, num, hexd, sym, brace, plain = tok.groups()
        if hexd is not None:
            if pending_skip:
                pending_skip -= 1
                continue
            hexbuf.append(int(hexd, 16))
            continue
        flush_hex()
        if brace == b"{":
            stack.append((skipping, uc))
            if len(stack) > MAX_DEPTH:
                return out.skip(SkipReason.CORRUPT, f"groups nested deeper than {MAX_DEPTH}")
            continue
        if brace == b"}":
            if stack:
                skipping, uc = stack.pop()
            ignorable = False
            continue
        if word is not None:
            if word in _SKIP:
                skipping = True
            elif word == b"uc" and num:
                uc = int(num)
            elif word == b"u" and num:
                if not skipping:
                    cp = int(num) + 65536 if int(num) < 0 else int(num)
                    text.append(chr(cp) if cp < 0x110000 else "\ufffd")
                pending_skip = uc
            elif not skipping and word in _BREAKS:
                text.append(_BREAKS[word])
            if ignorable:
                skipping = True
                ignorable = False
            continue
        if sym is not None:
            if sym == b"*":
                ignorable = True
            elif not skipping and sym in (b"\\", b"{", b"}"):
                text.append(sym.decode())
            elif not skipping and sym == b"~":
                text.append(" ")
            continue
        if plain is not None and not skipping:
            if pending_skip:
                n = min(pending_skip, len(plain))
                plain = plain[n:]
                pending_skip -= n
            text.append(plain.decode(codepage, "replace"))
    flush_hex()
    out.parts.append(TextPart("", nfc("".join(text))))
    return out
