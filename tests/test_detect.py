"""Detectors: markings with and without diacritics (and their traps), validators, context,
secrets, masking, and the identical results of the Hyperscan and `re` engines."""

from __future__ import annotations

import random

import pytest

from scanner.detect import (
    Category,
    HyperscanEngine,
    ReEngine,
    Sensitivity,
    available_engines,
    detect_text,
)
from scanner.detect import validators as v


def rules(text: str, name: str | None = None) -> list[str]:
    return [f.rule for f in detect_text(text, "doc.txt", name=name)]


# -- state-secret markings ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("TUYỆT MẬT\nBáo cáo", Sensitivity.TUYET_MAT),
        ("TUYET MAT\nBao cao", Sensitivity.TUYET_MAT),
        ("Kế hoạch — TỐI MẬT", Sensitivity.TOI_MAT),
        ("TOI MAT", Sensitivity.TOI_MAT),
        ("   MẬT  \nSố: 12/BC", Sensitivity.MAT),
        ("[MAT]", Sensitivity.MAT),
        ("Độ mật: Tối mật", Sensitivity.TOI_MAT),
        ("Do mat: tuyet mat", Sensitivity.TUYET_MAT),
        ("ĐỘ MẬT: MẬT", Sensitivity.MAT),
    ],
)
def test_vietnamese_markings_with_and_without_diacritics(text: str, level: Sensitivity) -> None:
    found = [f for f in detect_text(text, "d") if f.category is Category.MARKING_VN]
    assert found, text
    assert max(found, key=lambda f: f.confidence).sensitivity is level


@pytest.mark.parametrize(
    "text",
    [
        "Vui lòng đổi mật khẩu định kỳ.",
        "MẬT KHẨU",
        "MẬT KHẨU: xem phụ lục",  # the password rule may fire, never a marking
        "Mật độ dân số tăng.",
        "MẬT ĐỘ DÂN SỐ",
        "Giữ bí mật thông tin khách hàng.",
        "BÍ MẬT KINH DOANH",
        "Tối mật khẩu",
        "mật ong, mật mía, thân mật, mật thiết",
        "Độ mật: cao",  # not a level
        "Mat troi mat ma",
        "MATERIAL TOMATO",
    ],
)
def test_ordinary_words_with_mat_are_not_markings(text: str) -> None:
    marks = [f for f in detect_text(text, "d") if f.category is Category.MARKING_VN]
    assert marks == [], text


def test_marking_in_file_name_and_declassified_stamp() -> None:
    assert "marking.vn.toi_mat" in rules("nội dung", name="Bao_cao_TOI_MAT.docx")
    assert "marking.vn.mat_name" in rules("nội dung", name="MAT-ke-hoach-2025.pdf")
    assert rules("nội dung", name="mat_khau_wifi.txt") == []
    assert rules("nội dung", name="matlab_notes.txt") == []
    assert "marking.vn.giai_mat" in rules("GIẢI MẬT\nTừ: 01/01/2025")


@pytest.mark.parametrize(
    "text",
    [
        "VS-NUR FÜR DEN DIENSTGEBRAUCH",
        "VS - Nur fuer den Dienstgebrauch",
        "VS-NfD",
        "VS-VERTRAULICH",
        "STRENG GEHEIM",
        "CONFIDENTIAL",
        "--- SECRET ---",
        "VERTRAULICH",
    ],
)
def test_foreign_markings(text: str) -> None:
    assert any(f.category is Category.MARKING_FOREIGN for f in detect_text(text, "d"))


@pytest.mark.parametrize(
    "text",
    [
        "This is confidential between us.",
        "client_secret handling",
        "Geheimnis",
        "SECRETARY",
        "The SECRET of success is",
    ],
)
def test_foreign_marking_traps(text: str) -> None:
    assert not any(f.category is Category.MARKING_FOREIGN for f in detect_text(text, "d"))


# -- validators --------------------------------------------------------------------------------
def test_validators() -> None:
    assert v.vn_personal_id("079203012345", 2026)
    assert not v.vn_personal_id("003203012345", 2026)  # 003 is no province code
    assert not v.vn_personal_id("079403012345", 2026)  # born in the 2100s
    assert not v.vn_personal_id("079230012345", 2026)  # born in 2030
    assert v.vn_tax_code("0100109106") and v.vn_tax_code("0100109106-001")
    assert not v.vn_tax_code("0100109107") and not v.vn_tax_code("0100109106-000")
    assert v.luhn("4111111111111111") and not v.luhn("4111111111111112")
    assert v.card_issuer("9704360000000000") == "napas"
    assert v.iban("DE89 3704 0044 0532 0130 00") and not v.iban("DE89 3704 0044 0532 0130 01")
    assert not v.iban("DE89370400440532013")  # wrong length for DE
    assert v.de_tax_id("86095742719") and not v.de_tax_id("86095742718")
    assert not v.de_tax_id("12345678901")  # no repeated digit
    assert v.vn_mobile("+84 912 345 678") and not v.vn_mobile("0112345678")
    assert not v.real_password("${DB_PASSWORD}") and not v.real_password("changeme")
    assert not v.real_password("****") and v.real_password("Tr0ub4dor&3")


def test_context_words_raise_confidence_and_gate_weak_identifiers() -> None:
    bare = {f.rule: f.confidence for f in detect_text("ref 079203012345 end", "d")}
    ctx = {f.rule: f.confidence for f in detect_text("Số CCCD: 079203012345", "d")}
    unaccented = {f.rule: f.confidence for f in detect_text("so can cuoc 079203012345", "d")}
    assert bare["pii.vn.personal_id"] < 0.5 <= ctx["pii.vn.personal_id"]
    assert unaccented["pii.vn.personal_id"] == ctx["pii.vn.personal_id"]
    assert "pii.vn.old_id" not in rules("mã 123456789 hóa đơn")
    assert "pii.vn.old_id" in rules("Số CMND: 123456789")
    assert "pii.passport" in rules("Số hộ chiếu: B1234567") and not rules("mã B1234567")
    assert "pii.date_of_birth" in rules("Ngày sinh: 12/05/1987")
    assert "pii.date_of_birth" not in rules("Hạn nộp 12/05/2025")


def test_checksums_reject_lookalikes() -> None:
    assert "pii.payment_card" in rules("Visa 4111 1111 1111 1111")
    assert "pii.payment_card" not in rules("Visa 4111 1111 1111 1112")
    assert "pii.iban" in rules("IBAN DE89370400440532013000")
    assert "pii.iban" not in rules("IBAN DE89370400440532013001")
    assert "pii.vn.tax_code" in rules("MST: 0100109106")
    assert "pii.vn.tax_code" not in rules("MST: 0100109107")


def test_legal_category_and_confidence_on_every_finding() -> None:
    for f in detect_text("CCCD 079203012345, thẻ 4111111111111111, password: S3cr3tValue", "d"):
        assert f.legal and 0 < f.confidence <= 1
        if f.rule == "pii.payment_card":
            assert f.sensitivity is Sensitivity.SENSITIVE
            assert "vn-pdpl:91/2025:sensitive" in f.legal
        if f.rule == "pii.vn.personal_id":
            assert "vn-pdpl:91/2025:basic" in f.legal and "gdpr:art-87" in f.legal


# -- secrets -----------------------------------------------------------------------------------
SECRETS = {
    "-----BEGIN OPENSSH PRIVATE KEY-----": "secret.private_key",
    "aws_access_key_id = AKIAIOSFODNN7EXAMPLQ": "secret.aws_key_id",
    "key=AIzaSyA1234567890abcdefghijklmnopqrstuv": "secret.gcp_api_key",
    "token ghp_" + "a1B2" * 9: "secret.github_token",
    "glpat-abcdefghij0123456789": "secret.gitlab_token",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlX2hlcmU": "secret.jwt",
    "DATABASE_URL=postgres://app:Xy7pQ2wz@10.0.0.5/app": "secret.connection_string",
    "password = Tr0ub4dor&3": "secret.password_assignment",
    'db.password: "quoted value 9"': "secret.password_assignment",
    "mật khẩu: HaNoi@2025": "secret.password_assignment",
    "PASSWD=unquotedValue7": "secret.password_assignment",
}


@pytest.mark.parametrize(("text", "rule"), SECRETS.items())
def test_secrets(text: str, rule: str) -> None:
    found = detect_text(text, "cfg")
    assert rule in [f.rule for f in found]
    for f in found:  # the value itself never appears in a finding
        secret_part = text.split("=", 1)[-1].split(":", 1)[-1].strip().strip('"')
        assert secret_part not in f.model_dump_json() or f.category is not Category.SECRET


@pytest.mark.parametrize(
    "text",
    [
        "password = ${DB_PASSWORD}",
        "password: changeme",
        "password=****",
        "pwd = <password>",
        "token: {{ vault_token }}",
        "password = 1234",
    ],
)
def test_placeholders_are_not_secrets(text: str) -> None:
    assert "secret.password_assignment" not in rules(text)


def test_masking_never_reveals_the_value() -> None:
    text = "SĐT 0912345678, CCCD 079203012345, email nguyen.van.a@hanoi.gov.vn, 4111111111111111"
    found = {f.rule: f.masked for f in detect_text(text, "d")}
    assert found["pii.vn.phone"] == "0912****78"
    assert found["pii.vn.personal_id"] == "0792******45"
    assert found["pii.email"] == "n***@hanoi.gov.vn"
    assert found["pii.payment_card"] == "************1111"
    blob = str(detect_text(text, "d"))
    for raw in ("0912345678", "079203012345", "nguyen.van.a", "4111111111111111"):
        assert raw not in blob


def test_fingerprints_are_stable_and_distinct() -> None:
    a = detect_text("SĐT 0912345678\nSĐT 0912345678", "doc")
    b = detect_text("SĐT 0912345678\nSĐT 0912345678", "doc")
    assert [f.fingerprint for f in a] == [f.fingerprint for f in b]
    assert len({f.fingerprint for f in a}) == 2
    assert detect_text("SĐT 0912345678", "other")[0].fingerprint != a[0].fingerprint


# -- engines -----------------------------------------------------------------------------------
def _corpus(seed: int) -> str:
    rnd = random.Random(seed)
    pieces = [
        "Độ mật: Tối mật",
        "TỐI MẬT",
        "MẬT",
        "mật khẩu",
        "bí mật",
        "SĐT 0912 345 678",
        "CCCD 079203012345",
        "MST 0100109106",
        "4111 1111 1111 1111",
        "DE89370400440532013000",
        "a.b@c.gov.vn",
        "password = Zx9!abcd",
        "AKIAIOSFODNN7EXAMPLQ",
        "VS-NfD",
        "CONFIDENTIAL",
        "ngày sinh 01/02/1990",
        "postgres://u:Pw12345x@h/db",
        "Steuer-ID 86095742719",
        "lorem ipsum dolor",
        "0123456789",
        "xin chào",
        "\n",
        "\n",
        " ",
        "\t",
    ]
    return "".join(rnd.choice(pieces) + rnd.choice([" ", "\n", ", "]) for _ in range(6000))


@pytest.mark.skipif("hyperscan" not in available_engines(), reason="hyperscan not installed")
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_hyperscan_and_re_engines_give_identical_results(seed: int) -> None:
    text = _corpus(seed)
    a = [(m.rule.id, m.start, m.end, m.value) for m in ReEngine().scan(text)]
    b = [(m.rule.id, m.start, m.end, m.value) for m in HyperscanEngine().scan(text)]
    assert a == b and len(a) > 1000
    fa = detect_text(text, "d", engine=ReEngine())
    fb = detect_text(text, "d", engine=HyperscanEngine())
    assert fa == fb


class _SparseHs(HyperscanEngine):
    """Never falls back: every chunk is confirmed line by line."""

    MAX_EVENTS = 10**9


class _DenseHs(HyperscanEngine):
    """Always falls back: every chunk with a candidate is confirmed chunk-wide."""

    MAX_EVENTS = 0


def _reference(text: str) -> set[tuple[str, int, int, str]]:
    """Each rule's own pattern on the whole text, no chunks, no prefilter."""
    eng = ReEngine()
    out = set()
    for rule, pat in zip(eng.rules, eng.compiled, strict=True):
        if rule.names_only:
            continue
        for m in pat.finditer(text):
            out.add((rule.id, m.start(), m.end(), m.group(rule.value_group or 0)))
    return out


def _hostile_corpus(seed: int) -> str:
    """Dense digit tables, non-ASCII lines, stamps at line starts, lines near the chunk size."""
    rnd = random.Random(seed)
    lines = []
    for _ in range(400):
        kind = rnd.randrange(6)
        if kind == 0:  # a table of numbers: many candidate ends in one chunk
            lines.append(";".join(str(rnd.randrange(10**8, 10**13)) for _ in range(30)))
        elif kind == 1:
            lines.append("Ủy ban nhân dân — SĐT 0912 345 678, CCCD 079203012345 — Độ mật: Mật")
        elif kind == 2:
            lines.append(
                rnd.choice(["MẬT", " [TỐI MẬT] ", "TUYỆT MẬT", "CONFIDENTIAL", "GIẢI MẬT"])
            )
        elif kind == 3:  # one line of about a chunk, the plant at its very end
            lines.append("ê" * rnd.randrange(7000, 8150) + " a.b@c.gov.vn")
        elif kind == 4:
            lines.append("token: ghp_" + "a1" * 18 + " password='Zx9!abcd' AKIAIOSFODNN7EXAMPLQ")
        else:  # empty, or undecodable bytes kept as lone surrogates (surrogateescape)
            lines.append("" if rnd.random() < 0.5 else "\udcff\udc80 SĐT 0912345678 ê")
    return "\n".join(lines)


@pytest.mark.skipif("hyperscan" not in available_engines(), reason="hyperscan not installed")
@pytest.mark.parametrize("seed", [4, 5])
def test_engines_agree_with_the_plain_patterns_on_hostile_text(seed: int) -> None:
    """Line-level confirmation, the dense-chunk fallback and `re` find exactly what each
    rule's pattern finds on the whole text (the corpus has no line longer than a chunk)."""
    text = _hostile_corpus(seed) + "\n" + _corpus(seed)
    results = {
        name: [(m.rule.id, m.start, m.end, m.value) for m in eng.scan(text)]
        for name, eng in (
            ("re", ReEngine()),
            ("hs", HyperscanEngine()),
            ("sparse", _SparseHs()),
            ("dense", _DenseHs()),
        )
    }
    assert results["hs"] == results["re"] == results["sparse"] == results["dense"]
    assert set(results["re"]) == _reference(text)
    assert len(results["re"]) > 2000
    assert detect_text(text, "d", engine=_SparseHs()) == detect_text(text, "d", engine=ReEngine())


@pytest.mark.skipif("hyperscan" not in available_engines(), reason="hyperscan not installed")
def test_one_hyperscan_engine_serves_several_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    eng, text = HyperscanEngine(), _corpus(6)
    want = eng.scan(text)
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda _: eng.scan(text), range(8)))
    assert all(g == want for g in got)


def test_chunking_loses_no_match() -> None:
    line = "SĐT 0912345678 và CCCD 079203012345\n"
    text = line * 5000  # about 190 kB: several chunks
    assert len(rules(text)) == 10000
