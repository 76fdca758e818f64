"""The remediation plan: findings grouped by the fix that resolves them, ordered by the risk
removed per effort, each step with its snippet, where it goes and how to verify it."""

from __future__ import annotations

from reports.html_report import HtmlReporter
from reports.markdown_report import MarkdownReporter
from reports.plan import SEVERITY_WEIGHT, PlanReporter, build_plan
from scanner.model import Remediation, ServiceInfo, Severity, Status, Target, TargetKind
from tests.report_samples import _with, export_sample
from tests.sample_assessment import UNIT, _outcome, _ref, sample_assessment

SSHD_LINES = {
    "net.ssh.weak_kex": "KexAlgorithms curve25519-sha256\n",
    "net.ssh.weak_ciphers": "Ciphers aes256-gcm@openssh.com\n",
    "net.ssh.weak_macs": "MACs hmac-sha2-256-etm@openssh.com\n",
    "net.ssh.root_login": "PermitRootLogin no\n",
    "net.ssh.password_auth": "PasswordAuthentication no\n",
}


def _ssh_doc() -> object:
    """Five SSH findings on three hosts, all fixed in sshd_config, and one FTP finding."""
    hosts = ["192.0.2.31", "192.0.2.32", "192.0.2.33"]
    outs = []
    checks = list(SSHD_LINES)
    for i, host in enumerate(hosts):
        t = Target(
            kind=TargetKind.SERVICE,
            unit=UNIT,
            address=host,
            port=22,
            service=ServiceInfo(name="ssh"),
        )
        for check in checks[i : i + 3] if i < 2 else checks[3:]:
            outs.append(
                _outcome(t, check, f"SSH check {check}", Status.FAIL, Severity.HIGH, "weak",
                         remediation=Remediation(text=f"Fix {check}.", snippet=SSHD_LINES[check],
                                                 snippet_lang="sshd_config"),
                         references=_ref("cwe CWE-327"))
            )  # fmt: skip
    doc = sample_assessment()
    ftp = next(o for o in doc.outcomes if o.check_id == "net.ftp.anonymous_write")
    return _with(doc, [*outs, ftp])


def test_one_sshd_config_change_fixes_findings_on_three_hosts() -> None:
    plan = build_plan(_ssh_doc())  # type: ignore[arg-type]
    ssh = next(s for s in plan.steps if s.snippet_lang == "sshd_config")
    assert len(ssh.findings) == 8 and ssh.hosts == ["192.0.2.31", "192.0.2.32", "192.0.2.33"]
    assert ssh.check_ids == sorted(SSHD_LINES)
    assert ssh.where == "/etc/ssh/sshd_config"
    for line in SSHD_LINES.values():
        assert ssh.snippet.count(line.strip()) == 1, "each line once, however many findings"
    assert ssh.risk == 8 * SEVERITY_WEIGHT[Severity.HIGH]
    assert ssh.effort == 1.0 + 0.5 * 2  # a config line, on two more hosts
    assert any("sshd -t" in v for v in ssh.verify)
    assert any("assay diff" in v for v in ssh.verify)
    assert plan.findings == 9 and len(plan.steps) == 2


def test_steps_are_ordered_by_risk_per_effort() -> None:
    plan = build_plan(export_sample())
    priorities = [s.priority for s in plan.steps]
    assert priorities == sorted(priorities, reverse=True)
    assert [s.number for s in plan.steps] == list(range(1, len(plan.steps) + 1))
    first = plan.steps[0]
    assert first.snippet_lang == "vsftpd.conf" and len(first.findings) == 3
    # every failed check is in exactly one step
    fails = sorted(o.fingerprint for o in export_sample().outcomes if o.status is Status.FAIL)
    assert sorted(f.fingerprint for s in plan.steps for f in s.findings) == fails


def test_control_weights_change_the_order() -> None:
    doc = export_sample()
    plain = build_plan(doc)
    top_manual = next(s for s in plain.steps if s.kind == "manual")
    assert top_manual.number > 1
    weighted = build_plan(doc, weights={"data.pii.exposed": 10.0})
    assert weighted.steps[0].check_ids == ["data.pii.exposed"]


def test_weights_of_the_scored_policy_are_used() -> None:
    from policies.result import CheckEvidence
    from reports.plan import policy_weights
    from tests.test_policies_report import _doc as scored_doc

    doc = export_sample()
    assert policy_weights(doc) == {}  # not scored: weight 1 everywhere
    scores = scored_doc().policies
    assert scores is not None
    control = scores.packs[0].units[0].controls[0]
    heavy = control.model_copy(
        update={"weight": 10.0, "checks": [CheckEvidence(id="data.pii.exposed", state="installed")]}
    )
    unit = scores.packs[0].units[0].model_copy(update={"controls": [heavy]})
    pack = scores.packs[0].model_copy(update={"units": [unit]})
    scored = doc.model_copy(update={"policies": scores.model_copy(update={"packs": [pack]})})
    assert policy_weights(scored) == {"data.pii.exposed": 10.0}
    # the policy's weight moves the step up exactly as an explicit weight does
    assert build_plan(scored).steps[0].check_ids == ["data.pii.exposed"]
    assert build_plan(doc).steps[0].check_ids != ["data.pii.exposed"]
    # an explicit mapping still wins (empty: every weight 1)
    assert build_plan(scored, weights={}).steps[0].check_ids != ["data.pii.exposed"]


def test_remediation_without_snippet_is_a_manual_step() -> None:
    plan = build_plan(export_sample())
    pii = next(s for s in plan.steps if "data.pii.exposed" in s.check_ids)
    assert pii.kind == "manual" and not pii.snippet and pii.effort == 3.0


def test_plan_in_reports_and_as_plan_md() -> None:
    doc = export_sample()
    html = HtmlReporter().render(doc)
    assert '<section id="plan">' in html and '<a href="#step-1">' in html
    assert 'href="#finding-' in html  # each fixed finding links to its entry
    md = MarkdownReporter().render(doc)
    assert "## Remediation plan" in md and "### Step 1: Change the vsftpd.conf configuration" in md
    plan_md = PlanReporter().render(doc)
    assert plan_md.startswith("# Remediation plan: 20261202T100000Z-4f1c2a\n")
    assert "## Step 1: Change the vsftpd.conf configuration" in plan_md
    assert "```vsftpd.conf\n" in plan_md


def test_nothing_failed_means_nothing_to_fix() -> None:
    doc = sample_assessment()
    passing = _with(doc, [o for o in doc.outcomes if o.status is Status.PASS])
    assert "Nothing to fix: no check failed." in PlanReporter().render(passing)
    assert build_plan(passing).steps == []
