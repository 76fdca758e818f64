"""Text extraction from the document formats found on a unit's stores, with hard limits.

`extract(name, data, limits)` picks the format by content (magic bytes) before the name, and
returns the text parts with their location plus everything that could not be read and why.
It never raises for bad input: a corrupt, encrypted or hostile file becomes a `Skipped` entry.
"""

from __future__ import annotations

import io
import zipfile

from scanner.extract.base import Budget, Extracted, Limits, Skipped, SkipReason
from scanner.extract.mail import extract_eml
from scanner.extract.office import _Skip, extract_odf, extract_ooxml, office_kind, read_member
from scanner.extract.pdf import extract_pdf
from scanner.extract.rtf import extract_rtf
from scanner.extract.text import decode, extract_text

__all__ = [
    "Budget",
    "Extracted",
    "Limits",
    "SkipReason",
    "Skipped",
    "decode",
    "extract",
    "extract_bytes",
    "kind_of",
]

TEXT_EXT = frozenset(
    [
        "txt",
        "csv",
        "tsv",
        "md",
        "log",
        "ini",
        "cfg",
        "conf",
        "config",
        "env",
        "properties",
        "json",
        "yaml",
        "yml",
        "xml",
        "html",
        "htm",
        "sql",
        "sh",
        "ps1",
        "bat",
        "py",
        "js",
        "ts",
        "php",
        "java",
        "cs",
        "go",
        "rb",
        "pem",
        "key",
        "ppk",
        "toml",
        "rdp",
    ]
)
IMAGE_EXT = frozenset(["png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp", "heic"])
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTION_INFO = "EncryptionInfo".encode("utf-16-le")


def _ext(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[-1].lower() if "." in base else ""


def kind_of(name: str, head: bytes) -> str:
    if head.startswith(b"%PDF") or b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head.startswith(_OLE):
        return "ole"
    if head.lstrip().startswith(b"{\\rtf"):
        return "rtf"
    ext = _ext(name)
    if ext == "eml" or (
        ext in ("", "msg")
        and head[:200].lstrip().split(b":")[0]
        in (b"From", b"Received", b"Return-Path", b"MIME-Version", b"Message-ID")
    ):
        return "eml"
    if ext in IMAGE_EXT or head[:8] in (b"\x89PNG\r\n\x1a\n",) or head[:3] == b"\xff\xd8\xff":
        return "image"
    if ext in TEXT_EXT or b"\x00" not in head[:8192]:
        return "text"
    return "binary"


def extract(name: str, data: bytes, limits: Limits | None = None) -> Extracted:
    """Extract one file (the whole file is in memory, already bounded by max_file_bytes)."""
    lim = limits or Limits()
    if len(data) > lim.max_file_bytes:
        return Extracted(kind=_ext(name) or "file").skip(
            SkipReason.OVERSIZED, f"{len(data)} bytes (limit {lim.max_file_bytes})"
        )
    return extract_bytes(name, data, Budget(lim), 0)


def extract_bytes(name: str, data: bytes, budget: Budget, depth: int) -> Extracted:
    kind = kind_of(name, data[:8192])
    try:
        if kind == "pdf":
            return extract_pdf(data, budget)
        if kind == "zip":
            return _zip(name, data, budget, depth)
        if kind == "ole":
            out = Extracted(kind="ole")
            if _ENCRYPTION_INFO in data[: 1 << 20] or b"EncryptedPackage" in data[: 1 << 20]:
                return out.skip(SkipReason.ENCRYPTED, "password-protected Office document")
            return out.skip(SkipReason.UNSUPPORTED, "legacy binary Office format (.doc/.xls)")
        if kind == "rtf":
            return extract_rtf(data)
        if kind == "eml":
            return extract_eml(data, budget, depth, extract_bytes)
        if kind == "image":
            return Extracted(kind="image").skip(SkipReason.IMAGE_ONLY, "an image (needs OCR)")
        if kind == "binary":
            return Extracted(kind="binary").skip(SkipReason.UNSUPPORTED, "binary file")
        out = extract_text(data, _ext(name) or "text")
        if out.chars > budget.limits.max_text_chars:
            text = out.parts[0].text[: budget.limits.max_text_chars]
            out.parts[0] = type(out.parts[0])(out.parts[0].where, text)
            out.skip(SkipReason.OVERSIZED, "text beyond max_text_chars not read")
        return out
    except RecursionError:
        return Extracted(kind=kind).skip(SkipReason.CORRUPT, "structure nested too deeply")
    except (MemoryError, OverflowError) as exc:
        return Extracted(kind=kind).skip(SkipReason.CORRUPT, type(exc).__name__)


def _zip(name: str, data: bytes, budget: Budget, depth: int) -> Extracted:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        return Extracted(kind="zip").skip(SkipReason.CORRUPT, f"not a readable zip: {exc}")
    with zf:
        try:
            kind = office_kind(zf)
            if kind in ("docx", "xlsx", "pptx"):
                return extract_ooxml(zf, kind, budget)
            if kind in ("odt", "ods", "odp"):
                return extract_odf(zf, kind, budget)
            return _archive(zf, budget, depth)
        except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError) as exc:
            return Extracted(kind=kind or "zip").skip(SkipReason.CORRUPT, f"broken zip: {exc}")


def _archive(zf: zipfile.ZipFile, budget: Budget, depth: int) -> Extracted:
    out = Extracted(kind="zip")
    lim = budget.limits
    infos = [i for i in zf.infolist() if not i.is_dir()]
    if len(infos) > lim.max_members:
        out.skip(SkipReason.OVERSIZED, f"{len(infos)} members; only {lim.max_members} read")
        infos = infos[: lim.max_members]
    for info in infos:
        if budget.expired():
            out.skip(SkipReason.TIME_BUDGET, "members left unread", where=info.filename)
            break
        if depth + 1 > lim.max_depth:
            out.skip(
                SkipReason.TOO_DEEP, f"nesting deeper than {lim.max_depth}", where=info.filename
            )
            continue
        try:
            payload = read_member(zf, info, budget)
        except _Skip as exc:
            out.skip(exc.reason, exc.detail, where=info.filename)
            continue
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError) as exc:
            out.skip(SkipReason.CORRUPT, str(exc), where=info.filename)
            continue
        out.absorb(extract_bytes(info.filename, payload, budget, depth + 1), info.filename)
    return out
