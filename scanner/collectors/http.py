"""Cleartext HTTP: what `GET /` answers, and where its redirects lead.

Redirects are followed by hand rather than by httpx so that every hop is checked by the scope
guard first (a redirect to an address outside the inventory is recorded, never requested) and
so that a host name from the inventory is sent as the Host header while the connection goes to
the inventory's address: no name is ever resolved. An https hop ends the walk: for this
collector it only matters that the chain reaches TLS, and the TLS endpoint has its own checks.

The server is untrusted: every request has the probe timeout on connect and on each read plus
a deadline for the whole body, at most `MAX_BODY` bytes of a body are read (streamed, never
buffered whole), compressed bodies are inflated to a bounded size, and only a few headers are
kept, each truncated.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import secrets
import zlib
from urllib.parse import SplitResult, urljoin, urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, Field

from scanner.collectors.webclassify import ContentFinding, classify
from scanner.collectors.webparse import (
    CookieFact,
    FormFact,
    ScriptRef,
    is_listing,
    listing_entries,
    parse_html,
    parse_set_cookie,
)
from scanner.masking import mask_text
from scanner.model import Facts, Target, TargetKind
from scanner.plugins import CollectContext, Collector
from scanner.scope import OutOfScope

HTTP_NAMES = frozenset({"http", "http-alt", "http-proxy", "http-mgmt", "www", "www-http"})
HTTP_PORTS = frozenset({80, 8080, 8000, 8008, 8888})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
MAX_BODY = 256 * 1024  # bytes of a body read off the wire
MAX_DECODED = 1024 * 1024  # bytes a compressed body may inflate to
MAX_HEADER_VALUE = 512
MAX_COOKIES = 32
USER_AGENT = "Assay/0.1 (security assessment; read-only)"

_PASSWORD_INPUT = re.compile(rb"<input\b[^>]{0,2048}?\btype\s*=\s*[\"']?password\b", re.I)
_PLAIN_TO_TLS = re.compile(rb"plain HTTP request was sent to HTTPS port", re.I)


class HttpProbeError(Exception):
    """The start URL could not be fetched: refused, silent, or not speaking HTTP."""


class HttpHop(BaseModel):
    """One request of the walk and what came back."""

    url: str
    status: int
    location: str = ""  # absolute redirect target, when the answer was a redirect
    server: str = ""
    strict_transport_security: str = ""
    www_authenticate: str = ""
    content_type: str = ""
    content_encoding: str = ""
    set_cookie_names: list[str] = Field(default_factory=list)
    body_bytes: int = 0  # bytes read off the wire (at most MAX_BODY)
    body_truncated: bool = False  # more was offered than was read
    password_form: bool = False  # an <input type=password> in what was read
    tls_port_hint: bool = False  # the server says this port expects TLS


class HttpFacts(Facts):
    url: str  # where the walk started
    status: int  # status of the first answer
    hops: list[HttpHop]
    redirect_chain: list[str] = Field(default_factory=list)  # every URL visited or pointed at
    final_url: str
    final_status: int | None = None  # None when the last URL was not requested
    ends_at_https: bool = False
    not_followed: str = ""  # why the last redirect target was not requested
    out_of_scope_redirect: str = ""  # a redirect target outside the inventory's scope
    redirect_limit_reached: bool = False
    password_form: bool = False  # the final cleartext page offers a password field
    body_bytes: int = 0  # of the final page
    body_truncated: bool = False
    errors: list[str] = Field(default_factory=list)


def _short(value: str, limit: int = MAX_HEADER_VALUE) -> str:
    clean = "".join(c if c.isprintable() else "?" for c in value)
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."


def _host_header(parts: SplitResult) -> str:
    """Host header value of a URL (the netloc without user information)."""
    return parts.netloc.rsplit("@", 1)[-1]


def _wire_url(url: str, address: str) -> str:
    """The URL with its host replaced by the in-scope address, so nothing is resolved."""
    parts = urlsplit(url)
    ip = ipaddress.ip_address(address)
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(("http", netloc, parts.path or "/", parts.query, ""))


def _inflate(data: bytes, encoding: str) -> bytes:
    """A bounded inflate of gzip/deflate bodies; anything else is scanned as it came."""
    if encoding not in ("gzip", "x-gzip", "deflate"):
        return data
    for wbits in (zlib.MAX_WBITS | 32, -zlib.MAX_WBITS):
        try:
            return zlib.decompressobj(wbits).decompress(data, MAX_DECODED)
        except zlib.error:
            continue
    return data


class HttpCollector(Collector):
    """GET / over cleartext HTTP, then the redirects by hand, each hop scope-checked."""

    id = "service.http"
    target_kind = TargetKind.SERVICE
    facts_model = HttpFacts

    def applies(self, target: Target) -> bool:
        if target.kind is TargetKind.WEB:
            return bool(target.url) and urlsplit(target.url or "").scheme == "http"
        if target.kind is not TargetKind.SERVICE or target.protocol != "tcp":
            return False
        info = target.service
        if info and info.tunnel == "ssl":
            return False
        name = info.name if info else ""
        if name:
            return name in HTTP_NAMES
        return target.port in HTTP_PORTS

    def start_url(self, target: Target) -> str:
        if target.kind is TargetKind.WEB:
            return target.url or ""
        ip = ipaddress.ip_address(target.address or "")
        host = f"[{ip}]" if ip.version == 6 else str(ip)
        return f"http://{host}:{target.port}/"

    async def collect(self, target: Target, ctx: CollectContext) -> HttpFacts:
        start = self.start_url(target)
        if target.kind is TargetKind.WEB:
            address = ctx.scope.resolve_url_host(start)
        else:
            address = str(ctx.scope.ensure_address(target.address or ""))
        timeout = httpx.Timeout(ctx.probe_timeout)
        async with httpx.AsyncClient(
            timeout=timeout, trust_env=False, follow_redirects=False, http2=False
        ) as client:
            first = await self._fetch(client, start, address, ctx.probe_timeout)
            return await self._walk(client, start, first, ctx)

    async def _walk(
        self, client: httpx.AsyncClient, start: str, first: HttpHop, ctx: CollectContext
    ) -> HttpFacts:
        facts = HttpFacts(
            url=start, status=first.status, hops=[first], redirect_chain=[start], final_url=start
        )
        hop = first
        while True:
            facts.final_url, facts.final_status = hop.url, hop.status
            if not (hop.status in REDIRECT_STATUSES and hop.location):
                break
            nxt = hop.location
            facts.redirect_chain.append(nxt)
            facts.final_url, facts.final_status = nxt, None
            scheme = urlsplit(nxt).scheme.lower()
            if scheme == "https":
                facts.ends_at_https = True
                break
            if scheme != "http":
                facts.not_followed = f"unsupported scheme {scheme!r}"
                break
            if len(facts.hops) > MAX_REDIRECTS:
                facts.redirect_limit_reached = True
                facts.not_followed = f"more than {MAX_REDIRECTS} redirects"
                break
            try:
                address = ctx.scope.resolve_url_host(nxt)
            except OutOfScope as exc:
                facts.out_of_scope_redirect = nxt
                facts.not_followed = f"outside the scope: {exc}"
                break
            try:
                hop = await self._fetch(client, nxt, address, ctx.probe_timeout)
            except HttpProbeError as exc:
                facts.not_followed = "request failed"
                facts.errors.append(str(exc))
                break
            facts.hops.append(hop)
        last = facts.hops[-1]
        if facts.final_status is not None:
            facts.password_form = last.password_form
            facts.body_bytes, facts.body_truncated = last.body_bytes, last.body_truncated
        return facts

    async def _fetch(
        self, client: httpx.AsyncClient, url: str, address: str, timeout: float
    ) -> HttpHop:
        parts = urlsplit(url)
        headers = {
            "Host": _host_header(parts),
            "User-Agent": USER_AGENT,
            "Accept": "text/html,*/*;q=0.5",
            "Accept-Encoding": "identity",
        }
        wire = _wire_url(url, address)
        try:
            async with client.stream("GET", wire, headers=headers) as resp:
                hop = self._hop(url, resp)
                body = await self._read_body(resp, hop, timeout)
        except httpx.TimeoutException as exc:
            raise HttpProbeError(
                f"http {url} (at {address}:{parts.port or 80}): no response within "
                f"{timeout:g}s ({type(exc).__name__})"
            ) from None
        except httpx.ConnectError as exc:
            raise HttpProbeError(
                f"http {url} (at {address}:{parts.port or 80}): cannot connect: {exc}"
            ) from None
        except (httpx.RemoteProtocolError, httpx.DecodingError) as exc:
            raise HttpProbeError(
                f"http {url} (at {address}:{parts.port or 80}): not a valid HTTP response: {exc}"
            ) from None
        except httpx.HTTPError as exc:
            raise HttpProbeError(
                f"http {url} (at {address}:{parts.port or 80}): {type(exc).__name__}: {exc}"
            ) from None
        text = _inflate(body, hop.content_encoding)
        hop.password_form = bool(_PASSWORD_INPUT.search(text))
        hop.tls_port_hint = hop.status == 400 and bool(_PLAIN_TO_TLS.search(text))
        return hop

    @staticmethod
    def _hop(url: str, resp: httpx.Response) -> HttpHop:
        h = resp.headers
        location = h.get("location", "")
        cookies = [c.split("=", 1)[0].strip() for c in h.get_list("set-cookie")[:MAX_COOKIES]]
        return HttpHop(
            url=url,
            status=resp.status_code,
            location=_short(urljoin(url, location.strip())) if location else "",
            server=_short(h.get("server", "")),
            strict_transport_security=_short(h.get("strict-transport-security", "")),
            www_authenticate=_short(h.get("www-authenticate", "")),
            content_type=_short(h.get("content-type", "")),
            content_encoding=_short(h.get("content-encoding", "")).lower(),
            set_cookie_names=[_short(c, 64) for c in cookies if c],
        )

    @staticmethod
    async def _read_body(resp: httpx.Response, hop: HttpHop, timeout: float) -> bytes:
        """At most MAX_BODY bytes, within a deadline: a drip-feeding server cannot stall us."""
        chunks: list[bytes] = []
        try:
            async with asyncio.timeout(timeout * 2):
                async for chunk in resp.aiter_raw():
                    room = MAX_BODY - hop.body_bytes
                    chunks.append(chunk[:room])
                    hop.body_bytes += min(len(chunk), room)
                    if len(chunk) > room or hop.body_bytes >= MAX_BODY:
                        hop.body_truncated = True
                        break
        except (TimeoutError, httpx.TimeoutException):
            hop.body_truncated = True  # headers arrived; the body kept coming too slowly
        except httpx.RemoteProtocolError:
            hop.body_truncated = True  # closed before the announced length: keep what came
        return b"".join(chunks)


# == The web collector: every HTTP(S) site, its headers, cookies, forms and exposed content ==
#
# `service.http` above answers one question (does cleartext HTTP reach TLS?). `web.http`
# gathers what the web checks judge, on http and https alike: the root page (and configured
# paths) after the in-scope redirects, every response header of the final page, the cookies of
# every hop, the forms and scripts of the body, OPTIONS and TRACE on `/`, and a short list of
# well-known sensitive paths requested within a request and time budget. Certificates are NOT
# verified here (internal sites often use their own CA); the tls.* checks judge them, and the
# facts say so.

WEB_HTTPS_NAMES = frozenset({"https", "https-alt", "ssl/http", "ssl/https"})
WEB_TLS_PORTS = frozenset({443, 8443, 4443, 9443})
MAX_HEADERS = 64
SAMPLE_CHARS = 2048  # decoded characters of a body kept in the facts (masked)
PROBE_BODY = 64 * 1024  # bytes of a probed file read
DEFAULT_PROBE_BUDGET = 16  # requests spent on sensitive paths per site
MAX_PAGE_PATHS = 16  # configured paths fetched per site (the inventory allows as many)
PROBE_CONCURRENCY = 4
CORS_PROBE_ORIGIN = "https://assay-cors-probe.invalid"
_TRACE_MARK = "X-Assay-Trace"

# (path, purpose): asked in this order until the budget is spent
SENSITIVE_PATHS: tuple[tuple[str, str], ...] = (
    ("/.env", "env"),
    ("/.git/HEAD", "git_head"),
    ("/.git/config", "git_config"),
    ("/server-status", "status"),
    ("/nginx_status", "status"),
    ("/status", "status"),
    ("/backup/", "listing"),
    ("/backups/", "listing"),
    ("/backup.sql", "backup"),
    ("/dump.sql", "backup"),
    ("/database.sql", "backup"),
    ("/backup.zip", "backup"),
    ("/backup.tar.gz", "backup"),
    ("/uploads/", "listing"),
    ("/files/", "listing"),
)
BACKUP_NAME = re.compile(
    r"\.(?:sql|sql\.gz|sql\.zip|bak|old|orig|zip|tar|tar\.gz|tgz|gz|7z|rar|dump|backup|bk)$",
    re.IGNORECASE,
)
_ENV_LINE = re.compile(rb"^[A-Z][A-Z0-9_]{1,64}=", re.MULTILINE)
_GIT_HEAD = re.compile(rb"^(?:ref: refs/\S+|[0-9a-f]{40})\s*$")
_GIT_URL = re.compile(r"^\s*url\s*=\s*(\S+)", re.MULTILINE)
_SQL = re.compile(
    rb"CREATE TABLE|INSERT INTO|-- MySQL dump|PostgreSQL database dump|-- MariaDB dump", re.I
)
_STATUS_SIGNS = (
    (re.compile(rb"Apache Server Status for", re.I), "Apache mod_status"),
    (re.compile(rb"Apache Server Information", re.I), "Apache mod_info"),
    (
        re.compile(rb"Active connections:\s*\d+.*server accepts handled", re.I | re.S),
        "nginx stub_status",
    ),
    (re.compile(rb"^pool:\s+\S+.*process manager:", re.I | re.S | re.M), "PHP-FPM status"),
)
_HTML_START = re.compile(rb"^\s*(?:<!doctype|<html|<head|<body)", re.I)
_CHARSET = re.compile(r"charset\s*=\s*\"?([A-Za-z0-9_.:-]{1,40})", re.I)


class WebResponse(BaseModel):
    """One response: status, headers (lower-case names), cookies and what the body showed."""

    url: str
    status: int
    tls: bool = False
    headers: dict[str, str] = Field(default_factory=dict)
    headers_dropped: int = 0  # beyond MAX_HEADERS
    cookies: list[CookieFact] = Field(default_factory=list)
    location: str = ""
    content_type: str = ""
    body_bytes: int = 0
    body_truncated: bool = False
    encoding_note: str = ""  # why the text is not exactly what the server declared
    body_sample: str = ""  # masked, at most SAMPLE_CHARS
    forms: list[FormFact] = Field(default_factory=list)
    scripts: list[ScriptRef] = Field(default_factory=list)
    listing: bool = False
    listing_entries: list[str] = Field(default_factory=list)

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


class PathProbe(BaseModel):
    """A well-known sensitive path and what it gave."""

    path: str
    purpose: str  # env, git_head, git_config, status, listing, backup
    url: str
    status: int | None = None  # None: not answered (see error)
    found: bool = False  # the content matched what the path is known to hold
    signature: str = ""  # what matched ("nginx stub_status", "SQL dump", ...)
    content_type: str = ""
    body_bytes: int = 0
    listing_entries: list[str] = Field(default_factory=list)
    findings: list[ContentFinding] = Field(default_factory=list)
    git_remotes: list[str] = Field(default_factory=list)  # masked
    git_remote_credentials: bool = False
    error: str = ""


class MethodFacts(BaseModel):
    options_status: int | None = None
    allow: list[str] = Field(default_factory=list)  # Allow and Public headers of OPTIONS /
    dav: str = ""  # DAV header of OPTIONS /
    trace_status: int | None = None
    trace_echo: bool = False  # TRACE / came back with our request in the body
    error: str = ""


class PathFetch(BaseModel):
    """A configured path (inventory `paths`) and where its redirects led."""

    path: str
    url: str  # the path on the declared URL's site
    final_url: str
    status: int | None = None  # of the last response; None when the last URL was not requested
    redirect_chain: list[str] = Field(default_factory=list)
    not_followed: str = ""  # why the last redirect target was not requested
    out_of_scope_redirect: str = ""
    already_fetched: bool = False  # the walk reached a page fetched before (judged once)
    error: str = ""


class WebFacts(Facts):
    start_url: str
    final_url: str
    hops: list[WebResponse]  # every response of the root walk, the final page last
    redirect_chain: list[str] = Field(default_factory=list)
    final: WebResponse | None = None  # None when the last URL was not requested
    ends_at_https: bool = False
    not_followed: str = ""
    out_of_scope_redirect: str = ""
    redirect_limit_reached: bool = False
    # the first redirect goes to a host the inventory binds to the start URL's own address
    # (an IP-literal start URL redirecting to the site's name counts as the same host)
    first_redirect_same_address: bool = False
    pages: list[WebResponse] = Field(default_factory=list)  # configured paths, every hop
    paths: list[PathFetch] = Field(default_factory=list)  # one per configured path
    methods: MethodFacts = Field(default_factory=MethodFacts)
    probes: list[PathProbe] = Field(default_factory=list)
    probe_budget: int = DEFAULT_PROBE_BUDGET
    probes_skipped: list[str] = Field(default_factory=list)  # with the reason
    tls_note: str = ""
    errors: list[str] = Field(default_factory=list)

    @property
    def start_scheme(self) -> str:
        return urlsplit(self.start_url).scheme.lower()

    def responses(self) -> list[WebResponse]:
        """Every response gathered (walk, pages), for checks that look at all of them."""
        return [*self.hops, *self.pages]


def _scheme_url(url: str, address: str) -> str:
    """The URL with its host replaced by the in-scope address, keeping the scheme."""
    parts = urlsplit(url)
    ip = ipaddress.ip_address(address)
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, ""))


def _decode(body: bytes, content_type: str) -> tuple[str, str]:
    """Text of a body and, when it is not clean, why (invalid bytes, unknown charset)."""
    m = _CHARSET.search(content_type)
    charset = m.group(1) if m else "utf-8"
    try:
        text = body.decode(charset)
        return text, ""
    except LookupError:
        return body.decode("utf-8", "replace"), f"unknown charset {charset[:40]!r}; read as UTF-8"
    except UnicodeDecodeError as exc:
        return (
            body.decode(charset, "replace"),
            f"invalid {charset[:40]} bytes at offset {exc.start}; replaced",
        )


class _Budget:
    """The collector's own deadline, kept below the runner's budget so that partial facts are
    returned instead of the whole collector timing out."""

    def __init__(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        self._loop, self.deadline = loop, loop.time() + seconds

    def left(self) -> float:
        return self.deadline - self._loop.time()


class WebCollector(Collector):
    """The root page, headers, cookies, forms, methods and sensitive paths of one site."""

    id = "web.http"
    target_kind = TargetKind.WEB
    facts_model = WebFacts
    timeout = 60.0

    def __init__(
        self,
        paths: tuple[str, ...] = (),
        probe_budget: int = DEFAULT_PROBE_BUDGET,
        sensitive_paths: tuple[tuple[str, str], ...] = SENSITIVE_PATHS,
    ) -> None:
        self.paths = paths
        self.probe_budget = probe_budget
        self.sensitive_paths = sensitive_paths

    # -- which targets -------------------------------------------------------------------------
    def applies(self, target: Target) -> bool:
        if target.kind is TargetKind.WEB:
            return urlsplit(target.url or "").scheme in ("http", "https")
        if target.kind is not TargetKind.SERVICE or target.protocol != "tcp":
            return False
        info = target.service
        name = info.name if info else ""
        if name:
            return name in HTTP_NAMES or name in WEB_HTTPS_NAMES
        return target.port in HTTP_PORTS or target.port in WEB_TLS_PORTS

    def start_url(self, target: Target) -> str:
        if target.kind is TargetKind.WEB:
            return target.url or ""
        info = target.service
        name = info.name if info else ""
        tls = bool(info and info.tunnel == "ssl") or name in WEB_HTTPS_NAMES
        if not name and target.port in WEB_TLS_PORTS:
            tls = True
        ip = ipaddress.ip_address(target.address or "")
        host = f"[{ip}]" if ip.version == 6 else str(ip)
        return f"{'https' if tls else 'http'}://{host}:{target.port}/"

    # -- collection ------------------------------------------------------------------------
    async def collect(self, target: Target, ctx: CollectContext) -> WebFacts:
        start = self.start_url(target)
        address = ctx.scope.resolve_url_host(start)  # raises OutOfScope before any packet
        budget = _Budget(max(self.timeout - 2 * ctx.probe_timeout - 1, ctx.probe_timeout))
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(ctx.probe_timeout),
            trust_env=False,
            follow_redirects=False,
            http2=False,
            verify=False,  # certificates are judged by the tls.* checks
        ) as client:
            first = await self._get(client, start, address, ctx.probe_timeout, root=True)
            facts = await self._walk(client, start, first, ctx)
            # configured pages are the user's explicit ask: fetched even when the root walk
            # stopped early, each from the declared URL's own site, each hop scope-checked
            for path in self.page_paths(target, start):
                facts.paths.append(await self._fetch_path(client, facts, start, path, ctx, budget))
            facts.tls_note = (
                "certificates were not verified by this collector (the tls.* checks judge them)"
                if any(r.tls for r in facts.responses())
                else ""
            )
            if facts.final is None or not facts.hops:
                return facts
            base = facts.final_url
            site_address = ctx.scope.resolve_url_host(base)
            facts.methods = await self._methods(client, base, site_address, ctx.probe_timeout)
            await self._probe_paths(client, facts, base, site_address, ctx.probe_timeout, budget)
        return facts

    def page_paths(self, target: Target, start: str) -> list[str]:
        """The configured paths (collector's, then the inventory URL's), once each, without
        the start URL's own path (the walk already fetched it)."""
        parts = urlsplit(start)
        own = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        out: list[str] = []
        for path in (*self.paths, *target.paths):
            if path != own and path not in out:
                out.append(path)
        return out[:MAX_PAGE_PATHS]

    async def _fetch_path(
        self,
        client: httpx.AsyncClient,
        facts: WebFacts,
        start: str,
        path: str,
        ctx: CollectContext,
        budget: _Budget,
    ) -> PathFetch:
        """GET one configured path on the start URL's site and follow its in-scope redirects
        (at most MAX_REDIRECTS, loops detected); every response goes to `facts.pages`."""
        url = urljoin(start, path)
        fetch = PathFetch(path=path, url=url, final_url=url, redirect_chain=[url])
        seen = {url}
        while True:
            done = next((r for r in facts.responses() if r.url == url), None)
            if done is not None:  # judged once: no finding is reported twice for one page
                fetch.final_url, fetch.status = url, done.status
                fetch.already_fetched = True
                return fetch
            if budget.left() <= 0:
                fetch.not_followed = "the collector's time budget ran out"
                facts.probes_skipped.append(f"{url}: the collector's time budget ran out")
                return fetch
            try:
                address = ctx.scope.resolve_url_host(url)
            except OutOfScope as exc:
                fetch.out_of_scope_redirect = url
                fetch.not_followed = f"outside the scope: {exc}"
                return fetch
            try:
                page = await self._get(client, url, address, min(ctx.probe_timeout, budget.left()))
            except HttpProbeError as exc:
                fetch.error = str(exc)
                facts.errors.append(str(exc))
                return fetch
            facts.pages.append(page)
            fetch.final_url, fetch.status = url, page.status
            if not (page.status in REDIRECT_STATUSES and page.location):
                return fetch
            nxt = page.location
            fetch.redirect_chain.append(nxt)
            fetch.final_url, fetch.status = nxt, None
            scheme = urlsplit(nxt).scheme.lower()
            if scheme not in ("http", "https"):
                fetch.not_followed = f"unsupported scheme {scheme!r}"
                return fetch
            if nxt in seen:
                fetch.not_followed = f"redirect loop back to {nxt}"
                return fetch
            if len(fetch.redirect_chain) > MAX_REDIRECTS + 1:
                fetch.not_followed = f"more than {MAX_REDIRECTS} redirects"
                return fetch
            seen.add(nxt)
            url = nxt

    async def _walk(
        self, client: httpx.AsyncClient, start: str, first: WebResponse, ctx: CollectContext
    ) -> WebFacts:
        facts = WebFacts(start_url=start, final_url=start, hops=[first], redirect_chain=[start])
        hop, seen = first, {start}
        while True:
            facts.final_url, facts.final = hop.url, hop
            if not (hop.status in REDIRECT_STATUSES and hop.location):
                break
            nxt = hop.location
            if len(facts.hops) == 1:
                facts.first_redirect_same_address = _same_address(ctx, start, nxt)
            facts.redirect_chain.append(nxt)
            facts.final_url, facts.final = nxt, None
            scheme = urlsplit(nxt).scheme.lower()
            if scheme not in ("http", "https"):
                facts.not_followed = f"unsupported scheme {scheme!r}"
                break
            if nxt in seen:
                facts.redirect_limit_reached = True
                facts.not_followed = f"redirect loop back to {nxt}"
                break
            if len(facts.hops) > MAX_REDIRECTS:
                facts.redirect_limit_reached = True
                facts.not_followed = f"more than {MAX_REDIRECTS} redirects"
                break
            try:
                address = ctx.scope.resolve_url_host(nxt)
            except OutOfScope as exc:
                facts.out_of_scope_redirect = nxt
                facts.not_followed = f"outside the scope: {exc}"
                break
            seen.add(nxt)
            try:
                hop = await self._get(client, nxt, address, ctx.probe_timeout, root=True)
            except HttpProbeError as exc:
                facts.not_followed = "request failed"
                facts.errors.append(str(exc))
                break
            facts.hops.append(hop)
        facts.ends_at_https = urlsplit(facts.final_url).scheme.lower() == "https"
        return facts

    async def _send(
        self,
        client: httpx.AsyncClient,
        method: str,
        url: str,
        address: str,
        timeout: float,
        *,
        limit: int,
        extra: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> tuple[httpx.Response, bytes, bool]:
        """One request: (response with headers, at most `limit` body bytes, truncated?)."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        headers = {
            "Host": _host_header(parts),
            "User-Agent": USER_AGENT,
            "Accept": "text/html,*/*;q=0.5",
            "Accept-Encoding": "identity",
            **(extra or {}),
        }
        extensions: dict[str, str] = {}
        if parts.scheme.lower() == "https":
            try:
                ipaddress.ip_address(host)
            except ValueError:
                extensions["sni_hostname"] = host  # the inventory's name, never resolved
        where = f"{method} {url} (at {address}:{parts.port or _default_port(parts.scheme)})"
        try:
            async with client.stream(
                method,
                _scheme_url(url, address),
                headers=headers,
                extensions=extensions,
                content=content,
            ) as resp:
                body, truncated = await _read_bounded(resp, limit, timeout)
        except httpx.TimeoutException as exc:
            raise HttpProbeError(
                f"{where}: no response within {timeout:g}s ({type(exc).__name__})"
            ) from None
        except httpx.ConnectError as exc:
            text = str(exc)
            if "SSL" in text or "TLS" in text or "certificate" in text.lower():
                raise HttpProbeError(f"{where}: TLS handshake failed: {text}") from None
            raise HttpProbeError(f"{where}: cannot connect: {text}") from None
        except (httpx.RemoteProtocolError, httpx.DecodingError, httpx.LocalProtocolError) as exc:
            raise HttpProbeError(f"{where}: not a valid HTTP response: {exc}") from None
        except httpx.HTTPError as exc:
            raise HttpProbeError(f"{where}: {type(exc).__name__}: {exc}") from None
        except UnicodeError as exc:
            raise HttpProbeError(f"{where}: undecodable response: {exc}") from None
        return resp, body, truncated

    async def _get(
        self,
        client: httpx.AsyncClient,
        url: str,
        address: str,
        timeout: float,
        root: bool = False,
    ) -> WebResponse:
        extra = {"Origin": CORS_PROBE_ORIGIN} if root else None
        resp, body, truncated = await self._send(
            client, "GET", url, address, timeout, limit=MAX_BODY, extra=extra
        )
        return _response(url, resp, body, truncated)

    async def _methods(
        self, client: httpx.AsyncClient, base: str, address: str, timeout: float
    ) -> MethodFacts:
        out = MethodFacts()
        root = urljoin(base, "/")
        try:
            resp, _, _ = await self._send(client, "OPTIONS", root, address, timeout, limit=4096)
            out.options_status = resp.status_code
            allow = ",".join(resp.headers.get_list("allow") + resp.headers.get_list("public"))
            out.allow = sorted({m.strip().upper()[:20] for m in allow.split(",") if m.strip()})[:32]
            out.dav = _short(resp.headers.get("dav", ""), 128)
            mark = secrets.token_hex(8)
            resp, body, _ = await self._send(
                client, "TRACE", root, address, timeout, limit=16384, extra={_TRACE_MARK: mark}
            )
            out.trace_status = resp.status_code
            out.trace_echo = resp.status_code == 200 and mark.encode() in body
        except HttpProbeError as exc:
            out.error = str(exc)
        return out

    async def _probe_paths(
        self,
        client: httpx.AsyncClient,
        facts: WebFacts,
        base: str,
        address: str,
        timeout: float,
        budget: _Budget,
    ) -> None:
        facts.probe_budget = self.probe_budget
        plan = list(self.sensitive_paths)
        spent = 0
        sem = asyncio.Semaphore(PROBE_CONCURRENCY)

        async def one(path: str, purpose: str) -> PathProbe:
            async with sem:
                return await self._probe(
                    client, urljoin(base, path), path, purpose, address, timeout, budget
                )

        # .git/config is only worth asking for once .git/HEAD is there; a directory that is
        # already a configured page is judged as that page (one listing finding, not two)
        pages = {r.url for r in facts.pages}
        first = [
            p
            for p in plan
            if p[1] != "git_config" and not (p[1] == "listing" and urljoin(base, p[0]) in pages)
        ]
        todo = first[: self.probe_budget]
        facts.probes_skipped += [f"{p}: beyond the probe budget" for p, _ in first[len(todo) :]]
        spent = len(todo)
        facts.probes = list(await asyncio.gather(*(one(p, k) for p, k in todo)))
        if any(p.purpose == "git_head" and p.found for p in facts.probes):
            for path, kind in (p for p in plan if p[1] == "git_config"):
                if spent >= self.probe_budget:
                    facts.probes_skipped.append(f"{path}: beyond the probe budget")
                    continue
                spent += 1
                facts.probes.append(await one(path, kind))
        # backups linked from listings (the root page or a probed directory): fetch a few to
        # classify their content, within what is left of the budget
        listed = [(p.url, p.listing_entries) for p in facts.probes if p.listing_entries]
        if facts.final is not None and facts.final.listing:
            listed.insert(0, (facts.final.url, facts.final.listing_entries))
        for dir_url, entries in listed:
            for name in entries:
                if not BACKUP_NAME.search(name) or name.endswith("/"):
                    continue
                url = urljoin(dir_url, name)
                path = urlsplit(url).path
                if any(p.url == url for p in facts.probes):
                    continue
                if spent >= self.probe_budget:
                    facts.probes_skipped.append(f"{path}: beyond the probe budget")
                    continue
                spent += 1
                facts.probes.append(await one(path, "backup"))

    async def _probe(
        self,
        client: httpx.AsyncClient,
        url: str,
        path: str,
        purpose: str,
        address: str,
        timeout: float,
        budget: _Budget,
    ) -> PathProbe:
        probe = PathProbe(path=path, purpose=purpose, url=url)
        if budget.left() <= 0:
            probe.error = "not requested: the collector's time budget ran out"
            return probe
        try:
            resp, body, _ = await self._send(
                client, "GET", url, address, min(timeout, budget.left()), limit=PROBE_BODY
            )
        except HttpProbeError as exc:
            probe.error = str(exc)
            return probe
        probe.status = resp.status_code
        probe.content_type = _short(resp.headers.get("content-type", ""), 128)
        probe.body_bytes = len(body)
        if resp.status_code != 200 or not body:
            return probe
        body = _inflate(body, resp.headers.get("content-encoding", "").lower())
        _judge_probe(probe, body)
        return probe


def _same_address(ctx: CollectContext, a: str, b: str) -> bool:
    try:
        return ctx.scope.resolve_url_host(a) == ctx.scope.resolve_url_host(b)
    except OutOfScope:
        return False


def _default_port(scheme: str) -> int:
    return 443 if scheme.lower() == "https" else 80


async def _read_bounded(resp: httpx.Response, limit: int, timeout: float) -> tuple[bytes, bool]:
    """At most `limit` bytes of the body within a deadline (a drip-feeding server cannot stall
    the scan); (bytes, truncated)."""
    chunks: list[bytes] = []
    size, truncated = 0, False
    try:
        async with asyncio.timeout(timeout * 2):
            async for chunk in resp.aiter_raw():
                room = limit - size
                chunks.append(chunk[:room])
                size += min(len(chunk), room)
                if len(chunk) > room or size >= limit:
                    truncated = True
                    break
    except (TimeoutError, httpx.TimeoutException):
        truncated = True
    except httpx.RemoteProtocolError:
        truncated = True  # closed early: keep what came
    return b"".join(chunks), truncated


def _response(url: str, resp: httpx.Response, body: bytes, truncated: bool) -> WebResponse:
    h = resp.headers
    headers: dict[str, str] = {}
    dropped = 0
    for raw_name, raw_value in h.multi_items():
        name = _short(raw_name.lower(), 64)
        if name == "set-cookie":
            continue
        if name in headers:
            headers[name] = _short(f"{headers[name]}, {raw_value}")
        elif len(headers) < MAX_HEADERS:
            headers[name] = _short(raw_value)
        else:
            dropped += 1
    cookies = [
        c for c in (parse_set_cookie(v) for v in h.get_list("set-cookie")[:MAX_COOKIES]) if c
    ]
    location = h.get("location", "")
    content_type = _short(h.get("content-type", ""), 128)
    out = WebResponse(
        url=url,
        status=resp.status_code,
        tls=urlsplit(url).scheme.lower() == "https",
        headers=headers,
        headers_dropped=dropped,
        cookies=cookies,
        location=_short(urljoin(url, location.strip())) if location else "",
        content_type=content_type,
        body_bytes=len(body),
        body_truncated=truncated,
    )
    raw = _inflate(body, h.get("content-encoding", "").lower())
    text, out.encoding_note = _decode(raw, content_type)
    out.body_sample = mask_text(text[:SAMPLE_CHARS])
    if "html" in content_type.lower() or _HTML_START.search(raw[:512]):
        out.forms, out.scripts = parse_html(text, url)
        if is_listing(text):
            out.listing = True
            out.listing_entries = listing_entries(text, url)
    return out


def _judge_probe(probe: PathProbe, body: bytes) -> None:
    """Does the body hold what the path is known for? Signatures, not status codes: many
    sites answer 200 with their home page for any path."""
    html = bool(_HTML_START.search(body[:512]))
    text, _ = _decode(body, probe.content_type)
    if probe.purpose == "env" and not html and _ENV_LINE.search(body):
        probe.found, probe.signature = True, "KEY=value lines"
    elif probe.purpose == "git_head" and _GIT_HEAD.match(body[:200]):
        probe.found, probe.signature = True, "git HEAD reference"
    elif probe.purpose == "git_config" and b"[core]" in body:
        probe.found, probe.signature = True, "git configuration"
        remotes = _GIT_URL.findall(text)[:10]
        probe.git_remote_credentials = any(_URL_CRED.search(u) for u in remotes)
        probe.git_remotes = [_short(mask_text(u), 256) for u in remotes]
    elif probe.purpose == "status":
        for sign, label in _STATUS_SIGNS:
            if sign.search(body):
                probe.found, probe.signature = True, label
                break
    elif probe.purpose == "listing" and is_listing(text):
        probe.found, probe.signature = True, "directory listing"
        probe.listing_entries = listing_entries(text, probe.url)
    elif probe.purpose == "backup" and not html:
        if body.startswith(b"PK\x03\x04"):
            probe.found, probe.signature = True, "zip archive"
        elif body.startswith(b"\x1f\x8b"):
            probe.found, probe.signature = True, "gzip data"
        elif _SQL.search(body):
            probe.found, probe.signature = True, "SQL dump"
        elif body.startswith((b"7z\xbc\xaf", b"Rar!")):
            probe.found, probe.signature = True, "archive"
    if probe.found and probe.purpose in ("env", "git_config", "backup"):
        probe.findings = classify(text)


_URL_CRED = re.compile(r"://[^:/@\s]+:[^@/\s]+@")
