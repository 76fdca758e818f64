"""DOCX / XLSX / PPTX and ODT / ODS / ODP through zipfile and the XML text runs.

Reading the text runs of the parts with a small regex pass over the XML is about twenty times
faster than building a document object model (python-docx), and it reaches the places where
markings hide: headers and footers, text boxes (inside the body XML), footnotes, comments,
spreadsheet print headers (`headerFooter`), slide notes and ODF master pages.
"""

from __future__ import annotations

import html
import re
import zipfile

from scanner.detect.findings import TextPart
from scanner.extract.base import Budget, Extracted, SkipReason
from scanner.extract.text import nfc

_W_PARA_END = re.compile(
    r"</w:p>|<w:br\b[^>]*/>|<w:cr/>|</a:p>|</text:p>|</text:h>|<text:line-break/>"
)
_W_TAB = re.compile(r"<w:tab/>|<text:tab/>|<text:s/>")
_TAGS = re.compile(r"<[^>]*>")
_WORD_PARTS = re.compile(r"^word/(document|header\d*|footer\d*|footnotes|endnotes|comments)\.xml$")
_SLIDE_PARTS = re.compile(
    r"^ppt/(slides/slide|notesSlides/notesSlide|slideMasters/slideMaster)"
    r"(\d+)\.xml$"
)
_SHEET = re.compile(r"^xl/worksheets/sheet(\d+)\.xml$")
_SI = re.compile(r"<si>(.*?)</si>", re.S)
_T = re.compile(r"<t[^>]*>([^<]*)</t>")
_ROW = re.compile(r"<row\b[^>]*>(.*?)</row>", re.S)
_CELL = re.compile(r"<c\b([^>]*)>(.*?)</c>", re.S)
_V = re.compile(r"<v>([^<]*)</v>")
_IS = re.compile(r"<is>(.*?)</is>", re.S)
_HEADFOOT = re.compile(r"<(odd|even|first)(Header|Footer)>([^<]*)</", re.S)
_SHEET_NAME = re.compile(r'<sheet\b[^>]*\bname="([^"]*)"')
_HF_CODES = re.compile(r"&(?:\"[^\"]*\"|[0-9]+|[LCRPNDTZFAKBIUESXY])")


def runs_to_text(xml: str) -> str:
    """Text of WordprocessingML / DrawingML / ODF XML, one line per paragraph."""
    xml = _W_PARA_END.sub("\n", xml)
    xml = _W_TAB.sub(" ", xml)
    return html.unescape(_TAGS.sub("", xml))


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: Budget) -> bytes:
    """One member within the ratio and unpacked-size limits (declared sizes may lie)."""
    lim = budget.limits
    if info.flag_bits & 0x1:
        raise _Skip(SkipReason.ENCRYPTED, "the archive member is encrypted")
    if info.compress_size and info.file_size / max(info.compress_size, 1) > lim.max_ratio:
        raise _Skip(SkipReason.BOMB, f"compression ratio above {lim.max_ratio:g}")
    room = lim.max_unpacked_bytes - budget.unpacked
    cap = min(room, lim.max_file_bytes)
    if info.file_size > cap:
        raise _Skip(SkipReason.OVERSIZED, f"{info.file_size} bytes unpacked (limit {cap})")
    with zf.open(info) as fh:
        data = fh.read(cap + 1)
    if len(data) > cap:
        raise _Skip(SkipReason.BOMB, "more data than the archive declares")
    if info.compress_size and len(data) / max(info.compress_size, 1) > lim.max_ratio:
        raise _Skip(SkipReason.BOMB, f"compression ratio above {lim.max_ratio:g}")
    budget.unpacked += len(data)
    return data


class _Skip(Exception):
    def __init__(self, reason: SkipReason, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def _where_word(name: str) -> str:
    stem = name.split("/")[-1].removesuffix(".xml")
    return "body" if stem == "document" else re.sub(r"\d+$", "", stem)


def extract_ooxml(zf: zipfile.ZipFile, kind: str, budget: Budget) -> Extracted:
    out = Extracted(kind=kind)
    infos = {i.filename: i for i in zf.infolist()}
    try:
        if kind == "docx":
            for name in sorted(infos, key=lambda n: (not n.endswith("document.xml"), n)):
                if _WORD_PARTS.match(name):
                    xml = read_member(zf, infos[name], budget).decode("utf-8", "replace")
                    out.parts.append(TextPart(_where_word(name), nfc(runs_to_text(xml))))
        elif kind == "pptx":
            slides = [
                (m.group(1), int(m.group(2)), n) for n in infos if (m := _SLIDE_PARTS.match(n))
            ]
            for part, num, name in sorted(slides, key=lambda s: (s[0], s[1])):
                if budget.expired():
                    return out.skip(SkipReason.TIME_BUDGET, "slides left unread")
                xml = read_member(zf, infos[name], budget).decode("utf-8", "replace")
                label = {"slides/slide": "slide", "notesSlides/notesSlide": "notes"}.get(
                    part, "master"
                )
                out.parts.append(TextPart(f"{label} {num}", nfc(runs_to_text(xml))))
        else:
            _xlsx(zf, infos, out, budget)
    except _Skip as exc:
        out.skip(exc.reason, exc.detail)
    return out


def _xlsx(
    zf: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo], out: Extracted, budget: Budget
) -> None:
    shared: list[str] = []
    if "xl/sharedStrings.xml" in infos:
        xml = read_member(zf, infos["xl/sharedStrings.xml"], budget).decode("utf-8", "replace")
        shared = [html.unescape("".join(_T.findall(si))) for si in _SI.findall(xml)]
    names: list[str] = []
    if "xl/workbook.xml" in infos:
        wb = read_member(zf, infos["xl/workbook.xml"], budget).decode("utf-8", "replace")
        names = [html.unescape(n) for n in _SHEET_NAME.findall(wb)]
    sheets = sorted((int(m.group(1)), n) for n in infos if (m := _SHEET.match(n)))
    for num, name in sheets:
        if budget.expired():
            out.skip(SkipReason.TIME_BUDGET, "sheets left unread")
            return
        xml = read_member(zf, infos[name], budget).decode("utf-8", "replace")
        label = f"sheet {names[num - 1]}" if 0 < num <= len(names) else f"sheet {num}"
        lines = []
        for row in _ROW.findall(xml):
            cells = []
            for attrs, body in _CELL.findall(row):
                if 't="s"' in attrs:
                    v = _V.search(body)
                    if v and v.group(1).isdigit() and int(v.group(1)) < len(shared):
                        cells.append(shared[int(v.group(1))])
                elif 't="inlineStr"' in attrs:
                    cells.append(html.unescape("".join(_T.findall(body))))
                else:
                    v = _V.search(body)
                    if v:
                        cells.append(html.unescape(v.group(1)))
            lines.append("\t".join(cells))
        out.parts.append(TextPart(label, nfc("\n".join(lines))))
        hf = [_HF_CODES.sub(" ", html.unescape(m.group(3))) for m in _HEADFOOT.finditer(xml)]
        if hf:
            out.parts.append(TextPart(f"{label} print header", nfc("\n".join(hf))))


def extract_odf(zf: zipfile.ZipFile, kind: str, budget: Budget) -> Extracted:
    out = Extracted(kind=kind)
    infos = {i.filename: i for i in zf.infolist()}
    try:
        manifest = infos.get("META-INF/manifest.xml")
        if manifest is not None and b"encryption-data" in read_member(zf, manifest, budget):
            return out.skip(SkipReason.ENCRYPTED, "the document is password-protected")
        for name, where in (("content.xml", "body"), ("styles.xml", "header/footer")):
            if name in infos:
                xml = read_member(zf, infos[name], budget).decode("utf-8", "replace")
                if name == "styles.xml":  # only the master pages hold header and footer text
                    xml = "".join(
                        re.findall(
                            r"<style:(?:header|footer)\b.*?</style:(?:header|"
                            r"footer)>",
                            xml,
                            re.S,
                        )
                    )
                out.parts.append(TextPart(where, nfc(runs_to_text(xml))))
    except _Skip as exc:
        out.skip(exc.reason, exc.detail)
    return out


def office_kind(zf: zipfile.ZipFile) -> str:
    """docx / xlsx / pptx / odt / ods / odp, or '' for a plain archive."""
    names = set(zf.namelist())
    if "[Content_Types].xml" in names:
        if "word/document.xml" in names:
            return "docx"
        if "xl/workbook.xml" in names:
            return "xlsx"
        if any(n.startswith("ppt/") for n in names):
            return "pptx"
    if "mimetype" in names and "content.xml" in names:
        try:
            mime = zf.read("mimetype")[:100].decode("ascii", "replace")
        except Exception:
            return ""
        for suffix, kind in (("text", "odt"), ("spreadsheet", "ods"), ("presentation", "odp")):
            if mime.endswith(suffix):
                return kind
    return ""
