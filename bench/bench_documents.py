"""Document-store detection speed and accuracy, Assay vs the tools a user would otherwise run.

    python bench/bench_documents.py [--mb 20] [--files 10000] [--seed 7]

Generates a corpus with known planted values (markings, personal data, secrets, traps), then
measures in one run: text detection end to end (Hyperscan and pure-re engines) with recall and
precision, detect-secrets on the same files (secrets only), Presidio's pattern recognizers on the
same files (cards, IBAN, e-mail, phone; no spaCy model is needed for them), a plain grep/regex
baseline for the markings, PDF pages/s and DOCX files/s through the extractors (wall clock and
CPU time of the measuring thread, which other processes on the machine do not inflate), and a
first scan vs an unchanged rescan of local stores: many small text files (every file with a
finding, one in twenty with one), and an office-like store of DOCX, XLSX, PDF and text files of
a few KB to a few hundred KB, some with planted findings.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scanner.collectors.store import StoreDocumentsCollector, StoreScanOptions
from scanner.detect import HyperscanEngine, ReEngine, available_engines, detect_text
from scanner.extract import extract
from scanner.inventory import Store
from scanner.model import Target, TargetKind
from scanner.plugins import CollectContext
from scanner.scope import ScopeGuard

PLANTS = {
    "marking": ["TỐI MẬT", "TUYET MAT", "Độ mật: Mật", "\nMẬT\n"],
    "secret": [
        "password = Pl4nted-{n}x",
        "token: ghp_{r36}",
        "AKIA{r16}",
        "postgres://app:Pw{n}zz@10.1.2.3/db",
    ],
    "pii": ["SĐT 0912{d6}", "CCCD 079203{d6}", "thẻ 4111111111111111"],
}
TRAPS = ["mật khẩu của bạn", "mật độ dân số", "bí mật", "password = ${DB_PASS}", "MẬT KHẨU"]
FILLER = (
    "Ủy ban nhân dân tỉnh thông báo lịch làm việc của các phòng ban trong tuần. "
    "The committee reviews the annual plan and the budget for the next year. "
)


def rnd_token(rng: random.Random, n: int, alphabet: str) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def gen_corpus(root: Path, mb: int, seed: int) -> dict[str, dict[str, int]]:
    rng = random.Random(seed)
    truth: dict[str, dict[str, int]] = {}
    per_file = 512 * 1024
    for i in range(max(1, mb * 1024 * 1024 // per_file)):
        parts, counts = [], {"marking": 0, "secret": 0, "pii": 0}
        size = 0
        while size < per_file:
            if rng.random() < 0.02:
                kind = rng.choice(list(PLANTS))
                val = rng.choice(PLANTS[kind]).format(
                    n=rng.randint(1000, 9999),
                    d6=f"{rng.randint(0, 999999):06d}",
                    r36=rnd_token(rng, 36, "abcdefghijklmnopqrstuvwxyzABCDEFGH0123456789"),
                    r16=rnd_token(rng, 16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
                )
                counts[kind] += 1
                chunk = f"\n{val}\n"
            elif rng.random() < 0.01:
                chunk = "\n" + rng.choice(TRAPS) + "\n"
            else:
                chunk = FILLER + ("\n" if rng.random() < 0.3 else "")
            parts.append(chunk)
            size += len(chunk.encode())
        name = f"doc{i:04d}.txt"
        (root / name).write_text("".join(parts), encoding="utf-8")
        truth[name] = counts
    return truth


def family(rule: str) -> str:
    return {"marking_vn": "marking", "secret": "secret", "pii": "pii"}.get(rule, "other")


def run_engine(root: Path, engine: object, truth: dict[str, dict[str, int]]) -> dict[str, object]:
    total_bytes, found = 0, {"marking": 0, "secret": 0, "pii": 0}
    t0 = time.perf_counter()
    for name in truth:
        data = (root / name).read_bytes()
        total_bytes += len(data)
        text = data.decode("utf-8")
        for f in detect_text(text, name, engine=engine):  # type: ignore[arg-type]
            fam = family(f.category.value)
            if fam in found and (fam != "pii" or f.confidence >= 0.5):
                found[fam] += 1
    dt = time.perf_counter() - t0
    planted = {k: sum(t[k] for t in truth.values()) for k in found}
    return {"mb_s": total_bytes / dt / 1e6, "seconds": dt, "found": found, "planted": planted}


def detect_secrets(root: Path) -> dict[str, object] | None:
    exe = shutil.which("detect-secrets")
    if not exe:
        return None
    t0 = time.perf_counter()
    out = subprocess.run(
        [exe, "-C", str(root), "scan", "-n", "--all-files"],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    dt = time.perf_counter() - t0
    try:
        results = json.loads(out.stdout)["results"]
    except (ValueError, KeyError):
        return {"error": out.stderr[-300:]}
    n = sum(len(v) for v in results.values())
    return {"seconds": dt, "found": n}


def presidio(root: Path, truth: dict[str, dict[str, int]], mb: float) -> dict[str, object] | None:
    """Presidio's regex recognizers called directly (no NLP engine, so no spaCy model)."""
    try:
        import tldextract
        from presidio_analyzer.predefined_recognizers import (
            CreditCardRecognizer,
            EmailRecognizer,
            IbanRecognizer,
            PhoneRecognizer,
        )
        from presidio_analyzer.predefined_recognizers.generic import email_recognizer
    except ImportError:
        return None
    # the e-mail recognizer validates domains with tldextract, which would download the public
    # suffix list; the bench stays offline with the snapshot tldextract ships
    email_recognizer.tldextract = type(  # type: ignore[assignment]
        "Offline", (), {"extract": staticmethod(tldextract.TLDExtract(suffix_list_urls=()))}
    )
    recs = [
        CreditCardRecognizer(),
        IbanRecognizer(),
        EmailRecognizer(),
        PhoneRecognizer(supported_regions=("VN",)),
    ]
    found: dict[str, int] = {}
    planted = {"PHONE_NUMBER": 0, "CREDIT_CARD": 0}
    total = 0
    t0 = time.perf_counter()
    for name in truth:  # the first `mb` megabytes of the corpus: Presidio is slow
        if total >= mb * 1e6:
            break
        data = (root / name).read_bytes()
        total += len(data)
        text = data.decode("utf-8")
        planted["PHONE_NUMBER"] += text.count("SĐT 0912")
        planted["CREDIT_CARD"] += text.count("thẻ 4111111111111111")
        for r in recs:
            for res in r.analyze(text, r.supported_entities, None):  # type: ignore[arg-type]
                if res.score >= 0.4:
                    found[res.entity_type] = found.get(res.entity_type, 0) + 1
    dt = time.perf_counter() - t0
    return {"mb_s": total / dt / 1e6, "found": found, "planted": planted, "mb": total / 1e6}


def grep_markings(root: Path, truth: dict[str, dict[str, int]]) -> dict[str, object]:
    pat = re.compile(r"MẬT|MAT|mật")
    t0, hits, total = time.perf_counter(), 0, 0
    for name in truth:
        text = (root / name).read_text(encoding="utf-8")
        total += len(text.encode())
        hits += len(pat.findall(text))
    return {
        "seconds": time.perf_counter() - t0,
        "hits": hits,
        "mb_s": total / (time.perf_counter() - t0) / 1e6,
    }


def bench_formats(tmp: Path) -> dict[str, float]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests import docs_fixtures as fx

    pdf = fx.pdf([f"Trang {i}\n{FILLER * 6}\nSĐT 0912345678" for i in range(50)])
    # The first document of a scan pays once for PDFium's start and the detection engine's
    # build (Hyperscan compiles its database): timed apart, then the steady rate per page.
    t0 = time.perf_counter()
    ex = extract("a.pdf", pdf)
    detect_text("\n".join(p.text for p in ex.parts), "a.pdf")
    first_doc = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.thread_time()
    for _ in range(30):
        ex = extract("a.pdf", pdf)
        detect_text("\n".join(p.text for p in ex.parts), "a.pdf")
    pdf_pages = 1500 / (time.perf_counter() - t0)
    pdf_cpu = 1500 / (time.thread_time() - c0)
    c0 = time.thread_time()
    for _ in range(30):
        extract("a.pdf", pdf)
    pdf_extract_cpu = 1500 / (time.thread_time() - c0)  # PDFium and the page loop alone
    docx = fx.docx([FILLER] * 20 + ["CCCD 079203012345"], header="TỐI MẬT")
    t0, c0 = time.perf_counter(), time.thread_time()
    for _ in range(300):
        ex = extract("a.docx", docx)
        detect_text("\n".join(p.text for p in ex.parts), "a.docx")
    docx_files = 300 / (time.perf_counter() - t0)
    docx_cpu = 300 / (time.thread_time() - c0)
    # the same DOCX through python-docx (what a script would otherwise use), body text only
    import io

    import docx as pydocx

    t0 = time.perf_counter()
    for _ in range(100):
        d = pydocx.Document(io.BytesIO(docx))
        "\n".join(p.text for p in d.paragraphs)
    pydocx_files = 100 / (time.perf_counter() - t0)
    return {
        "pdf_pages_s": pdf_pages,
        "pdf_first_document_s": first_doc,
        "pdf_pages_cpu_s": pdf_cpu,
        "pdf_extract_cpu_s": pdf_extract_cpu,
        "docx_files_s": docx_files,
        "docx_files_cpu_s": docx_cpu,
        "python_docx_files_s": pydocx_files,
    }


def bench_rescan(tmp: Path, files: int, every: int = 1, kib: int = 0) -> dict[str, float]:
    """A store of `files` text files (two lines plus `kib` KiB of filler); one in `every`
    holds a phone number."""
    root = tmp / f"store-{every}-{kib}"
    root.mkdir()
    pad = (FILLER + "\n") * (kib * 1024 // len((FILLER + "\n").encode()))
    for i in range(files):
        line = f"SĐT 0912{i:06d}" if i % every == 0 else "Lịch họp tuần sau"
        (root / f"f{i:05d}.txt").write_text(f"Báo cáo {i}\n{pad}{line}\n", encoding="utf-8")
    return first_and_rescan(root, tmp / f"cache-{every}-{kib}")


def first_and_rescan(root: Path, cache: Path) -> dict[str, float]:
    """A first scan with an empty cache, then three unchanged rescans in the same process (the
    median is reported), and the listing alone (one stat per file, as the connector does it):
    the floor of any rescan. Wall clock and the process's CPU time (the collector runs in a
    worker thread), which other engineers' processes on the machine do not inflate."""
    store = Store(id="bench", kind="local", location=str(root), networked=False)
    opts = StoreScanOptions(cache=True, cache_dir=str(cache), budget_seconds=3000)
    col = StoreDocumentsCollector({"bench": store}, opts)
    target = Target(kind=TargetKind.STORE, unit="b", path=f"local:{root}", names=("bench",))
    ctx = CollectContext(scope=ScopeGuard.of())
    got: list[object] = []

    async def run() -> None:
        # the coroutine returns nothing: asyncio.run on Python 3.11 formats the main task's
        # result while restoring its SIGINT handler, which would put a repr of 10,000
        # documents into the timing
        got.append(await col.collect(target, ctx))

    t0, c0 = time.perf_counter(), time.process_time()
    asyncio.run(run())
    first, first_cpu = time.perf_counter() - t0, time.process_time() - c0
    walls, cpus = [], []
    for _ in range(3):
        got.clear()  # a rescan starts without the last scan's facts in memory
        t0, c0 = time.perf_counter(), time.process_time()
        asyncio.run(run())
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    second, second_cpu = sorted(walls)[1], sorted(cpus)[1]
    facts = got[-1]
    docs = len(facts.documents)  # type: ignore[attr-defined]
    with_findings = sum(1 for d in facts.documents if d.findings)  # type: ignore[attr-defined]
    assert facts.files_scanned == 0, "the rescan read files"  # type: ignore[attr-defined]
    from scanner.stores.local import LocalStore

    lists = []
    for _ in range(3):
        t0 = time.perf_counter()
        sum(1 for _ in LocalStore(str(root)).walk(10**7, 64))
        lists.append(time.perf_counter() - t0)
    listing = sorted(lists)[1]
    return {
        "first_s": first,
        "rescan_s": second,
        "ratio": first / second,
        "first_cpu_s": first_cpu,
        "rescan_cpu_s": second_cpu,
        "cpu_ratio": first_cpu / second_cpu,
        "documents": docs,
        "with_findings": with_findings,
        "listing_s": listing,
    }


# -- an office-like store --------------------------------------------------------------------
OFFICE_PLANTS = ["SĐT 0912{d6}", "Số CCCD: 079203{d6}", "Mã số thuế 0100109106", "TỐI MẬT"]


def _plant(rng: random.Random) -> str:
    return rng.choice(OFFICE_PLANTS).format(d6=f"{rng.randint(0, 999999):06d}")


def _office_pdf(pages: int, text: str, image_kb: int, rng: random.Random) -> bytes:
    """fpdf2 with the DejaVu font subset embedded; image_kb > 0 adds a noise JPEG of about
    that size (a scanned letterhead or a photo), which is what makes real PDFs heavy."""
    from fpdf import FPDF

    from tests.docs_fixtures import FONT

    doc = FPDF()
    doc.add_font("DejaVu", "", FONT)
    doc.set_font("DejaVu", size=10)
    for i in range(pages):
        doc.add_page()
        if image_kb and i == 0:
            from PIL import Image

            side = int((image_kb * 1024 / 0.9) ** 0.5)
            img = Image.frombytes("L", (side, side), rng.randbytes(side * side))
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=60)
            doc.image(io.BytesIO(buf.getvalue()), x=150, y=10, w=40)
        doc.multi_cell(0, 5, text)
    return bytes(doc.output())


def office_pool(rng: random.Random) -> list[tuple[str, bytes, bool]]:
    """Distinct generated documents (suffix, bytes, planted?) that the store is made of; the
    fixtures that build them are slow, so the 10,000 files are copies of these, spread over
    folders. Sizes span a few KB (a short memo) to a few hundred KB (a PDF with a scan)."""
    from tests import docs_fixtures as fx

    pool: list[tuple[str, bytes, bool]] = []
    for n, paras in enumerate([8, 15, 30, 60, 120, 250, 400] * 4):
        planted = n % 4 == 0
        body = [FILLER * rng.randint(1, 3) for _ in range(paras)]
        if planted:
            body.insert(rng.randrange(len(body)), _plant(rng))
        header = "TỐI MẬT" if planted and n % 8 == 0 else "Ủy ban nhân dân tỉnh"
        pool.append(("docx", fx.docx(body, header=header), planted))
    for n, nrows in enumerate([20, 60, 150, 400, 900] * 3):
        planted = n % 3 == 0
        rows: list[list[object]] = [["STT", "Họ tên", "Phòng ban", "Ghi chú", "Số tiền"]]
        for i in range(nrows):
            rows.append([i + 1, f"Cán bộ {i}", "Phòng Tổ chức", FILLER[:60], 1000.5 * i])
        if planted:
            rows[rng.randrange(1, len(rows))][3] = _plant(rng)
        pool.append(("xlsx", fx.xlsx(rows), planted))
    for n, (pages, image_kb) in enumerate(
        [(1, 0), (2, 0), (3, 60), (5, 0), (8, 150), (12, 0), (2, 300), (20, 0)] * 2
    ):
        planted = n % 3 == 0
        text = "\n".join([FILLER * 5] * 3) + (f"\n{_plant(rng)}\n" if planted else "")
        pool.append(("pdf", _office_pdf(pages, text, image_kb, rng), planted))
    return pool


def office_store(root: Path, files: int, seed: int) -> dict[str, int]:
    """`files` documents: 30 % DOCX, 15 % XLSX, 20 % PDF (copies from the pool) and 35 % text
    and CSV generated per file (1-40 KB, one in ten with a planted value), in 100 folders."""
    rng = random.Random(seed)
    pool = office_pool(rng)
    by_kind = {k: [p for p in pool if p[0] == k] for k in ("docx", "xlsx", "pdf")}
    stats = {"files": 0, "bytes": 0, "planted": 0, "pdf_pages": 0}
    for i in range(files):
        folder = root / f"phong-{i % 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        r = rng.random()
        if r < 0.65:
            kind = "docx" if r < 0.30 else "xlsx" if r < 0.45 else "pdf"
            suffix, data, planted = rng.choice(by_kind[kind])
        else:
            suffix = "csv" if r > 0.95 else "txt"
            lines = [FILLER] * rng.randint(8, 280)
            planted = rng.random() < 0.1
            if planted:
                lines.insert(rng.randrange(len(lines)), _plant(rng) + "\n")
            data = "".join(lines).encode()
        (folder / f"van-ban-{i:05d}.{suffix}").write_bytes(data)
        stats["files"] += 1
        stats["bytes"] += len(data)
        stats["planted"] += planted
    return stats


def text_rows(tmp: Path, a: argparse.Namespace) -> None:
    """The detection, format and comparison rows."""
    corpus = tmp / "corpus"
    corpus.mkdir()
    truth = gen_corpus(corpus, a.mb, a.seed)
    print(f"corpus: {len(truth)} files, {a.mb} MB, seed {a.seed}")
    engines = [("re", ReEngine())]
    if "hyperscan" in available_engines():
        engines.insert(0, ("hyperscan", HyperscanEngine()))
    for name, eng in engines:
        r = run_engine(corpus, eng, truth)
        rec = {k: f"{r['found'][k]}/{r['planted'][k]}" for k in r["found"]}  # type: ignore[index]
        print(f"assay[{name}]: {r['mb_s']:.1f} MB/s end to end, found/planted {rec}")
    ds = detect_secrets(corpus)
    if ds and "seconds" in ds:
        planted = sum(t["secret"] for t in truth.values())
        mb_s = a.mb * 1.048576 / float(ds["seconds"])  # type: ignore[arg-type]
        print(
            f"detect-secrets: {mb_s:.2f} MB/s, {ds['found']} findings for {planted} planted secrets"
        )
    pr = presidio(corpus, truth, a.presidio_mb)
    if pr is None:
        print("presidio-analyzer: not installed (pip install presidio-analyzer)")
    else:
        print(
            f"presidio regex recognizers: {pr['mb_s']:.2f} MB/s on {pr['mb']:.1f} MB, "
            f"found {pr['found']} for planted {pr['planted']} (score >= 0.4)"
        )
    g = grep_markings(corpus, truth)
    planted_m = sum(t["marking"] for t in truth.values())
    print(
        f"plain regex 'MẬT|MAT|mật': {g['mb_s']:.1f} MB/s, {g['hits']} hits for "
        f"{planted_m} planted markings (traps included)"
    )
    f = bench_formats(tmp)
    print(
        f"PDF: {f['pdf_pages_s']:.0f} pages/s ({f['pdf_pages_cpu_s']:.0f} per CPU second; "
        f"extraction alone {f['pdf_extract_cpu_s']:.0f}; first document with the one-time "
        f"start {f['pdf_first_document_s'] * 1000:.0f} ms); "
        f"DOCX: {f['docx_files_s']:.0f} files/s ({f['docx_files_cpu_s']:.0f} per CPU "
        f"second; python-docx body only: {f['python_docx_files_s']:.0f} files/s)"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=20)
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--presidio-mb", type=float, default=2.0, help="Presidio runs on this much")
    ap.add_argument("--only-stores", action="store_true", help="only the store rescan rows")
    a = ap.parse_args()
    print(f"load average at the start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if not a.only_stores:
            text_rows(tmp, a)
        for every, kib in ((1, 0), (20, 0), (20, 8)):
            rs = bench_rescan(tmp, a.files, every, kib)
            print(
                f"store of {a.files} files of {kib + 0.03:.2f} KiB, {rs['documents']:.0f} "
                f"with findings: first scan "
                f"{rs['first_s']:.2f}s, unchanged rescan {rs['rescan_s']:.3f}s "
                f"({rs['ratio']:.1f}x faster; CPU {rs['first_cpu_s']:.2f}s / "
                f"{rs['rescan_cpu_s']:.3f}s = {rs['cpu_ratio']:.1f}x); listing alone "
                f"{rs['listing_s']:.3f}s (bound {rs['first_s'] / rs['listing_s']:.0f}x)"
            )
        office = tmp / "office"
        st = office_store(office, a.files, a.seed)
        rs = first_and_rescan(office, tmp / "cache-office")
        print(
            f"office store of {st['files']} files ({st['bytes'] / 1e6:.0f} MB: DOCX, XLSX, PDF, "
            f"text), {st['planted']} with a planted value, {rs['with_findings']:.0f} reported "
            f"with findings, {rs['documents']:.0f} reported: first scan {rs['first_s']:.2f}s, "
            f"unchanged rescan {rs['rescan_s']:.3f}s ({rs['ratio']:.1f}x faster; CPU "
            f"{rs['first_cpu_s']:.2f}s / {rs['rescan_cpu_s']:.3f}s = {rs['cpu_ratio']:.1f}x); "
            f"listing alone {rs['listing_s']:.3f}s"
        )
        print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
