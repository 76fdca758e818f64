"""Shared pieces of the web checks: the facts they read, references, and snippet helpers."""

from __future__ import annotations

from scanner.collectors.http import WebFacts, WebResponse
from scanner.model import Reference, Result, not_assessed
from scanner.plugins import FactsView

FACTS = "web.http"
ACTIVE = "web.active"

ISO_APPSEC = Reference(scheme="iso27001:2022", id="A.8.26")  # application security requirements
ISO_CONFIG = Reference(scheme="iso27001:2022", id="A.8.9")  # configuration management
ISO_CRYPTO = Reference(scheme="iso27001:2022", id="A.8.24")  # use of cryptography
ISO_LEAK = Reference(scheme="iso27001:2022", id="A.8.12")  # data leakage prevention
ISO_AUTH = Reference(scheme="iso27001:2022", id="A.8.5")  # secure authentication
CIS_APPSEC = Reference(scheme="cis-v8", id="16.1")
CIS_CONFIG = Reference(scheme="cis-v8", id="4.1")
CIS_TRANSIT = Reference(scheme="cis-v8", id="3.10")
BSI_WEBAPP = Reference(scheme="bsi", id="APP.3.1")  # web applications (module)
BSI_TLS = Reference(scheme="bsi", id="APP.3.2.A11")  # web server: encrypted connections
BSI_FILES = Reference(scheme="bsi", id="APP.3.2.A2")  # web server: no exposed files
BSI_INFO = Reference(scheme="bsi", id="APP.3.2.A12")  # web server: no product details
BSI_AUTH = Reference(scheme="bsi", id="APP.3.2.A5")  # web server: authentication
CIS_DATA = Reference(scheme="cis-v8", id="3.3")
CIS_DEFAULT_ACCOUNTS = Reference(scheme="cis-v8", id="4.7")


def web(facts: FactsView) -> WebFacts:
    return facts.get(FACTS, WebFacts)


def final_page(f: WebFacts) -> WebResponse | Result:
    """The page the walk ended on, or a not_assessed result saying why there is none."""
    if f.final is None:
        why = f.not_followed or "the last redirect target was not requested"
        return not_assessed(
            f"{f.start_url}: the final page was not fetched ({why})",
            redirect_chain=f.redirect_chain,
        )
    return f.final


def both(nginx: str, apache: str) -> str:
    """A remediation snippet with the nginx directives first and the Apache ones second."""
    return (
        "# nginx (server or location block)\n"
        + nginx.strip()
        + "\n\n# Apache httpd (VirtualHost, or .htaccess with AllowOverride)\n"
        + apache.strip()
        + "\n"
    )
