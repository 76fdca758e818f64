"""PDF text through PDFium's C API is the text pypdfium2's helper objects give, page by page
(`PdfTextPage.get_text_range()`), on every kind of test PDF: generated ones with Vietnamese
text, empty and long pages (a page longer than the reused buffer), a hand-written one whose
text starts and ends with spaces and breaks lines itself, and the test store's documents. The
limits (characters, time budget, pages) end extraction where they did, keeping what was read."""

from __future__ import annotations

import ctypes
import time
from typing import Any

import pypdfium2 as pdfium
import pytest

from scanner.extract import Limits, extract
from scanner.extract.base import Budget, SkipReason
from scanner.extract.pdf import _Reader, extract_pdf
from scanner.extract.text import nfc
from tests import docs_fixtures as fx

FILLER = "Ủy ban nhân dân tỉnh thông báo lịch làm việc. The committee reviews the plan. "


def _handwritten() -> bytes:
    """Standard-font text with leading and trailing spaces, a CR/LF of its own and a second
    text object; the cross-reference table is left for PDFium to rebuild."""
    content = (
        b"BT /F1 12 Tf 72 720 Td (   leading spaces) Tj 0 -14 Td (line\\r\\nbreak   ) Tj ET\n"
        b"BT /F1 9 Tf 300 100 Td (footer 42  ) Tj ET"
    )
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    for i, body in enumerate(objs, 1):
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    return out + b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"


PDFS = {
    "vietnamese": lambda: fx.pdf(["Độ mật: Tuyệt mật\nSĐT 0987654321", "Trang hai\n\nHết."]),
    "empty_page": lambda: fx.pdf(["trước", "", "sau"]),
    "long_page": lambda: fx.pdf([FILLER * 80]),  # about 6,000 characters: the buffer grows
    "symbols": lambda: fx.pdf(["€ 1.234,56 — ½ ß ẞ ü «Ω» “quoted” ‰ №"]),
    "handwritten": _handwritten,
    "image_only": fx.image_pdf,
    "store_pdf": lambda: fx.pdf(["VS-NUR FÜR DEN DIENSTGEBRAUCH\nProject"]),
}


def _helper_text(data: bytes) -> list[str]:
    doc = pdfium.PdfDocument(data)
    try:
        out = []
        for i in range(len(doc)):
            page = doc[i]
            tp = page.get_textpage()
            out.append(tp.get_text_range())
            tp.close()
            page.close()
        return out
    finally:
        doc.close()


@pytest.mark.parametrize("name", list(PDFS))
def test_c_api_text_is_the_helper_text(name: str) -> None:
    data = PDFS[name]()
    want = _helper_text(data)
    doc = pdfium.PdfDocument(data)
    try:
        reader = _Reader(pdfium.raw, doc.raw, pdfium.PdfiumError)
        got = [reader.text(i) for i in range(len(doc))]
        tiny = _Reader(pdfium.raw, doc.raw, pdfium.PdfiumError)
        tiny.buf = (ctypes.c_ushort * 8)()  # grows on the first page longer than 7 characters
        assert [tiny.text(i) for i in range(len(doc))] == got
    finally:
        doc.close()
    assert got == want
    ex = extract_pdf(data, Budget(Limits()))
    assert [p.text for p in ex.parts] == [nfc(t.replace("\r\n", "\n")) for t in want]
    assert [p.where for p in ex.parts] == [f"page {i + 1}" for i in range(len(want))]
    assert ex.pages == len(want)
    if name == "handwritten":  # PDFium folds the runs of spaces, keeps the CR/LF
        assert want[0].startswith(" leading") and want[0].endswith("42 ") and "\r\n" in want[0]


class _FakePdfium:
    """PDFium's text calls on a page whose first and last two characters are left out of its
    text (generated or unmapped characters): no real PDF in the tests has them."""

    text = "abcdef"
    index = [-1, 0, 1, 2, 3, -1, -1]  # char index -> text index

    def __init__(self) -> None:
        self.asked: tuple[int, int] | None = None

    def FPDFText_CountChars(self, tp: object) -> int:  # PDFium's names
        return len(self.index)

    def FPDFText_GetTextIndexFromCharIndex(self, tp: object, i: int) -> int:
        return self.index[i]

    def FPDFText_GetText(self, tp: object, start: int, count: int, buf: Any) -> int:
        self.asked = (start, count)
        chars = self.text[:count] + "\0"
        for k, ch in enumerate(chars):
            buf[k] = ord(ch)
        return len(chars)


def test_characters_left_out_at_either_end_are_not_asked_for() -> None:
    fake = _FakePdfium()
    reader = _Reader(fake, None, RuntimeError)
    assert reader._range(None) == "abcd"
    assert fake.asked == (1, 4)
    fake.index = [-1, -1]
    assert reader._range(None) == ""


def test_text_limit_keeps_the_pages_read() -> None:
    data = fx.pdf([FILLER * 3] * 4)
    ex = extract("p.pdf", data, Limits(max_text_chars=300))
    assert len(ex.parts) == 2  # the page that crossed the limit is kept, then it stops
    assert [s.reason for s in ex.skipped] == [SkipReason.OVERSIZED]


def test_time_budget_names_the_pages_not_read() -> None:
    data = fx.pdf(["SĐT 0912345678"] * 3)
    ex = extract_pdf(data, Budget(Limits(), deadline=time.monotonic() - 1))
    assert ex.parts == [] and ex.pages == 3
    assert [(s.reason, s.detail) for s in ex.skipped] == [
        (SkipReason.TIME_BUDGET, "pages 1-3 not read")
    ]  # not reported as image only: nothing was read


def test_page_limit_and_image_only_are_unchanged() -> None:
    ex = extract("p.pdf", fx.pdf(["một", "hai", "ba"]), Limits(max_pdf_pages=2))
    assert [p.text.strip() for p in ex.parts] == ["một", "hai"]
    assert [s.detail for s in ex.skipped] == ["3 pages; pages 3-3 beyond the page limit"]
    scan = extract("scan.pdf", fx.image_pdf())
    assert [s.reason for s in scan.skipped] == [SkipReason.IMAGE_ONLY] and scan.pages == 1
