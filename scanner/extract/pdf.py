"""PDF text through PDFium (pypdfium2): about six times faster than pure-Python parsers.

PDFium is not thread-safe, so one lock serialises it. A password-protected file is reported as
encrypted, a file with pages but no text layer as image only (it needs OCR), and pages beyond
the page limit or the time budget as not scanned; the pages read before that are kept.
"""

from __future__ import annotations

import threading

from scanner.detect.findings import TextPart
from scanner.extract.base import Budget, Extracted, SkipReason
from scanner.extract.text import nfc

_LOCK = threading.Lock()


def extract_pdf(data: bytes, budget: Budget) -> Extracted:
    out = Extracted(kind="pdf")
    try:
        import pypdfium2 as pdfium
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
            chars = 0
            for i in range(limit):
                if budget.expired():
                    out.skip(SkipReason.TIME_BUDGET, f"pages {i + 1}-{total} not read")
                    break
                try:
                    page = doc[i]
                    tp = page.get_textpage()
                    text = tp.get_text_range()
                    tp.close()
                    page.close()
                except pdfium.PdfiumError as exc:
                    out.skip(SkipReason.CORRUPT, str(exc), where=f"page {i + 1}")
                    continue
                chars += len(text.strip())
                out.parts.append(TextPart(f"page {i + 1}", nfc(text.replace("\r\n", "\n"))))
                if chars > budget.limits.max_text_chars:
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
