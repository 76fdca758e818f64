"""Comparing scans by fingerprint: new, fixed, still open, reopened and not re-assessed findings,
severity and score changes; as `assay diff OLD NEW` and as a section of every report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reports.diff import compare, score_delta, with_diff
from reports.html_report import HtmlReporter
from reports.markdown_report import MarkdownReporter
from scanner.model import Severity, Status
from tests.report_samples import (
    SECRET_IN_STORE,
    _reopened_doc,
    diff_golden,
    export_sample,
    older_scan,
    rescan,
    stored_scans,
)
from tests.sample_assessment import GOLDEN, sample_assessment


def assay(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ASSAY_DB=f"sqlite:///{db}", COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-c", "from scanner.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def _keys(entries: list) -> set[tuple[str, str]]:  # type: ignore[type-arg]
    return {(e.check_id, e.target_key) for e in entries}


def test_each_kind_of_change() -> None:
    d = compare(export_sample(), rescan(), [older_scan()])
    assert _keys(d.new) == {("net.ssh.weak_kex", "service:192.0.2.10:22/tcp")}
    assert _keys(d.fixed) == {
        ("net.ftp.anonymous_write", "service:192.0.2.10:21/tcp"),  # passes now
        ("net.telnet.present", "service:192.0.2.10:23/tcp"),  # service gone, host scanned
    }
    assert _keys(d.not_reassessed) == {("net.redis.no_auth", "service:192.0.2.11:6379/tcp")}
    assert d.not_reassessed[0].status is Status.ERROR
    assert not d.reopened
    assert len(d.still_open) == 8
    (sev,) = d.severity_changes
    assert (sev.check_id, sev.previous_severity, sev.severity) == (
        "net.http.cleartext",
        Severity.MEDIUM,
        Severity.HIGH,
    )
    # critical first in every list
    ranks = [e.severity.rank for e in d.still_open]
    assert ranks == sorted(ranks, reverse=True)
    assert d.counts() == {"new": 1, "reopened": 0, "still_open": 8, "fixed": 2, "not_reassessed": 1}


def test_reopened_needs_an_earlier_failure() -> None:
    later = _reopened_doc()
    with_history = compare(sample_assessment(), later, [older_scan()])
    assert _keys(with_history.reopened) == {
        ("net.legacy.small_services", "service:192.0.2.10:21/tcp"),
        ("net.legacy.small_services", "service:192.0.2.10:23/tcp"),
    }
    assert not with_history.new
    without = compare(sample_assessment(), later)
    assert not without.reopened and len(without.new) == 2


def test_a_host_not_scanned_is_never_fixed() -> None:
    """`--unit` or an unreachable host: its old findings have no verdict, they are not fixed."""
    before = sample_assessment()
    only_a = before.model_copy(
        update={"outcomes": [o for o in before.outcomes if o.target.address == "192.0.2.10"]}
    )
    d = compare(before, only_a)
    b_findings = {
        o.fingerprint
        for o in before.outcomes
        if o.status is Status.FAIL and o.target.address == "192.0.2.11"
    }
    assert {e.fingerprint for e in d.not_reassessed} == b_findings
    assert not d.fixed and not d.new


def test_identical_scans_have_no_change() -> None:
    d = compare(sample_assessment(), sample_assessment())
    assert not (d.new or d.fixed or d.reopened or d.not_reassessed or d.severity_changes)
    assert len(d.still_open) == 8
    assert all(score_delta(s.previous_pass_rate, s.pass_rate) == "no change" for s in d.scores)


def test_score_changes() -> None:
    d = compare(export_sample(), rescan())
    whole = d.scores[0]
    assert whole.unit == "" and whole.previous_pass_rate is not None
    assert score_delta(whole.previous_pass_rate, whole.pass_rate) == "+3.6 points"
    assert score_delta(None, 0.5) == "n/a" and score_delta(0.5, 0.25) == "-25.0 points"


@pytest.mark.parametrize("name", sorted(diff_golden()))
def test_golden(name: str) -> None:
    path = GOLDEN / name
    assert path.is_file(), "missing golden file: run python -m tests.report_samples --write-golden"
    assert path.read_text(encoding="utf-8") == diff_golden()[name]


@pytest.mark.parametrize("reporter", [HtmlReporter(), MarkdownReporter()], ids=lambda r: r.format)
def test_diff_section_in_reports(reporter: object) -> None:
    doc = with_diff(rescan(), export_sample(), [older_scan()])
    text = reporter.render(doc)  # type: ignore[attr-defined]
    assert "Changes since the previous scan" in text and "20261202T100000Z-4f1c2a" in text
    assert "the target is no longer found where the new scan looked" in text
    plain = reporter.render(rescan())  # type: ignore[attr-defined]
    assert "Changes since the previous scan" not in plain  # first scan: no section


def test_diff_travels_in_the_canonical_json() -> None:
    from reports.assessment import load
    from reports.json_report import JsonReporter

    doc = with_diff(rescan(), export_sample())
    back = load(JsonReporter().render(doc))
    assert back.diff is not None and back.diff.counts() == doc.diff.counts()  # type: ignore[union-attr]


# -- the command line --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    db = tmp_path_factory.mktemp("diffstore") / "assay.db"
    return db, stored_scans(f"sqlite:///{db}")


def test_cli_diff_of_stored_scans_uses_history(store: tuple[Path, list[str]]) -> None:
    db, (first, second, third) = store
    r = assay("diff", second, third, "--json", db=db)
    assert r.returncode == 3, r.stderr  # something got worse: usable as a gate
    d = json.loads(r.stdout)
    assert [e["check_id"] for e in d["reopened"]] == ["net.legacy.small_services"]
    assert [e["check_id"] for e in d["fixed"]] == ["net.telnet.present"]
    assert d["history_scans"] == [first]
    r = assay("diff", first, second, db=db)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 new, 0 reopened, 1 still open, 1 fixed" in r.stdout
    assert SECRET_IN_STORE not in r.stdout


def test_cli_diff_of_files(tmp_path: Path) -> None:
    from reports.json_report import JsonReporter

    old, new = tmp_path / "old", tmp_path / "new.json"
    old.mkdir()
    (old / "assessment.json").write_text(JsonReporter().render(export_sample()))
    new.write_text(JsonReporter().render(rescan()))
    r = assay("diff", str(old), str(new), db=tmp_path / "none.db")
    assert r.returncode == 3, r.stderr
    assert "1 new, 0 reopened, 8 still open, 2 fixed, 1 not re-assessed" in r.stdout
    assert "severity_changes high     (was medium) net.http.cleartext" in r.stdout


def test_cli_diff_bad_input_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text('{"schema_version": "1.0", "scan_id": 3')
    r = assay("diff", str(bad), str(bad), db=tmp_path / "a.db")
    assert r.returncode == 1
    assert r.stderr.startswith(f"assay: error: OLD {bad}: not an Assay assessment.json")
    assert len(r.stderr.strip().splitlines()) == 1
    r = assay("diff", "20990101", str(bad), db=tmp_path / "a.db")
    assert r.returncode == 1 and "OLD: scan '20990101' is not in the store" in r.stderr


def test_cli_report_carries_the_diff_with_the_previous_scan(
    store: tuple[Path, list[str]], tmp_path: Path
) -> None:
    db, (_first, second, third) = store
    r = assay("report", third[:12], "--format", "md,json", "--out", str(tmp_path), db=db)
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "assessment.json").read_text())
    assert doc["diff"]["previous_scan_id"] == second
    assert [e["check_id"] for e in doc["diff"]["reopened"]] == ["net.legacy.small_services"]
    md = (tmp_path / "assessment.md").read_text()
    assert "## Changes since the previous scan" in md and "### Reopened findings (1)" in md
    for p in tmp_path.iterdir():
        assert SECRET_IN_STORE not in p.read_text(encoding="utf-8"), p.name
