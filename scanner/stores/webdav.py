"""WebDAV (Nextcloud-style) through httpx and PROPFIND, Depth 1 per folder.

Depth: infinity is disabled on most servers and unbounded where it is not, so folders are
walked one level at a time with an entry cap and a depth cap. Multistatus bodies are capped
and a DOCTYPE is refused before parsing (no entity expansion). Anonymous access is tested with
an unauthenticated PROPFIND Depth 0 of the root; `http://` is cleartext transport.
"""

from __future__ import annotations

import email.utils
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx

from scanner.stores.base import Connector, Entry, Exposure, StoreError, TooLarge, TooManyEntries

MAX_MULTISTATUS = 8 * 1024 * 1024
_PROPFIND = (
    b'<?xml version="1.0" encoding="utf-8"?><d:propfind xmlns:d="DAV:"><d:prop>'
    b"<d:resourcetype/><d:getcontentlength/><d:getlastmodified/><d:getetag/>"
    b"</d:prop></d:propfind>"
)
_D = "{DAV:}"


class WebDavStore(Connector):
    kind = "webdav"

    def __init__(
        self,
        url: str,
        address: str,
        auth: tuple[str, str] | None = None,
        timeout: float = 5.0,
    ) -> None:
        parts = urlsplit(url if url.endswith("/") else url + "/")
        self.scheme = parts.scheme
        self.host_header = parts.netloc.rsplit("@", 1)[-1]
        port = f":{parts.port}" if parts.port else ""
        host = f"[{address}]" if ":" in address else address
        self.base = urlunsplit((parts.scheme, f"{host}{port}", parts.path, "", ""))
        self.root_path = parts.path
        self.auth = auth
        sni = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
        self._extensions = sni
        self.client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            auth=auth,
            headers={"Host": self.host_header},
            verify=True,
        )

    def close(self) -> None:
        self.client.close()

    # -- exposure --------------------------------------------------------------------------
    def exposure(self) -> Exposure:
        exp = Exposure(transport=self.scheme, cleartext=self.scheme == "http")
        try:
            with httpx.Client(
                timeout=self.client.timeout,
                follow_redirects=False,
                headers={"Host": self.host_header},
            ) as anon:
                r = anon.request(
                    "PROPFIND",
                    self.base,
                    headers={"Depth": "0"},
                    content=_PROPFIND,
                    extensions=self._extensions,
                )
            exp.anonymous_read = r.status_code == 207
            exp.public_listing = r.status_code == 207
            exp.anonymous_detail = f"unauthenticated PROPFIND answered {r.status_code}"
            if r.status_code == 207 and self.scheme == "http":
                exp.notes.append("the listing is readable by anyone on the network, in cleartext")
        except httpx.HTTPError as exc:
            exp.anonymous_detail = f"unauthenticated PROPFIND failed: {type(exc).__name__}"
        return exp

    # -- listing ---------------------------------------------------------------------------
    def _propfind(self, url: str) -> bytes:
        try:
            with self.client.stream(
                "PROPFIND",
                url,
                headers={"Depth": "1"},
                content=_PROPFIND,
                extensions=self._extensions,
            ) as r:
                if r.status_code in (401, 403):
                    raise StoreError(f"WebDAV listing of {unquote(url)} refused ({r.status_code})")
                if r.status_code != 207:
                    raise StoreError(f"WebDAV PROPFIND {unquote(url)} answered {r.status_code}")
                body = bytearray()
                for chunk in r.iter_bytes():
                    body += chunk
                    if len(body) > MAX_MULTISTATUS:
                        raise StoreError(
                            f"WebDAV listing of {unquote(url)} exceeds {MAX_MULTISTATUS} bytes"
                        )
                return bytes(body)
        except httpx.TimeoutException:
            raise StoreError(f"WebDAV server stalled listing {unquote(url)}") from None
        except httpx.HTTPError as exc:
            raise StoreError(f"WebDAV listing of {unquote(url)} failed: {exc}") from None

    def walk(self, max_entries: int, max_depth: int) -> Iterator[Entry]:
        count = 0
        stack: list[tuple[str, int]] = [(self.root_path, 0)]
        seen: set[str] = set()
        while stack:
            path, depth = stack.pop()
            if path in seen:
                continue
            seen.add(path)
            body = self._propfind(self._url(path))
            subdirs = []
            for href, is_dir, size, mtime, etag in _parse(body, path):
                if href.rstrip("/") == path.rstrip("/") or not href.startswith(self.root_path):
                    continue
                if is_dir:
                    if depth + 1 <= max_depth:
                        subdirs.append((href, depth + 1))
                    continue
                count += 1
                if count > max_entries:
                    raise TooManyEntries(max_entries)
                yield Entry(
                    path=unquote(href[len(self.root_path) :]), size=size, mtime=mtime, etag=etag
                )
            stack.extend(sorted(subdirs, reverse=True))

    def _url(self, path: str) -> str:
        parts = urlsplit(self.base)
        return urlunsplit((parts.scheme, parts.netloc, quote(path), "", ""))

    def read(self, entry: Entry, max_bytes: int) -> bytes:
        url = self._url(self.root_path + entry.path)
        if entry.size is not None and entry.size > max_bytes:
            raise TooLarge(f"{entry.path}: listed as {entry.size} bytes (limit {max_bytes})")
        try:
            with self.client.stream("GET", url, extensions=self._extensions) as r:
                if r.status_code != 200:
                    raise StoreError(f"GET {entry.path} answered {r.status_code}")
                declared = r.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    raise TooLarge(f"{entry.path}: {declared} bytes announced (limit {max_bytes})")
                body = bytearray()
                for chunk in r.iter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        raise TooLarge(
                            f"{entry.path}: sent more than {max_bytes} bytes "
                            f"(listed as {entry.size})"
                        )
                return bytes(body)
        except httpx.TimeoutException:
            raise StoreError(f"WebDAV server stalled sending {entry.path}") from None
        except httpx.HTTPError as exc:
            raise StoreError(f"GET {entry.path} failed: {type(exc).__name__}: {exc}") from None


def _parse(body: bytes, where: str) -> Iterator[tuple[str, bool, int | None, float | None, str]]:
    if b"<!DOCTYPE" in body[:4096].upper() or b"<!ENTITY" in body.upper():
        raise StoreError(f"WebDAV listing of {where} carries a DOCTYPE; refused")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise StoreError(f"WebDAV listing of {where} is not valid XML: {exc}") from None
    for resp in root.iter(f"{_D}response"):
        href_el = resp.find(f"{_D}href")
        if href_el is None or not href_el.text:
            continue
        href = urlsplit(href_el.text.strip()).path
        is_dir, size, mtime, etag = False, None, None, ""
        for ps in resp.iter(f"{_D}propstat"):
            status = ps.findtext(f"{_D}status") or ""
            if " 200 " not in status + " ":
                continue
            prop = ps.find(f"{_D}prop")
            if prop is None:
                continue
            rt = prop.find(f"{_D}resourcetype")
            if rt is not None and rt.find(f"{_D}collection") is not None:
                is_dir = True
            cl = (prop.findtext(f"{_D}getcontentlength") or "").strip()
            if cl.isdigit():
                size = int(cl)
            lm = (prop.findtext(f"{_D}getlastmodified") or "").strip()
            if lm:
                try:
                    mtime = email.utils.parsedate_to_datetime(lm).timestamp()
                except (TypeError, ValueError):
                    mtime = None
            etag = (prop.findtext(f"{_D}getetag") or "").strip()
        yield href, is_dir, size, mtime, etag
