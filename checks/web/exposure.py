"""What a site gives away: product versions, directory listings and well-known sensitive files.

The collector only marks a probed path as found when its content matches what the path is
known to hold (a git HEAD, KEY=value lines, an SQL dump, a status page), so a site that answers
200 with its home page for every path does not produce findings. Contents are classified in
the collector; only masked findings reach these checks.
"""

from __future__ import annotations

import re
from typing import Any

from checks.web.common import (
    BSI_FILES,
    BSI_INFO,
    CIS_CONFIG,
    CIS_DATA,
    FACTS,
    ISO_CONFIG,
    ISO_LEAK,
    both,
    web,
)
from scanner.collectors.http import BACKUP_NAME, PathProbe, WebFacts
from scanner.model import (
    Reference,
    Remediation,
    Result,
    Severity,
    TargetKind,
    failed,
    passed,
)
from scanner.plugins import Check, CheckMeta, FactsView, NoParams

_VERSION = re.compile(r"\d+(?:\.\d+)+|/\d+")
_DISCLOSING = (
    "server",
    "x-powered-by",
    "x-aspnet-version",
    "x-aspnetmvc-version",
    "x-generator",
    "x-drupal-cache",
    "x-runtime",
)
_DENY_DOTFILES = both(
    "location ~ /\\.(?!well-known/) { deny all; return 404; }\n"
    "location ~* \\.(sql|bak|old|orig|zip|tar|tgz|gz|7z|rar|dump)$ { deny all; return 404; }",
    '<LocationMatch "/\\.(?!well-known/)">\n    Require all denied\n</LocationMatch>\n'
    '<FilesMatch "\\.(sql|bak|old|orig|zip|tar|tgz|gz|7z|rar|dump)$">\n'
    "    Require all denied\n</FilesMatch>",
)


def _found(f: WebFacts, *purposes: str) -> list[PathProbe]:
    return [p for p in f.probes if p.found and p.purpose in purposes]


def _asked(f: WebFacts, *purposes: str) -> list[str]:
    return [p.path for p in f.probes if p.purpose in purposes]


def _findings(probes: list[PathProbe]) -> list[dict[str, Any]]:
    return [
        {"path": p.path, **x.model_dump(exclude_defaults=True)} for p in probes for x in p.findings
    ]


class VersionDisclosure(Check):
    meta = CheckMeta(
        id="web.disclosure.version",
        title="Server and framework versions are not disclosed in headers",
        target_kind=TargetKind.WEB,
        facts=(FACTS,),
        severity=Severity.LOW,
        rationale=(
            "A Server or X-Powered-By header with an exact version tells every visitor which "
            "published vulnerabilities apply, and lets automated attacks pick targets "
            "without probing."
        ),
        remediation=Remediation(
            text="Stop sending product versions (and X-Powered-By headers of the framework).",
            snippet=both(
                "server_tokens off;\nproxy_hide_header X-Powered-By;\n"
                "fastcgi_hide_header X-Powered-By;",
                "ServerTokens Prod\nServerSignature Off\nHeader always unset X-Powered-By\n"
                "# php.ini: expose_php = Off",
            ),
            snippet_lang="nginx",
        ),
        references=(Reference(scheme="cwe", id="CWE-497"), ISO_CONFIG, CIS_CONFIG, BSI_INFO),
        tags=("web", "disclosure"),
    )

    def evaluate(self, facts: FactsView, params: NoParams) -> Result:
        f = web(facts)
        shown: dict[str, str] = {}
        for resp in f.responses():
            for name in _DISCLOSING:
                value = resp.header(name)
                if value and name not in shown and (name != "server" or _VERSION.search(value)):
                    shown[name] = value
        if shown:
            listed = ", ".join(f"{k}: {v}" for k, v in shown.items())
            return failed(f"{f.start_url} discloses versions ({listed})", headers=shown)
        server = f.hops[0].header("server") or None
        return passed(f"{f.start_url} discloses no versions", server=server)


class Listing(Check):
    meta = CheckMeta(
        id="web.listing",
        title="No directory listings",
        target_kind=TargetKind.WEB,
        facts=(FACTS,),
        severity=Severity.MEDIUM,
        rationale=(
            "A directory listing shows every file of a folder, including the ones nobody "
            "linked to: backups, exports, old versions, documents meant for a few people."
        ),
        remediation=Remediation(
            text="Turn automatic directory indexes off.",
            snippet=both("autoindex off;", "Options -Indexes"),
            snippet_lang="nginx",
        ),
        references=(Reference(scheme="cwe", id="CWE-548"), ISO_LEAK, CIS_DATA, BSI_FILES),
        tags=("web", "disclosure", "exposed-content"),
    )

    def evaluate(self, facts: FactsView, params: NoParams) -> list[Result]:
        f = web(facts)
        dirs = [(r.url, r.listing_entries) for r in f.responses() if r.listing]
        dirs += [(p.url, p.listing_entries) for p in _found(f, "listing")]
        if not dirs:
            return [
                passed(
                    f"{f.start_url}: no directory listing on the pages and paths asked",
                    asked=_asked(f, "listing"),
                )
            ]
        return [
            failed(
                f"{url} is a directory listing ({len(entries)} entries)",
                url,
                url=url,
                entries=entries[:20],
            )
            for url, entries in dirs
        ]


class ExposedEnv(Check):
    meta = CheckMeta(
        id="web.exposed.env",
        title="No environment file (/.env) is served",
        target_kind=TargetKind.WEB,
        facts=(FACTS,),
        severity=Severity.HIGH,
        rationale=(
            "Application .env files hold database passwords, API keys and signing secrets; "
            "one served by the web server hands over the application and everything it can "
            "reach. Automated scanners request /.env on every site they find."
        ),
        remediation=Remediation(
            text="Keep .env and other dotfiles outside the document root, deny dotfiles in "
            "the web server, then rotate every secret the file held.",
            snippet=_DENY_DOTFILES,
            snippet_lang="nginx",
        ),
        references=(Reference(scheme="cwe", id="CWE-538"), ISO_LEAK, CIS_DATA, BSI_FILES),
        tags=("web", "exposed-content", "secrets"),
    )

    def evaluate(self, facts: FactsView, params: NoParams) -> Result:
        f = web(facts)
        hits = _found(f, "env")
        if not hits:
            return passed(f"{f.start_url}: /.env is not served", asked=_asked(f, "env"))
        secrets = [x for p in hits for x in p.findings if x.category == "secret"]
        sev = Severity.CRITICAL if secrets else None
        keys = sorted({x.key for x in secrets if x.key})
        what = f" with {len(secrets)} kinds of secrets ({', '.join(keys)})" if secrets else ""
        return failed(
            f"{hits[0].url} serves an environment file{what}",
            severity=sev,
            url=hits[0].url,
            findings=_findings(hits),
        )


class ExposedGit(Check):
    meta = CheckMeta(
        id="web.exposed.git",
        title="No git repository (/.git/) is served",
        target_kind=TargetKind.WEB,
        facts=(FACTS,),
        severity=Severity.HIGH,
        rationale=(
            "A served .git directory lets anyone download the complete source history, "
            "including configuration and secrets committed at any time; credentials in a "
            "remote URL of .git/config give write access to the repository itself."
        ),
        remediation=Remediation(
            text="Deploy without the .git directory (or deny dotfiles), then rotate any "
            "credentials the repository or its remote URLs contained.",
            snippet=_DENY_DOTFILES,
            snippet_lang="nginx",
        ),
        references=(Reference(scheme="cwe", id="CWE-527"), ISO_LEAK, CIS_DATA, BSI_FILES),
        tags=("web", "exposed-content", "secrets"),
    )

    def evaluate(self, facts: FactsView, params: NoParams) -> Result:
        f = web(facts)
        head = _found(f, "git_head")
        if not head:
            return passed(f"{f.start_url}: /.git/ is not served", asked=_asked(f, "git_head"))
        config = _found(f, "git_config")
        remotes = [r for p in config for r in p.git_remotes]
        creds = any(p.git_remote_credentials for p in config)
        extra = "; .git/config holds credentials in a remote URL" if creds else ""
        return failed(
            f"{head[0].url} exposes a git repository{extra}",
            severity=Severity.CRITICAL if creds else None,
            url=head[0].url,
            remotes=remotes,
            remote_credentials=creds,
            findings=_findings(config),
        )


class ExposedBackup(Check):
    meta = CheckMeta(
        id="web.exposed.backup",
        title="No backups, dumps or archives are downloadable",
        target_kind=TargetKind.WEB,
        facts=(FACTS,),
        severity=Severity.HIGH,
        rationale=(
            "Database dumps and site archives left in the document root contain the whole "
            "database (often personal data of citizens) or the application's source and "
            "configuration; they are found by guessing common names or from a listing."
        ),
        remediation=Remediation(
            text="Move backups out of the web root to protected storage, deny archive and "
            "dump extensions in the web server, and treat the data in them as disclosed.",
            snippet=_DENY_DOTFILES,
            snippet_lang="nginx",
        ),
        references=(Reference(scheme="cwe", id="CWE-530"), ISO_LEAK, CIS_DATA, BSI_FILES),
        tags=("web", "exposed-content", "personal-data"),
    )

    def evaluate(self, facts: FactsView, params: NoParams) -> list[Result]:
        f = web(facts)
        hits = _found(f, "backup")
        listed: list[str] = []
        for url, entries in [(r.url, r.listing_entries) for r in f.responses() if r.listing] + [
            (p.url, p.listing_entries) for p in _found(f, "listing")
        ]:
            listed += [url.rstrip("/") + "/" + e for e in entries if BACKUP_NAME.search(e)]
        if not hits and not listed:
            return [passed(f"{f.start_url}: no backups found", asked=_asked(f, "backup"))]
        out = []
        for p in hits:
            personal = [x for x in p.findings if x.category == "personal_data"]
            secret = [x for x in p.findings if x.category == "secret"]
            sev = Severity.CRITICAL if personal or secret else None
            what = ", ".join(sorted({x.kind for x in p.findings})) or "content not classified"
            out.append(
                failed(
                    f"{p.url} is downloadable ({p.signature}; {what})",
                    p.path,
                    severity=sev,
                    url=p.url,
                    signature=p.signature,
                    findings=_findings([p]),
                )
            )
        fetched = {p.url for p in hits}
        for url in listed:
            if url not in fetched:
                out.append(failed(f"{url} is listed in a directory index", url, url=url))
        return out


class ExposedStatus(Check):
    meta = CheckMeta(
        id="web.exposed.status",
        title="No server status pages are public",
        target_kind=TargetKind.WEB,
        facts=(FACTS,),
        severity=Severity.MEDIUM,
        rationale=(
            "Status pages (Apache server-status and server-info, nginx stub_status, PHP-FPM "
            "status) show internal addresses, every URL being requested (with its query "
            "strings and tokens), client addresses and module configuration."
        ),
        remediation=Remediation(
            text="Restrict status pages to the monitoring host or localhost.",
            snippet=both(
                "location = /nginx_status {\n    stub_status;\n    allow 127.0.0.1;\n"
                "    deny all;\n}",
                "<Location /server-status>\n    SetHandler server-status\n"
                "    Require local\n</Location>",
            ),
            snippet_lang="nginx",
        ),
        references=(Reference(scheme="cwe", id="CWE-200"), ISO_CONFIG, CIS_CONFIG, BSI_INFO),
        tags=("web", "exposed-content", "disclosure"),
    )

    def evaluate(self, facts: FactsView, params: NoParams) -> list[Result]:
        f = web(facts)
        hits = _found(f, "status")
        if not hits:
            return [passed(f"{f.start_url}: no status page found", asked=_asked(f, "status"))]
        return [
            failed(f"{p.url} is a public {p.signature} page", p.path, url=p.url, kind=p.signature)
            for p in hits
        ]
