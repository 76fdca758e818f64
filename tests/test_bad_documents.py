"""The two hostile documents the data-protection issue names: a 2 GB file and a PDF with a
million objects. Each is bounded and reported with its reason; the rest of the store is scanned.
"""

from __future__ import annotations

import io
import os
import resource
from pathlib import Path

from scanner.collectors.store import StoreScanOptions
from scanner.extract import extract
from scanner.extract.base import Limits, SkipReason
from scanner.inventory import Store
from tests.test_stores import scan

TWO_GB = 2 * 1024**3


def million_object_pdf(extra: int, text: str) -> bytes:
    """One page with `text` and `extra` further (unreferenced) objects, with a full xref table."""
    out = io.BytesIO()
    offsets: list[int] = []
    content = b"BT /F1 24 Tf 72 720 Td (" + text.encode("latin-1") + b") Tj ET"
    bodies = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out.write(b"%PDF-1.7\n")
    for number, body in enumerate(bodies, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    for number in range(len(bodies) + 1, len(bodies) + 1 + extra):
        offsets.append(out.tell())
        out.write(b"%d 0 obj null endobj\n" % number)
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % o for o in offsets))
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(offsets) + 1))
    out.write(b"startxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


def test_pdf_with_a_million_objects_is_read_within_its_bounds() -> None:
    data = million_object_pdf(1_000_000, "TOI MAT - Ke hoach")
    assert len(data) > 40_000_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ex = extract("many-objects.pdf", data)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert ex.pages == 1 and not ex.skipped, ex.skipped
    assert "TOI MAT" in ex.parts[0].text
    assert grown_mb < 1024, grown_mb  # PDFium's object table, not a copy per object
    # the same file under a tighter size limit is refused before PDFium sees it
    small = extract("many-objects.pdf", data, Limits(max_file_bytes=1_000_000))
    assert {s.reason for s in small.skipped} == {SkipReason.OVERSIZED}


def test_two_gigabyte_file_is_not_scanned_and_the_rest_of_the_store_is(tmp_path: Path) -> None:
    root = tmp_path / "share"
    root.mkdir()
    with open(root / "backup.txt", "wb") as fh:
        fh.truncate(TWO_GB)  # sparse: 2 GB listed, no disk used
    (root / "bao-cao.txt").write_text("TỐI MẬT\nBáo cáo\n", encoding="utf-8")
    for p in root.iterdir():
        os.chmod(p, 0o600)
    store = Store(id="share", kind="local", location=str(root))
    _, facts = scan(store)
    docs = {d.path: d for d in facts.documents}
    big = docs["backup.txt"]
    assert big.size == TWO_GB
    assert [s.reason for s in big.skipped] == [SkipReason.OVERSIZED]
    limit = StoreScanOptions().limits.max_file_bytes
    assert big.skipped[0].detail == f"backup.txt: listed as {TWO_GB} bytes (limit {limit})"
    assert any(f.rule == "marking.vn.toi_mat" for f in docs["bao-cao.txt"].findings)
    assert facts.bytes_read < 1024 * 1024  # the big file's bytes were not read
