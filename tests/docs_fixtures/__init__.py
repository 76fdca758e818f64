"""Builders of test documents, generated in the tests (no binary files from elsewhere).

Each builder returns bytes. Office files are made with python-docx / openpyxl where they can
express the feature, and by writing the zip + XML directly where they cannot (text boxes,
PPTX, ODT), which is also how the extractor reads them.
"""

from __future__ import annotations

import io
import zipfile
from email.message import EmailMessage
from xml.sax.saxutils import escape

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def docx(body: list[str], header: str = "", footer: str = "", textbox: str = "") -> bytes:
    """A DOCX with body paragraphs, a header, a footer and (raw XML) a text box."""
    import docx as pydocx

    d = pydocx.Document()
    sec = d.sections[0]
    if header:
        sec.header.paragraphs[0].text = header
    if footer:
        sec.footer.paragraphs[0].text = footer
    for line in body:
        d.add_paragraph(line)
    buf = io.BytesIO()
    d.save(buf)
    data = buf.getvalue()
    if not textbox:
        return data
    # python-docx cannot write text boxes: add a w:txbxContent run to the body XML
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for item in src.infolist():
            content = src.read(item.filename)
            if item.filename == "word/document.xml":
                box = (
                    '<w:p><w:r><w:pict><v:shape xmlns:v="urn:schemas-microsoft-com:vml">'
                    f"<v:textbox><w:txbxContent><w:p><w:r><w:t>{escape(textbox)}</w:t></w:r>"
                    "</w:p></w:txbxContent></v:textbox></v:shape></w:pict></w:r></w:p>"
                )
                content = content.replace(b"<w:body>", b"<w:body>" + box.encode(), 1)
            z.writestr(item, content)
    return out.getvalue()


def xlsx(rows: list[list[object]], header: str = "", sheet: str = "Data") -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = sheet
    for r in rows:
        ws.append(r)
    if header:
        ws.oddHeader.center.text = header
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def pptx(slides: list[str], notes: str = "") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        for i, text in enumerate(slides, 1):
            z.writestr(
                f"ppt/slides/slide{i}.xml",
                '<p:sld xmlns:a="a" xmlns:p="p"><p:txBody><a:p><a:r><a:t>'
                f"{escape(text)}</a:t></a:r></a:p></p:txBody></p:sld>",
            )
        if notes:
            z.writestr(
                "ppt/notesSlides/notesSlide1.xml",
                f'<p:notes xmlns:a="a" xmlns:p="p"><a:p><a:r><a:t>{escape(notes)}</a:t></a:r>'
                "</a:p></p:notes>",
            )
    return out.getvalue()


def odt(body: list[str], header: str = "") -> bytes:
    out = io.BytesIO()
    ns = 'xmlns:text="t" xmlns:style="s" xmlns:office="o"'
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.text")
        paras = "".join(f"<text:p>{escape(x)}</text:p>" for x in body)
        z.writestr(
            "content.xml",
            f"<office:document-content {ns}><office:body>{paras}"
            "</office:body></office:document-content>",
        )
        z.writestr(
            "styles.xml",
            f"<office:document-styles {ns}><style:master-page>"
            f"<style:header><text:p>{escape(header)}</text:p></style:header>"
            "</style:master-page></office:document-styles>",
        )
        z.writestr("META-INF/manifest.xml", "<manifest/>")
    return out.getvalue()


def pdf(pages: list[str], password: str = "") -> bytes:
    from fpdf import FPDF

    doc = FPDF()
    doc.add_font("DejaVu", "", FONT)
    doc.set_font("DejaVu", size=11)
    for text in pages:
        doc.add_page()
        doc.multi_cell(0, 6, text)
    if password:
        doc.set_encryption(owner_password=password + "-owner", user_password=password)
    return bytes(doc.output())


def image_pdf() -> bytes:
    """A scanned-looking PDF: one page with an image and no text layer."""
    from fpdf import FPDF
    from PIL import Image

    img = Image.new("RGB", (120, 60), "white")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    doc = FPDF()
    doc.add_page()
    doc.image(io.BytesIO(buf.getvalue()), x=10, y=10, w=100)
    return bytes(doc.output())


def eml(subject: str, body: str, attachments: dict[str, bytes]) -> bytes:
    msg = EmailMessage()
    msg["From"] = "van.thu@so.example.gov.vn"
    msg["To"] = "phong.hc@so.example.gov.vn"
    msg["Subject"] = subject
    msg.set_content(body)
    for name, data in attachments.items():
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return msg.as_bytes()


def zipped(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def zip_bomb(mb: int = 50) -> bytes:
    return zipped({"zeros.txt": b"0" * (mb * 1024 * 1024)})


def encrypted_docx(password: str = "secret") -> bytes:
    import msoffcrypto.format.ooxml as ooxml

    plain = io.BytesIO(docx(["TỐI MẬT", "Nội dung"]))
    out = io.BytesIO()
    ooxml.OOXMLFile(plain).encrypt(password, out)
    return out.getvalue()


def rtf(text: str) -> bytes:
    r"""RTF with \uN escapes for the Vietnamese letters and a header group."""

    def enc(s: str) -> str:
        return "".join(
            c if ord(c) < 128 else f"\\u{ord(c) if ord(c) < 32768 else ord(c) - 65536}?" for c in s
        )

    return (
        "{\\rtf1\\ansi\\ansicpg1258{\\fonttbl{\\f0 Times New Roman;}}"
        "{\\header " + enc("Độ mật: Mật") + "\\par}"
        "\\f0 " + enc(text).replace("\n", "\\par ") + "}"
    ).encode("ascii")
