"""The built-in packs and the pack format: every pack validates against the installed checks and
against the published JSON Schema, and every mistake in a pack is refused with file, line and
name. `test_unregistered_checks_are_listed` prints the check ids the packs still mark as planned
(run with `-rP` to see them)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from policies._yaml import PolicyError
from policies.loader import Catalog, builtin_files, load_pack, parse_pack
from policies.model import json_schema
from policies.waivers import parse_waivers, validate_waivers
from scanner.plugins import load_registry

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "policies" / "schema" / "policy.schema.json"
BUILTIN = {
    "vn-security-levels",
    "vn-data-protection",
    "de-bsi-grundschutz",
    "iso27001-2022",
    "cis-baseline",
    "crypto-transport",
}
CHECKS = load_registry().checks


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.builtin()


def test_the_six_builtin_packs_exist(catalog: Catalog) -> None:
    assert set(catalog.packs) == BUILTIN
    assert len(builtin_files()) == 6


@pytest.mark.parametrize("pack_id", sorted(BUILTIN))
def test_builtin_pack_validates_against_installed_checks(catalog: Catalog, pack_id: str) -> None:
    lp = catalog.packs[pack_id]
    assert [str(p) for p in catalog.validate(lp, CHECKS)] == []
    resolved = catalog.resolve(pack_id)
    ids = [c.id for c in resolved.controls]
    assert len(ids) == len(set(ids))
    # every check a pack names is installed, or explicitly planned (then never passed)
    for c in lp.pack.controls:
        for ref in c.checks:
            assert ref.id in CHECKS or ref.planned, f"{pack_id} {c.id}: {ref.id}"


@pytest.mark.parametrize("path", builtin_files(), ids=lambda p: p.name)
def test_builtin_pack_validates_against_published_schema(path: Path) -> None:
    from ruamel.yaml import YAML

    data = YAML(typ="safe").load(path.read_text("utf-8"))
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.validate(json.loads(json.dumps(data, default=str)), schema)


def test_published_schema_is_current() -> None:
    published = json.loads(SCHEMA_FILE.read_text())
    assert published == json.loads(json.dumps(json_schema())), (
        "regenerate: python -m policies.model > policies/schema/policy.schema.json"
    )


def test_packs_say_how_well_identifiers_are_verified(catalog: Catalog) -> None:
    for lp in catalog.packs.values():
        fw = lp.pack.framework
        assert fw.notes, lp.pack.id
        # the pack-level mark is the weakest of its identifiers: never 'verified' over weaker ones
        marks = {r.verified.value for c in lp.pack.controls for r in c.requirements}
        if marks - {"verified"}:
            assert fw.verification.value != "verified", lp.pack.id
        for c in lp.pack.controls:
            assert c.requirements, f"{lp.pack.id} {c.id} names no requirement"


def test_vn_levels_and_legacy_column(catalog: Catalog) -> None:
    p = catalog.packs["vn-security-levels"].pack
    assert [lv.level for lv in p.levels] == [2, 3] and p.default_level == 2
    assert [m.id for m in p.mappings] == ["legacy"]
    own = [c for c in p.controls if c.checks]
    assert all("legacy" in c.mapping for c in own)
    rp = catalog.resolve("vn-security-levels")
    at2 = {c.id for c in rp.controls if c.applies_at(2)}
    at3 = {c.id for c in rp.controls if c.applies_at(3)}
    assert at2 < at3 and "VN-LOG-02" in at3 - at2
    assert any(c.startswith("crypto-transport/") for c in at2)


def test_state_secret_gate_cannot_be_waived(catalog: Catalog) -> None:
    gate = catalog.resolve("vn-data-protection").control("PD-SEC-01")
    assert gate is not None
    assert gate.obligation.value == "mandatory" and gate.control.severity is not None
    assert gate.control.severity.value == "critical" and gate.control.waivable is False
    assert [r.id for r in gate.checks] == ["data.marking.state_secret"]


def test_imports_carry_the_profile_parameters(catalog: Catalog) -> None:
    bsi = catalog.resolve("de-bsi-grundschutz").control("crypto-transport/HTTPS-01")
    vn = catalog.resolve("vn-security-levels").control("crypto-transport/HTTPS-01")
    assert bsi is not None and vn is not None
    assert bsi.checks[0].params == {"permanent_only": True}  # BSI profile
    assert vn.checks[0].params == {}  # Mozilla intermediate keeps the default
    assert bsi.level == 1 and bsi.section.startswith("CON.1")


def test_iso_pack_is_a_statement_of_applicability(catalog: Catalog) -> None:
    p = catalog.packs["iso27001-2022"].pack
    numbers = [c.id for c in p.controls]
    assert numbers == [f"A.8.{i}" for i in range(1, 35)]
    manual = [c for c in p.controls if not c.checks]
    assert manual and all(c.manual for c in manual)


def test_unregistered_checks_are_listed(
    catalog: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = []
    for pid, lp in sorted(catalog.packs.items()):
        missing = catalog.unregistered(lp, CHECKS)
        lines.append(f"{pid}: {len(missing)} planned check(s) not installed: {', '.join(missing)}")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert len(lines) == 6


# -- mistakes are refused with file, line and name --------------------------------------------
GOOD = """\
schema: assay-policy/1
id: my-pack
title: My pack
version: 1.0.0
framework: {name: Unit rules, edition: "2026", verification: unverified, notes: ours}
changelog: [{version: 1.0.0, date: 2026-12-01, changes: [first]}]
controls:
  - id: M-1
    title: No telnet
    checks:
      - net.telnet.present
      - {id: net.http.cleartext, params: {permanent_only: true}}
"""


def _problems(text: str) -> list[str]:
    cat = Catalog.builtin()
    lp = parse_pack(text, "my.yaml")
    cat.add(lp)
    return [str(p) for p in cat.validate(lp, CHECKS)]


def test_good_custom_pack() -> None:
    assert _problems(GOOD) == []


def test_unknown_check_is_refused_with_line_and_name() -> None:
    text = GOOD.replace("net.telnet.present", "net.telnet.presnt")
    assert _problems(text) == [
        "my.yaml:11 controls[0].checks[0]: unknown check 'net.telnet.presnt': it is not "
        "installed (mark it 'planned: true' if it is still being written)"
    ]
    planned = GOOD.replace("- net.telnet.present", "- {id: net.telnet.presnt, planned: true}")
    assert _problems(planned) == []


def test_unknown_parameter_and_bad_value_are_refused() -> None:
    text = GOOD.replace("permanent_only: true", "permanent: true")
    (msg,) = _problems(text)
    assert msg.startswith("my.yaml:12 controls[0].checks[1].params: check 'net.http.cleartext'")
    assert "has no parameter 'permanent' (known: permanent_only)" in msg
    text = GOOD.replace("permanent_only: true", "permanent_only: [1]")
    (msg,) = _problems(text)
    assert "parameter permanent_only:" in msg and msg.startswith("my.yaml:12")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("id: my-pack", "id: My Pack"), "my.yaml:2 id: 'My Pack' is not a pack id"),
        (
            ("title: No telnet\n", "title: No telnet\n    wieght: 2\n"),
            "my.yaml:10 controls[0].wieght: unknown key",
        ),
        (("schema: assay-policy/1", "schema: assay-policy/9"), "my.yaml:1 schema:"),
        (("    checks:\n", "    weight: 0\n    checks:\n"), "my.yaml:10 controls[0].weight:"),
        (("version: 1.0.0\nframework", "version: 1.1.0\nframework"), "the first changelog entry"),
        (
            ("    title: No telnet\n", "    title: No telnet\n    level: 3\n"),
            "level 3 is not declared by the pack",
        ),
        (
            (
                "      - net.telnet.present\n",
                "      - net.telnet.present\n      - net.telnet.present\n",
            ),
            "named twice",
        ),
    ],
)
def test_shape_errors_name_file_line_and_field(change: tuple[str, str], expected: str) -> None:
    with pytest.raises(PolicyError) as exc:
        parse_pack(GOOD.replace(*change), "my.yaml")
    assert expected in str(exc.value)


def test_duplicate_control_and_undeclared_mapping_column() -> None:
    dup = GOOD + "  - id: M-1\n    title: Again\n    manual: attest\n"
    with pytest.raises(PolicyError, match=r"my.yaml:13 controls\[1\].id: control id 'M-1' repeats"):
        parse_pack(dup, "my.yaml")
    col = GOOD.replace("    title: No telnet\n", "    title: No telnet\n    mapping: {old: [x]}\n")
    with pytest.raises(PolicyError, match="mapping column 'old' is not declared"):
        parse_pack(col, "my.yaml")


def test_bad_import_and_profile() -> None:
    text = GOOD + "imports:\n  - {pack: crypto-transprt}\n"
    (msg,) = _problems(text)
    assert msg.startswith("my.yaml:14 imports[0].pack: cannot import pack 'crypto-transprt'")
    text = GOOD + "imports:\n  - {pack: crypto-transport, profile: mozilla-old}\n"
    (msg,) = _problems(text)
    assert "has no profile 'mozilla-old' (known: mozilla-intermediate" in msg


def test_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"my.yaml:3: not valid YAML"):
        parse_pack("id: x\ntitle: [unclosed\nversion: 1\n", "my.yaml")
    with pytest.raises(PolicyError, match="a policy pack must be a YAML mapping"):
        parse_pack("- just a list\n", "my.yaml")
    with pytest.raises(PolicyError, match="file not found"):
        load_pack(tmp_path / "nope.yaml")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"id: caf\xe9\n")
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_pack(bad)


def test_custom_pack_cannot_shadow_another_file(tmp_path: Path) -> None:
    cat = Catalog.builtin()
    lp = parse_pack(GOOD, "a.yaml")
    cat.add(lp)
    with pytest.raises(PolicyError, match=r"pack id 'my-pack' is already defined by a\.yaml"):
        cat.add(parse_pack(GOOD, "b.yaml"))


# -- waiver files -----------------------------------------------------------------------------
WAIVERS = """\
version: 1
waivers:
  - id: W1
    check: net.ftp.banner_version
    target: "*"
    reason: banner kept for the vendor's support
    approved_by: CISO
    expires: 2027-03-31
  - control: vn-data-protection/PD-ACC-01
    reason: read-only mirror of public data
    approved_by: CISO
    expires: 2027-03-31
"""


def _waiver_problems(text: str) -> list[str]:
    cat = Catalog.builtin()
    checks = set(CHECKS) | {
        r.id for lp in cat.packs.values() for c in lp.pack.controls for r in c.checks
    }
    controls = {pid: [c.id for c in cat.resolve(pid).controls] for pid in cat.packs}
    return [str(p) for p in validate_waivers(parse_waivers(text, "w.yaml"), checks, controls)]


def test_waiver_file_validates() -> None:
    assert _waiver_problems(WAIVERS) == []


def test_waiver_mistakes_name_file_and_line() -> None:
    assert _waiver_problems(WAIVERS.replace("banner_version", "banner_versio")) == [
        "w.yaml:4 waivers[0].check: unknown check 'net.ftp.banner_versio' (neither installed "
        "nor named by a pack)"
    ]
    assert _waiver_problems(WAIVERS.replace("PD-ACC-01", "PD-ACC-99")) == [
        "w.yaml:9 waivers[1].control: pack 'vn-data-protection' has no control 'PD-ACC-99'"
    ]
    with pytest.raises(PolicyError, match=r"w.yaml:8 waivers\[0\].expires:"):
        parse_waivers(WAIVERS.replace("2027-03-31", "soon", 1), "w.yaml")
    with pytest.raises(PolicyError, match=r"w.yaml:3 waivers\[0\]: give exactly one of"):
        parse_waivers(WAIVERS.replace("    target:", "    control: a/b\n    target:", 1), "w.yaml")
    with pytest.raises(PolicyError, match=r"w.yaml:6 waivers\[0\].reason"):
        parse_waivers(WAIVERS.replace("banner kept for the vendor's support", "ok"), "w.yaml")


def test_the_guide_examples_are_valid() -> None:
    text = (ROOT / "docs" / "writing-a-policy.md").read_text()
    blocks = text.split("```yaml\n")[1:]
    pack, waivers = (b.split("```", 1)[0] for b in blocks[:2])
    cat = Catalog.builtin()
    lp = parse_pack(pack, "guide.yaml")
    cat.add(lp)
    assert [str(p) for p in cat.validate(lp, CHECKS)] == []
    assert len(cat.resolve("unit-rules").controls) > 2
    assert _waiver_problems(waivers) == []
