"""Parsers for what a web server sends: Set-Cookie, HTML forms and scripts, directory listings.

Everything here reads hostile input, so every parser works on an already bounded text, every
loop over matches is capped, and nothing raises on malformed markup: a parser that cannot make
sense of its input returns less, never an exception. The HTML parsing is a small regex scanner
rather than a DOM on purpose: the collector only needs tag attributes, it must not build trees
out of a megabyte of attacker markup, and regexes over a bounded text cost a bounded time.
"""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import unquote, urljoin, urlsplit

from pydantic import BaseModel, Field

MAX_FORMS = 16
MAX_INPUTS = 64
MAX_SCRIPTS = 64
MAX_LINKS = 500
MAX_ATTR = 256

# names that mark a session cookie (the Observatory's own rule: "sess" or "login" in the name)
# plus the common framework names that contain neither
_SESSION_NAMES = re.compile(
    r"sess|login|^sid$|^jsessionid$|^asp\.net_sessionid$|^connect\.sid$|auth|token",
    re.IGNORECASE,
)
_CSRF_NAMES = re.compile(
    r"csrf|xsrf|authenticity_token|__requestverificationtoken|nonce", re.IGNORECASE
)

_TAG = re.compile(
    r"<(?P<name>form|input|script|/form|button|textarea|select)\b(?P<attrs>[^>]{0,4096})>",
    re.IGNORECASE,
)
_ATTR = re.compile(r"""([A-Za-z_:][-A-Za-z0-9_:.]*)\s*(?:=\s*("[^"]*"|'[^']*'|[^\s"'=<>`]+))?""")
_HREF = re.compile(r"""<a\s[^>]{0,1024}?href\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""", re.IGNORECASE)
_LISTING = (
    re.compile(r"<title>\s*Index of\s+/", re.IGNORECASE),  # Apache, nginx autoindex, lighttpd
    re.compile(r"<h1>\s*Index of\s+/", re.IGNORECASE),
    re.compile(r"<title>\s*Directory listing for\s+/", re.IGNORECASE),  # python http.server
    re.compile(r"\[To Parent Directory\]", re.IGNORECASE),  # IIS
)


class CookieFact(BaseModel):
    """One Set-Cookie header: the attributes that matter, never the value."""

    name: str
    secure: bool = False
    httponly: bool = False
    samesite: str = ""  # as sent ("Lax", "Strict", "None", or something invalid)
    persistent: bool = False  # Expires or Max-Age present
    path: str = ""
    domain: str = ""
    session: bool = False  # looks like a session identifier (by name)
    anticsrf: bool = False  # looks like an anti-CSRF token (by name)
    value_length: int = 0


class FormInput(BaseModel):
    name: str
    type: str = "text"


class FormFact(BaseModel):
    """One <form> of a page, as far as the bounded body showed it."""

    method: str = "get"
    action: str = ""  # absolute URL it submits to
    inputs: list[FormInput] = Field(default_factory=list)

    @property
    def has_password(self) -> bool:
        return any(i.type == "password" for i in self.inputs)

    @property
    def has_csrf_token(self) -> bool:
        return any(i.type == "hidden" and _CSRF_NAMES.search(i.name) for i in self.inputs)


class ScriptRef(BaseModel):
    src: str  # absolute URL ("" for inline scripts is not recorded)
    integrity: bool = False
    crossorigin: str = ""


def _clip(value: str, limit: int = MAX_ATTR) -> str:
    clean = "".join(c if c.isprintable() else "?" for c in value)
    return clean[:limit]


def parse_set_cookie(header: str) -> CookieFact | None:
    """One Set-Cookie value; None when it has no name."""
    parts = header.split(";")
    name, _, value = parts[0].partition("=")
    name = name.strip()
    if not name:
        return None
    fact = CookieFact(name=_clip(name, 64), value_length=len(value.strip()))
    for attr in parts[1:]:
        key, _, val = attr.partition("=")
        key = key.strip().lower()
        val = val.strip()
        if key == "secure":
            fact.secure = True
        elif key == "httponly":
            fact.httponly = True
        elif key == "samesite":
            fact.samesite = _clip(val, 32) or "(empty)"
        elif key in ("expires", "max-age"):
            fact.persistent = True
        elif key == "path":
            fact.path = _clip(val, 128)
        elif key == "domain":
            fact.domain = _clip(val, 128)
    fact.anticsrf = bool(_CSRF_NAMES.search(fact.name))
    fact.session = bool(_SESSION_NAMES.search(fact.name)) and not fact.anticsrf
    return fact


def _attrs(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in _ATTR.finditer(text):
        key = m.group(1).lower()
        raw = m.group(2) or ""
        if raw[:1] in ("'", '"'):
            raw = raw[1:-1]
        out.setdefault(key, _clip(unescape(raw)))
    return out


def parse_html(text: str, base_url: str) -> tuple[list[FormFact], list[ScriptRef]]:
    """Forms (with their inputs) and external scripts of a bounded HTML text."""
    forms: list[FormFact] = []
    scripts: list[ScriptRef] = []
    current: FormFact | None = None
    loose = FormFact(action=base_url)  # password fields outside any <form>
    for m in _TAG.finditer(text):
        tag = m.group("name").lower()
        attrs = _attrs(m.group("attrs"))
        if tag == "form":
            if len(forms) >= MAX_FORMS:
                current = None
                continue
            action = attrs.get("action", "") or base_url
            current = FormFact(
                method=(attrs.get("method") or "get").lower()[:10],
                action=_clip(urljoin(base_url, action)),
            )
            forms.append(current)
        elif tag == "/form":
            current = None
        elif tag in ("input", "textarea", "select", "button"):
            if tag == "button":
                continue
            kind = (attrs.get("type") or "text").lower()[:16] if tag == "input" else tag
            holder = current if current is not None else loose
            if len(holder.inputs) < MAX_INPUTS:
                holder.inputs.append(FormInput(name=attrs.get("name", "")[:64], type=kind))
        elif tag == "script" and "src" in attrs and len(scripts) < MAX_SCRIPTS:
            scripts.append(
                ScriptRef(
                    src=_clip(urljoin(base_url, attrs["src"])),
                    integrity=bool(attrs.get("integrity")),
                    crossorigin=attrs.get("crossorigin", "")[:32],
                )
            )
    if loose.has_password and len(forms) < MAX_FORMS:
        forms.append(loose)
    return forms, scripts


def is_listing(text: str) -> bool:
    return any(p.search(text) for p in _LISTING)


def listing_entries(text: str, base_url: str) -> list[str]:
    """Names (decoded, relative to the listed directory) linked from a directory listing."""
    base = urlsplit(base_url)
    out: list[str] = []
    for m in _HREF.finditer(text):
        if len(out) >= MAX_LINKS:
            break
        raw = m.group(1).strip("'\"")
        if not raw or raw.startswith(("?", "#", "mailto:", "javascript:")):
            continue
        target = urlsplit(urljoin(base_url, unescape(raw)))
        if target.netloc != base.netloc or not target.path.startswith(base.path):
            continue  # parent directory, sort links, other sites
        name = unquote(target.path[len(base.path) :])
        if name and name not in out:
            out.append(_clip(name, 200))
    return out
