"""Extraction: every format with the places markings hide, and bad input that must be listed as
not scanned (never as clean) without losing what was read."""

from __future__ import annotations

import io
import unicodedata
import zipfile

import pytest

from scanner.detect import detect_parts
from scanner.extract import Limits, SkipReason, extract
from tests import docs_fixtures as fx


def found(name: str, data: bytes, limits: Limits | None = None) -> set[str]:
    ex = extract(name, data, limits)
    return {f.rule for f in detect_parts(ex.parts, name, 2026)}


def reasons(name: str, data: bytes, limits: Limits | None = None) -> set[SkipReason]:
    return {s.reason for s in extract(name, data, limits).skipped}


def test_docx_header_footer_and_text_box() -> None:
    data = fx.docx(["Nội dung"], header="TỐI MẬT", footer="SĐT 0912345678", textbox="TUYỆT MẬT")
    ex = extract("a.docx", data)
    wheres = {p.where for p in ex.parts}
    assert {"body", "header", "footer"} <= wheres
    rules = found("a.docx", data)
    assert {"marking.vn.toi_mat", "marking.vn.tuyet_mat", "pii.vn.phone"} <= rules
    assert found("b.docx", fx.docx(["Quy định về mật khẩu và mật độ"])) == set()


def test_xlsx_cells_numbers_and_print_header() -> None:
    data = fx.xlsx(
        [["Họ tên", "Số CCCD"], ["Nguyễn Văn A", "079203012345"], ["Trần B", 79203012346]],
        header="MẬT",
    )
    rules = found("a.xlsx", data)
    assert {"marking.vn.mat", "pii.vn.personal_id"} <= rules
    ex = extract("a.xlsx", data)
    assert any(p.where == "sheet Data print header" for p in ex.parts)


def test_pptx_odt_rtf_pdf_eml() -> None:
    assert "marking.stamp" in found("a.pptx", fx.pptx(["Plan", "CONFIDENTIAL"]))
    assert "marking.vn.toi_mat" in found("a.odt", fx.odt(["Nội dung"], header="TỐI MẬT"))
    assert {"marking.vn.do_mat", "marking.vn.toi_mat"} <= found("a.rtf", fx.rtf("Bản\nTỐI MẬT"))
    pdf = fx.pdf(["Trang một", "Độ mật: Tuyệt mật\nSĐT 0987654321"])
    ex = extract("a.pdf", pdf)
    assert ex.pages == 2 and [p.where for p in ex.parts] == ["page 1", "page 2"]
    assert {"marking.vn.do_mat", "pii.vn.phone"} <= found("a.pdf", pdf)
    mail = fx.eml(
        "Báo cáo",
        "Xem tệp đính kèm",
        {"kh.docx": fx.docx(["TỐI MẬT"]), "k.txt": b"password = Pw-2025-x"},
    )
    ex = extract("m.eml", mail)
    assert any(p.where.startswith("attachment kh.docx") for p in ex.parts)
    assert {"marking.vn.toi_mat", "secret.password_assignment", "pii.email"} <= found("m.eml", mail)


def test_nested_zip_and_depth_limit() -> None:
    inner = fx.zipped({"deep.txt": b"TOI MAT"})
    outer = fx.zipped({"a.zip": inner, "b.txt": b"SDT 0912345678"})
    assert {"marking.vn.toi_mat", "pii.vn.phone"} <= found("o.zip", outer)
    lim = Limits(max_depth=1)
    assert reasons("o.zip", outer, lim) == {SkipReason.TOO_DEEP}
    assert "pii.vn.phone" in found("o.zip", outer, lim)  # what was in reach is still scanned


def to_cp1258(text: str) -> bytes:
    """Windows-1258 keeps base letters (â, ơ, ư, đ) precomposed and tone marks combining."""
    out = bytearray()
    for ch in text:
        try:
            out += ch.encode("cp1258")
            continue
        except UnicodeEncodeError:
            pass
        base, *marks = unicodedata.normalize("NFD", ch)
        for mark in list(marks):
            combined = unicodedata.normalize("NFC", base + mark)
            try:
                combined.encode("cp1258")
            except UnicodeEncodeError:
                continue
            if len(combined) == 1:
                base = combined
                marks.remove(mark)
                break
        out += (base + "".join(marks)).encode("cp1258")
    return bytes(out)


def test_text_encodings() -> None:
    text = "Độ mật: Tối mật\nSố điện thoại 0912345678\n"
    assert "marking.vn.do_mat" in found("u16.txt", text.encode("utf-16"))
    nfd = unicodedata.normalize("NFD", text).encode()
    assert "marking.vn.do_mat" in found("nfd.txt", nfd)  # decomposed UTF-8 is NFC-normalised
    cp = to_cp1258(text)
    ex = extract("cp.txt", cp)
    assert any("Windows-1258" in n for n in ex.notes)
    assert "marking.vn.do_mat" in found("cp.txt", cp)
    bad = text.encode() + b"\xff\xfe\xfa" + b"x" * 2000
    ex = extract("bad.txt", bad)
    assert any("invalid UTF-8" in n for n in ex.notes)
    assert "pii.vn.phone" in found("bad.txt", bad)


def test_tcvn3_is_reported() -> None:
    # TCVN3 (ABC) bytes of "Độ mật: Tối mật" style text: letters live in 0xA0-0xFF
    tcvn = (
        b"\xa7\xe9 m\xcat: T\xe8i m\xcat. C\xa8n c\xf8 v\xb5o lu\xaet b\xb8o c\xb8o \xb8 \xb5 \xb6"
        * 4
    )
    ex = extract("old.txt", tcvn)
    assert any("TCVN3" in n for n in ex.notes)


@pytest.mark.parametrize(
    ("name", "builder", "reason"),
    [
        ("enc.docx", fx.encrypted_docx, SkipReason.ENCRYPTED),
        ("enc.pdf", lambda: fx.pdf(["TỐI MẬT"], password="pw"), SkipReason.ENCRYPTED),
        ("scan.pdf", fx.image_pdf, SkipReason.IMAGE_ONLY),
        ("bomb.zip", lambda: fx.zip_bomb(20), SkipReason.BOMB),
        ("photo.jpg", lambda: b"\xff\xd8\xff\xe0" + b"\0" * 100, SkipReason.IMAGE_ONLY),
        ("broken.pdf", lambda: b"%PDF-1.7\n1 0 obj garbage", SkipReason.CORRUPT),
        ("broken.docx", lambda: b"PK\x03\x04" + b"\0" * 50, SkipReason.CORRUPT),
        (
            "old.doc",
            lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600,
            SkipReason.UNSUPPORTED,
        ),
    ],
)
def test_bad_input_is_listed_as_not_scanned(name: str, builder: object, reason: SkipReason) -> None:
    data = builder()  # type: ignore[operator]
    ex = extract(name, data)
    assert reason in {s.reason for s in ex.skipped}, ex.skipped
    assert all(s.detail or s.reason for s in ex.skipped)


def test_oversized_file_and_pdf_page_limit() -> None:
    assert reasons("big.txt", b"a" * 2000, Limits(max_file_bytes=1000)) == {SkipReason.OVERSIZED}
    pdf = fx.pdf(["SĐT 0912345678"] * 5)
    ex = extract("p.pdf", pdf, Limits(max_pdf_pages=2))
    assert len(ex.parts) == 2 and SkipReason.OVERSIZED in {s.reason for s in ex.skipped}


def test_zip_that_lies_about_sizes_and_too_many_members() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(30):
            z.writestr(f"f{i}.txt", f"SĐT 09123456{i:02d}")
    data = buf.getvalue()
    ex = extract("many.zip", data, Limits(max_members=10))
    assert len(ex.parts) == 10 and SkipReason.OVERSIZED in {s.reason for s in ex.skipped}
    # a member whose header declares 10 bytes but which inflates to far more
    big = fx.zipped({"a.txt": b"x" * 100_000})
    lie = bytearray(big)
    cd = lie.rfind(b"PK\x01\x02")
    lie[cd + 24 : cd + 28] = (10).to_bytes(4, "little")  # uncompressed size in the directory
    ex = extract("lie.zip", bytes(lie), Limits(max_unpacked_bytes=1000, max_file_bytes=1000))
    assert ex.skipped and not ex.parts


def test_deeply_nested_rtf_is_bounded() -> None:
    data = b"{\\rtf1 " + b"{" * 5000 + b"x" + b"}" * 5000 + b"}"
    assert reasons("deep.rtf", data) == {SkipReason.CORRUPT}
