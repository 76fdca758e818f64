"""The export formats: CSV, JUnit XML, OCSF, DefectDojo and SARIF, each against what its
consumer requires, against golden files, and never carrying a secret.

Golden files (tests/golden/export-*) are the outputs for tests.report_samples.export_sample();
after an intended change regenerate them and review the diff:

    python -m tests.report_samples --write-golden
"""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import junitparser
import pytest

from reports.csv_report import CONTROL_COLUMNS, RESULT_COLUMNS, CsvReporter, neutralise
from reports.defectdojo_report import FINDING_KEYS, TOP_KEYS, DefectDojoReporter
from reports.junit_report import JunitReporter
from reports.ocsf_report import OcsfReporter
from reports.sarif_report import SarifReporter
from scanner.model import Status
from scanner.plugins import load_registry
from tests.report_samples import (
    CVE,
    EXPORT_FORMATS,
    FORMULA,
    PERSONAL,
    PERSONAL_MASKED,
    export_sample,
    golden_files,
    rescan,
)
from tests.sample_assessment import GOLDEN, SECRET, sample_assessment


@pytest.fixture(scope="module")
def doc() -> Any:
    return export_sample()


# -- golden files ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(golden_files()))
def test_golden(name: str) -> None:
    path = GOLDEN / name
    assert path.is_file(), "missing golden file: run python -m tests.report_samples --write-golden"
    assert path.read_bytes() == golden_files()[name].encode("utf-8"), (
        f"{name} differs from the renderer's output. If the change is intended, run "
        "python -m tests.report_samples --write-golden and review the diff."
    )


def test_every_export_is_registered_and_writes_its_files(tmp_path: Path, doc: Any) -> None:
    reg = load_registry()
    for fmt in EXPORT_FORMATS:
        reporter = reg.reporters[fmt]
        path = reporter.write(doc, tmp_path)
        assert path.is_file() and path.parent == tmp_path
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {
        "assessment.csv",
        "assessment-controls.csv",
        "assessment.junit.xml",
        "assessment.ocsf.jsonl",
        "assessment.defectdojo.json",
        "assessment.sarif",
        "plan.md",
    }


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_output_is_stable_and_order_free(fmt: str, doc: Any) -> None:
    reporter = load_registry().reporters[fmt]
    shuffled = doc.model_copy(update={"outcomes": list(reversed(doc.outcomes))})
    assert reporter.render(shuffled) == reporter.render(doc)


# -- secrets and personal values ---------------------------------------------------------------
def _planted(doc: Any) -> Any:
    """Raw secrets where the masking applies: secret-named keys, key=value text, URL userinfo."""
    first = doc.outcomes[0]
    planted = first.model_copy(
        update={
            "message": f"login with password={SECRET} worked",
            "evidence": {
                "token": SECRET,
                "nested": [{"api_key": SECRET}],
                "url": f"https://admin:{SECRET}@192.0.2.11/",
            },
        }
    )
    return doc.model_copy(update={"outcomes": [planted, *doc.outcomes[1:]]})


@pytest.mark.parametrize("fmt", [*EXPORT_FORMATS, "json", "html", "md"])
def test_no_raw_secret_or_personal_value_in_any_format(fmt: str, doc: Any) -> None:
    planted = _planted(doc)
    assert SECRET in planted.to_json() and PERSONAL_MASKED in planted.to_json()
    reporter = load_registry().reporters[fmt]
    files = getattr(reporter, "render_files", None)
    texts = list(files(planted).values()) if files else [reporter.render(planted)]
    for text in texts:
        assert SECRET not in text
        assert PERSONAL not in text
    if fmt not in ("plan", "sarif"):  # those show remediation and locations, not evidence
        assert any("****" in t for t in texts), "masked where it was, not dropped"


# -- CSV ---------------------------------------------------------------------------------------
def _rows(text: str) -> list[dict[str, str]]:
    assert text.startswith("\ufeff"), "UTF-8 BOM for spreadsheet programs"
    return list(csv.DictReader(io.StringIO(text[1:], newline="")))


def test_csv_columns_rows_and_round_trip(doc: Any) -> None:
    files = CsvReporter().render_files(doc)
    rows = _rows(files["assessment.csv"])
    assert list(rows[0]) == list(RESULT_COLUMNS)
    assert len(rows) == len(doc.outcomes)
    assert {r["fingerprint"] for r in rows} == {o.fingerprint for o in doc.outcomes}
    assert rows[0]["status"] == "fail" and rows[0]["severity"] == "critical"
    assert files["assessment.csv"].endswith("\r\n")  # RFC 4180 record terminator
    assert files["assessment.csv"].split("\r\n")[0].endswith(",references")
    multi = next(r for r in rows if r["check_id"] == "net.ftp.anonymous_write")
    assert multi["snippet"].count("\n") == 3  # multi-line cells survive quoted

    controls = _rows(files["assessment-controls.csv"])
    assert list(controls[0]) == list(CONTROL_COLUMNS)
    small = next(c for c in controls if c["control"] == "net.legacy.small_services")
    assert (small["status"], small["pass"], small["fail"]) == ("pass", "2", "0")
    ports = next(c for c in controls if c["control"] == "net.exposed.db_admin_ports")
    assert (ports["status"], ports["pass"], ports["fail"]) == ("fail", "1", "1")
    assert ports["failed_targets"] == "192.0.2.11"


@pytest.mark.parametrize(
    "value", ["=1+1", "+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", FORMULA, "=cmd|' /C calc'!A0"]
)
def test_csv_neutralises_formula_injection(value: str) -> None:
    cell = neutralise(value)
    assert cell == "'" + value
    for safe in ("192.0.2.10", "a=b", "x+1", "", "nginx/1.22.1"):
        assert neutralise(safe) == safe


def test_csv_hostile_banner_is_text_in_the_file(doc: Any) -> None:
    rows = _rows(CsvReporter().render(doc))
    banner = next(r for r in rows if r["check_id"] == "net.ssh.banner")
    assert banner["message"].startswith("'=HYPERLINK(")
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value


# -- JUnit -------------------------------------------------------------------------------------
def test_junit_parses_back_with_junitparser(tmp_path: Path, doc: Any) -> None:
    path = JunitReporter().write(doc, tmp_path)
    xml = junitparser.JUnitXml.fromfile(str(path))
    suites = list(xml)
    assert [s.name for s in suites] == ["demo"]
    cases = list(suites[0])
    assert len(cases) == len(doc.outcomes)
    by_status: dict[str, int] = {}
    for case in cases:
        kinds = {type(r).__name__ for r in case.result}
        key = next(iter(kinds)) if kinds else "passed"
        by_status[key] = by_status.get(key, 0) + 1
    expected = {s: sum(o.status is s for o in doc.outcomes) for s in Status}
    assert by_status["Failure"] == expected[Status.FAIL]
    assert by_status["Error"] == expected[Status.ERROR]
    assert by_status["Skipped"] == expected[Status.NOT_APPLICABLE] + expected[Status.NOT_ASSESSED]
    assert by_status["passed"] == expected[Status.PASS]
    assert suites[0].tests == len(cases) and suites[0].failures == expected[Status.FAIL]
    failure = next(c for c in cases if c.name.startswith("net.redis.no_auth @"))
    assert failure.classname == "net.redis.no_auth"
    assert failure.result[0].type == "critical"
    assert "Remediation:" in failure.result[0].text and "requirepass ****" in failure.result[0].text


def test_junit_survives_control_characters_in_banners() -> None:
    doc = sample_assessment()
    o = doc.outcomes[0].model_copy(
        update={"message": "bad \x00\x1b[31m\x07 bytes", "evidence": {"b": "\x0c\ud800"}}
    )
    text = JunitReporter().render(doc.model_copy(update={"outcomes": [o, *doc.outcomes[1:]]}))
    root = ET.fromstring(text.encode("utf-8"))  # well-formed XML 1.0
    assert root.tag == "testsuites"
    assert "bad \\x00\\x1b[31m\\x07 bytes" in text


# -- OCSF --------------------------------------------------------------------------------------
# Required attributes of OCSF 1.3.0, from the class and object definitions: base event ->
# finding -> compliance_finding / vulnerability_finding; metadata, product, finding_info,
# compliance, vulnerability and cve objects.
OCSF_REQUIRED = {
    "base": {"activity_id", "category_uid", "class_uid", "metadata", "severity_id", "time",
             "type_uid", "finding_info"},
    2003: {"compliance"},
    2002: {"vulnerabilities"},
    "metadata": {"product", "version"},
    "product": {"vendor_name"},
    "finding_info": {"uid"},
    "compliance": {"standards"},
    "cve": {"uid"},
    "remediation": {"desc"},
}  # fmt: skip


def _ocsf(doc: Any) -> list[dict[str, Any]]:
    text = OcsfReporter().render(doc)
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_ocsf_required_fields_per_class(doc: Any) -> None:
    events = _ocsf(doc)
    classes = {e["class_uid"] for e in events}
    assert classes == {2002, 2003}
    for e in events:
        missing = OCSF_REQUIRED["base"] - e.keys()
        assert not missing, (e["finding_info"]["uid"], missing)
        assert not OCSF_REQUIRED[e["class_uid"]] - e.keys()
        assert e["category_uid"] == 2
        assert e["type_uid"] == e["class_uid"] * 100 + e["activity_id"]
        assert e["severity_id"] in range(1, 6)
        assert isinstance(e["time"], int) and e["time"] > 1_700_000_000_000
        assert not OCSF_REQUIRED["metadata"] - e["metadata"].keys()
        assert e["metadata"]["version"].startswith("1.")
        assert not OCSF_REQUIRED["product"] - e["metadata"]["product"].keys()
        assert not OCSF_REQUIRED["finding_info"] - e["finding_info"].keys()
        if "remediation" in e:
            assert not OCSF_REQUIRED["remediation"] - e["remediation"].keys()
        if e["class_uid"] == 2003:
            comp = e["compliance"]
            assert not OCSF_REQUIRED["compliance"] - comp.keys() and comp["standards"]
            assert comp["status_id"] in (1, 2, 3)
        else:
            for v in e["vulnerabilities"]:
                # exactly one of cve / cwe / advisory per vulnerability
                assert len({"cve", "cwe", "advisory"} & v.keys()) == 1
                assert not OCSF_REQUIRED["cve"] - v["cve"].keys()


def test_ocsf_maps_results(doc: Any) -> None:
    events = {(e["finding_info"]["uid"]): e for e in _ocsf(doc)}
    by_fp = {o.fingerprint: o for o in doc.outcomes}
    assert {by_fp[fp].status for fp in events} == {
        Status.PASS,
        Status.FAIL,
        Status.ERROR,
        Status.NOT_ASSESSED,
    }, "not applicable outcomes are left out"
    vuln = [e for e in events.values() if e["class_uid"] == 2002]
    assert len(vuln) == 1 and vuln[0]["vulnerabilities"][0]["cve"]["uid"] == CVE
    for fp, e in events.items():
        o = by_fp[fp]
        if e["class_uid"] == 2003:
            expected = {Status.PASS: 1, Status.FAIL: 3}.get(o.status, 2)
            assert e["compliance"]["status_id"] == expected
    iso = next(e for e in events.values() if e["metadata"]["event_code"] == "net.redis.no_auth")
    assert "ISO/IEC 27001:2022" in iso["compliance"]["standards"]
    assert "iso27001:2022 A.8.5" in iso["compliance"]["requirements"]


# -- DefectDojo --------------------------------------------------------------------------------
def test_defectdojo_only_allowed_keys_and_required_ones(doc: Any) -> None:
    data = json.loads(DefectDojoReporter().render(doc))
    assert set(data) <= TOP_KEYS
    fails = [o for o in doc.outcomes if o.status is Status.FAIL]
    assert len(data["findings"]) == len(fails)
    for f in data["findings"]:
        assert set(f) <= FINDING_KEYS, set(f) - FINDING_KEYS
        assert {"title", "severity", "description"} <= set(f)
        assert f["severity"] in ("Critical", "High", "Medium", "Low", "Info")
        assert isinstance(f.get("cwe", 0), int)
    assert {f["unique_id_from_tool"] for f in data["findings"]} == {o.fingerprint for o in fails}
    ssh = next(f for f in data["findings"] if f["vuln_id_from_tool"] == "net.ssh.terrapin")
    assert ssh["vulnerability_ids"] == [CVE] and ssh["cwe"] == 354
    assert ssh["endpoints"] == [{"host": "192.0.2.10", "port": 22, "protocol": "ssh"}]
    pii = next(f for f in data["findings"] if f["vuln_id_from_tool"] == "data.pii.exposed")
    assert pii["file_path"] == "/srv/share/citizens 2026.xlsx"


def test_defectdojo_dedup_fields_stable_across_identical_scans(doc: Any) -> None:
    """Same findings, another scan id, other times and other evidence: the fields DefectDojo
    hashes (title, cwe, description, file path) and the unique id do not move."""
    later = doc.model_copy(
        update={
            "scan_id": "20270101T000000Z-ffffff",
            "started_at": doc.started_at.replace(year=2027),
            "finished_at": None,
            "outcomes": [
                o.model_copy(update={"evidence": {**o.evidence, "latency_ms": 17}})
                for o in doc.outcomes
            ],
        }
    )
    keys = ("title", "cwe", "description", "file_path", "unique_id_from_tool", "service")

    def hashed(d: Any) -> list[tuple[Any, ...]]:
        data = json.loads(DefectDojoReporter().render(d))
        return [tuple(f.get(k) for k in keys) for f in data["findings"]]

    assert hashed(later) == hashed(doc)


# -- SARIF -------------------------------------------------------------------------------------
# The properties SARIF 2.1.0 requires, the enumerations it fixes and the objects that accept no
# other properties, for the part of the format Assay writes (OASIS SARIF 2.1.0, sections 3.13
# sarifLog, 3.14 run, 3.18 tool, 3.19 toolComponent, 3.27 result, 3.11 message,
# 3.49 reportingDescriptor, 3.28 location, 3.29 physicalLocation, 3.4 artifactLocation).
_MESSAGE = {
    "type": "object",
    "anyOf": [{"required": ["text"]}, {"required": ["id"]}],
    "properties": {"text": {"type": "string"}, "markdown": {"type": "string"}},
}
_LEVEL = {"enum": ["none", "note", "warning", "error"]}
SARIF_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["version", "runs"],
    "additionalProperties": False,
    "properties": {
        "$schema": {"type": "string", "format": "uri"},
        "version": {"const": "2.1.0"},
        "runs": {"type": "array", "items": {"$ref": "#/$defs/run"}},
    },
    "$defs": {
        "run": {
            "type": "object",
            "required": ["tool"],
            "additionalProperties": False,
            "properties": {
                "tool": {
                    "type": "object",
                    "required": ["driver"],
                    "additionalProperties": False,
                    "properties": {"driver": {"$ref": "#/$defs/toolComponent"}},
                },
                "automationDetails": {"type": "object", "properties": {"id": {"type": "string"}}},
                "columnKind": {"enum": ["utf16CodeUnits", "unicodeCodePoints"]},
                "results": {"type": "array", "items": {"$ref": "#/$defs/result"}},
            },
        },
        "toolComponent": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "semanticVersion": {"type": "string"},
                "rules": {
                    "type": "array",
                    "uniqueItems": True,
                    "items": {"$ref": "#/$defs/reportingDescriptor"},
                },
            },
        },
        "reportingDescriptor": {
            "type": "object",
            "required": ["id"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "shortDescription": _MESSAGE,
                "fullDescription": _MESSAGE,
                "help": _MESSAGE,
                "defaultConfiguration": {
                    "type": "object",
                    "properties": {"level": _LEVEL},
                    "additionalProperties": False,
                },
                "properties": {"type": "object"},
            },
        },
        "result": {
            "type": "object",
            "required": ["message"],
            "additionalProperties": False,
            "properties": {
                "ruleId": {"type": "string"},
                "ruleIndex": {"type": "integer", "minimum": -1},
                "level": _LEVEL,
                "message": _MESSAGE,
                "locations": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "physicalLocation": {
                                "type": "object",
                                "required": ["artifactLocation"],
                                "properties": {
                                    "artifactLocation": {
                                        "type": "object",
                                        "required": ["uri"],
                                        "properties": {"uri": {"type": "string", "format": "uri"}},
                                    }
                                },
                            }
                        },
                    },
                },
                "partialFingerprints": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                },
                "properties": {"type": "object"},
            },
        },
    },
}


def test_sarif_validates_and_anchors_every_result(doc: Any) -> None:
    log = json.loads(SarifReporter().render(doc))
    validator = jsonschema.Draft202012Validator(
        SARIF_SCHEMA, format_checker=jsonschema.FormatChecker()
    )
    errors = sorted(validator.iter_errors(log), key=str)
    assert not errors, errors[0]
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    results = run["results"]
    uris = sorted(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results)
    assert uris == ["file:///srv/share/citizens%202026.xlsx", "http://192.0.2.11/"]
    for r in results:
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]
        assert len(r["partialFingerprints"]["assayFingerprint/v1"]) == 32
    assert len({r["id"] for r in rules}) == len(rules)
    # the schema has teeth: a result without message, or a wrong level, is refused
    bad = json.loads(json.dumps(log))
    del bad["runs"][0]["results"][0]["message"]
    assert not validator.is_valid(bad)
    bad = json.loads(json.dumps(log))
    bad["runs"][0]["results"][0]["level"] = "critical"
    assert not validator.is_valid(bad)


def test_sarif_leaves_out_findings_without_location() -> None:
    log = json.loads(SarifReporter().render(rescan()))
    checks = {r["ruleId"] for r in log["runs"][0]["results"]}
    assert "net.redis.dangerous_commands" not in checks and "net.ssh.terrapin" not in checks
