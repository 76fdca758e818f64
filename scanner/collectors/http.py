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
import zlib
from urllib.parse import SplitResult, urljoin, urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, Field

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
