"""PDF text through PDFium (pypdfium2): about six times faster than pure-Python parsers.

PDFium is not thread-safe, so one lock serialises it. A password-protected file is reported as
encrypted, a file with pages but no text layer as image only (it needs OCR), and pages beyond
the page limit or the time budget as not scanned; the pages read before that are kept.

Pages are read through PDFium's C API (pypdfium2.raw) into one reused buffer: the helper
objects pypdfium2 builds per page (a page, a text page, finalizers, a fresh buffer) cost as much
Python time as the rest of the extraction. The text is the one `PdfTextPage.get_text_range()`
returns, down to its handling of characters PDFium leaves out at either end (a test compares
the two on every test PDF).
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

from scanner.detect.findings import TextPart
from scanner.extract.base import Budget, Extracted, SkipReason
from scanner.extract.text import nfc

_LOCK = threading.Lock()


class _Reader:
    """Page text of one open document, with a buffer kept from page to page."""

    def __init__(self, raw: Any, doc: Any, error: type[Exception]) -> None:
        self.c, self.doc, self.error = raw, doc, error
        self.buf = (ctypes.c_ushort * 4096)()

    def text(self, index: int) -> str:
        c = self.c
        page = c.FPDF_LoadPage(self.doc, index)
        if not page:
            raise self.error("Failed to load page.")
        try:
            tp = c.FPDFText_LoadPage(page)
            if not tp:
                raise self.error("Failed to load text page.")
            try:
                return self._range(tp)
            finally:
                c.FPDFText_ClosePage(tp)
        finally:
            c.FPDF_ClosePage(page)

    def _range(self, tp: Any) -> str:
        c = self.c
        n = c.FPDFText_CountChars(tp)
        if n == -1:
            raise self.error("Failed to get character count.")
        # characters PDFium excludes from the text at either end are skipped, as pypdfium2 does
        # (pdfium bug 2079: it would otherwise read beyond the range)
        start, end = 0, n - 1
        while start <= end and c.FPDFText_GetTextIndexFromCharIndex(tp, start) == -1:
            start += 1
        if start > end:
            return ""
        t_start = c.FPDFText_GetTextIndexFromCharIndex(tp, start)
        t_end = c.FPDFText_GetTextIndexFromCharIndex(tp, end)
        while t_end == -1:
            end -= 1
            if start > end:
                return ""
            t_end = c.FPDFText_GetTextIndexFromCharIndex(tp, end)
        need = t_end + 2 - t_start  # with the terminating NUL
        if need > len(self.buf):
            self.buf = (ctypes.c_ushort * max(need, 2 * len(self.buf)))()
        got = c.FPDFText_GetText(tp, start, end + 1 - start, self.buf)
        if got <= 1:
            return ""
        return ctypes.string_at(self.buf, 2 * (got - 1)).decode("utf-16-le", "ignore")


def extract_pdf(data: bytes, budget: Budget) -> Extracted:
    out = Extracted(kind="pdf")
    try:
        import pypdfium2 as pdfium
        import pypdfium2.raw as pdfium_c
    except ImportError:
        return out.skip(SkipReason.UNSUPPORTED, "pypdfium2 is not installed")
    with _LOCK:
        try:
            doc = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            msg = str(exc)
            if "password" in msg.lower():
                return out.skip(SkipReason.ENCRYPTED, "the PDF is password-protected")
            return out.skip(SkipReason.CORRUPT, f"PDFium cannot open it: {msg}")
        try:
            total = len(doc)
            out.pages = total
            limit = min(total, budget.limits.max_pdf_pages)
            reader = _Reader(pdfium_c, doc.raw, pdfium.PdfiumError)
            max_chars = budget.limits.max_text_chars
            chars = 0
            for i in range(limit):
                if budget.expired():
                    out.skip(SkipReason.TIME_BUDGET, f"pages {i + 1}-{total} not read")
                    break
                try:
                    text = reader.text(i)
                except pdfium.PdfiumError as exc:
                    out.skip(SkipReason.CORRUPT, str(exc), where=f"page {i + 1}")
                    continue
                chars += len(text.strip())
                if "\r" in text:
                    text = text.replace("\r\n", "\n")
                out.parts.append(TextPart(f"page {i + 1}", nfc(text)))
                if chars > max_chars:
                    out.skip(SkipReason.OVERSIZED, f"text beyond {chars} characters not read")
                    break
            if total > limit:
                out.skip(
                    SkipReason.OVERSIZED,
                    f"{total} pages; pages {limit + 1}-{total} beyond the page limit",
                )
            if total and chars == 0 and not out.skipped:
                out.skip(SkipReason.IMAGE_ONLY, f"{total} page(s) without a text layer (needs OCR)")
        finally:
            doc.close()
    return out
