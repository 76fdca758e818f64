"""The remediation plan: failed checks grouped by the fix that resolves them, best value first.

Grouping. One change often resolves several findings: every finding whose snippet goes into
the same configuration file (`sshd_config`, nginx, `redis.conf`, ...) is one step ("edit
sshd_config on these three hosts"), with the snippets of all its checks merged; a shell command
is one step per distinct command; a remediation without a snippet is one step per text.

Ordering. Each step is ranked by the risk it removes per unit of effort:

    risk   = sum over its findings of severity weight x control weight
             (one finding per affected asset, so this is severity x assets x weight)
    effort = base effort of the kind of change + 0.5 for every further host
    priority = risk / effort

Severity weights: critical 10, high 7, medium 4, low 2, info 0.5 (the middle of the CVSS bands).
Control weights come from the policy (1 when no policy weighs the check). Base effort: 1 for a
line in a configuration file, 2 for a command, 3 for a change described only in words. Ties are
broken by the number of findings, then the step's key, so the order is stable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from reports.assessment import Assessment, OutcomeDoc
from reports.i18n import N_, gettext, translate_outcome
from scanner.model import Severity, Status
from scanner.plugins import Reporter

SEVERITY_WEIGHT = {
    Severity.CRITICAL: 10.0,
    Severity.HIGH: 7.0,
    Severity.MEDIUM: 4.0,
    Severity.LOW: 2.0,
    Severity.INFO: 0.5,
}
BASE_EFFORT = {"config": 1.0, "command": 2.0, "manual": 3.0}
EXTRA_HOST_EFFORT = 0.5
# snippet language -> (where the lines go, how to check the file before reloading)
CONFIG_FILES: dict[str, tuple[str, str]] = {
    "sshd_config": ("/etc/ssh/sshd_config", "sshd -t && systemctl reload ssh"),
    "nginx": (
        N_("the nginx server block (/etc/nginx/sites-enabled/)"),
        "nginx -t && nginx -s reload",
    ),
    "redis.conf": ("/etc/redis/redis.conf", "systemctl restart redis-server"),
    "vsftpd.conf": ("/etc/vsftpd.conf", "systemctl restart vsftpd"),
    "sysctl": ("/etc/sysctl.d/90-assay.conf", "sysctl --system"),
    "apache": (N_("the Apache virtual host (/etc/apache2/sites-enabled/)"), "apachectl configtest"),
    "smb.conf": ("/etc/samba/smb.conf", "testparm -s && smbcontrol all reload-config"),
    "postgresql.conf": ("postgresql.conf", "SELECT pg_reload_conf();"),
    "my.cnf": ("/etc/mysql/my.cnf", "systemctl restart mysql"),
}


@dataclass(frozen=True)
class PlanFinding:
    fingerprint: str
    check_id: str
    title: str
    severity: Severity
    target: str
    host: str
    unit: str


@dataclass
class PlanStep:
    key: str
    kind: str  # "config", "command" or "manual"
    title: str
    where: str
    snippet_lang: str
    snippet: str
    texts: list[str]
    findings: list[PlanFinding] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    risk: float = 0.0
    effort: float = 0.0
    verify: list[str] = field(default_factory=list)
    number: int = 0

    @property
    def priority(self) -> float:
        return round(self.risk / self.effort, 2) if self.effort else 0.0

    @property
    def check_ids(self) -> list[str]:
        return sorted({f.check_id for f in self.findings})


@dataclass
class Plan:
    scan_id: str
    steps: list[PlanStep]
    formula: str = (
        "priority = risk / effort; risk = sum of severity weight x control weight over the "
        "findings a step fixes; effort = base effort (config line 1, command 2, manual 3) "
        "+ 0.5 per further host"
    )

    @property
    def findings(self) -> int:
        return sum(len(s.findings) for s in self.steps)


def _host(o: OutcomeDoc) -> str:
    t = o.target
    return t.address or t.url or t.path or t.label


def _key(o: OutcomeDoc) -> tuple[str, str]:
    r = o.remediation
    if r is None:
        return "manual", f"manual:{o.check_id}"
    if r.snippet and r.snippet_lang in CONFIG_FILES:
        return "config", f"config:{r.snippet_lang}"
    if r.snippet:
        return "command", f"command:{r.snippet_lang}:{r.snippet.strip()}"
    return "manual", f"manual:{r.text.strip()}"


def _new_step(kind: str, key: str, o: OutcomeDoc) -> PlanStep:
    r = o.remediation
    lang = r.snippet_lang if r else ""
    if kind == "config":
        title = gettext("Change the {file} configuration").format(file=lang)
        where = gettext(CONFIG_FILES[lang][0])  # a path is its own translation
    elif kind == "command":
        title = r.text if r else o.title
        where = gettext("run on each host listed")
    else:
        title = r.text if r else o.title
        where = gettext("on each target listed")
    return PlanStep(key, kind, title, where, lang, "", [])


def policy_weights(doc: Assessment) -> dict[str, float]:
    """Check id -> the largest weight of a control it evidences in the document's policy
    scores (a check that evidences a weight-3 gate matters as much as that gate)."""
    out: dict[str, float] = {}
    if doc.policies is None:
        return out
    for pack in doc.policies.packs:
        for unit in pack.units:
            for control in unit.controls:
                for check in control.checks:
                    out[check.id] = max(out.get(check.id, 0.0), control.weight)
    return out


def build_plan(doc: Assessment, weights: Mapping[str, float] | None = None) -> Plan:
    """The plan for the failed checks of `doc` (already masked or not: nothing secret is used,
    only titles, remediation and target names). Control weights come from `weights`, else
    from the policies the document was scored with, else 1."""
    weights = policy_weights(doc) if weights is None else weights
    steps: dict[str, PlanStep] = {}
    snippets: dict[str, list[str]] = {}
    fails = sorted(
        (translate_outcome(o) for o in doc.outcomes if o.status is Status.FAIL),
        key=lambda o: (-o.severity.rank, o.check_id, o.target.key, o.detail),
    )
    for o in fails:
        kind, key = _key(o)
        step = steps.get(key) or steps.setdefault(key, _new_step(kind, key, o))
        host = _host(o)
        step.findings.append(
            PlanFinding(
                o.fingerprint, o.check_id, o.title, o.severity, o.target.label, host, o.unit
            )
        )
        if host not in step.hosts:
            step.hosts.append(host)
        step.risk += SEVERITY_WEIGHT[o.severity] * weights.get(o.check_id, 1.0)
        r = o.remediation
        if r and r.text not in step.texts:
            step.texts.append(r.text)
        if r and r.snippet and r.snippet.strip() not in snippets.setdefault(key, []):
            snippets[key].append(r.snippet.strip())
    for key, step in steps.items():
        step.snippet = "\n\n".join(snippets.get(key, [])) + ("\n" if snippets.get(key) else "")
        step.hosts.sort()
        step.risk = round(step.risk, 2)
        step.effort = BASE_EFFORT[step.kind] + EXTRA_HOST_EFFORT * (len(step.hosts) - 1)
        step.verify = _verify(step, doc.scan_id)
    ordered = sorted(steps.values(), key=lambda s: (-s.priority, -len(s.findings), s.key))
    for i, step in enumerate(ordered, 1):
        step.number = i
    return Plan(doc.scan_id, ordered)


def _verify(step: PlanStep, scan_id: str) -> list[str]:
    out = []
    if step.kind == "config":
        command = CONFIG_FILES[step.snippet_lang][1]
        out.append(
            gettext("Check the file and reload the service: {command}").format(command=command)
        )
    units = " ".join(f"--unit {u}" for u in sorted({f.unit for f in step.findings}))
    out.append(gettext("Scan again: assay scan INVENTORY {units}").format(units=units))
    out.append(gettext("Compare: assay diff {scan} NEW_SCAN_ID").format(scan=scan_id))
    out.append(
        gettext("The step is done when its {n} finding(s) are listed as fixed").format(
            n=len(step.findings)
        )
    )
    return out


# -- plan.md -----------------------------------------------------------------------------------
def _markdown_env() -> Environment:
    from reports.markdown_report import Block, inline

    env = Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=False,
        finalize=inline,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["formatted"] = Block
    return env


def plan_context(doc: Assessment) -> dict[str, Any]:
    from reports._common import label, masked
    from reports.markdown_report import fence

    doc = masked(doc)
    return {"doc": doc, "plan": build_plan(doc), "fence": fence, "_": gettext, "label": label}


class PlanReporter(Reporter):
    """plan.md: the remediation plan alone, for the IT officer who applies it."""

    format = "plan"
    extension = "md"

    def render(self, assessment: Assessment) -> str:
        from reports.markdown_report import squeeze_blank_lines

        text = _markdown_env().get_template("plan.md.j2").render(**plan_context(assessment))
        return squeeze_blank_lines(text)

    def write(self, assessment: Assessment, out_dir: Path) -> Path:
        path = out_dir / "plan.md"
        path.write_text(self.render(assessment), encoding="utf-8")
        return path
