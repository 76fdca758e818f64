"""Active probes, only with `--active`: write-method and upload tests, default credentials.

Probes are grouped by safety class, like NSE's categories:

- `safe`: requests that cannot change anything: DELETE of a random name that cannot exist,
  and the same path with a made-up method, to tell "DELETE is processed" (WebDAV) from "this
  server answers 404 to everything";
- `intrusive`: an upload test: PUT of a small uniquely named text file, GET to confirm it was
  stored, DELETE to remove it, GET to confirm it is gone (the evidence says if it is not);
- `brute`: a handful of default user/password pairs per service (SSH with paramiko, FTP with
  ftplib, telnet with Assay's own small client, HTTP Basic and login forms with httpx).

Every probe is rate-limited (one request per `interval` per target), recorded in
`ctx.active_log` (which the runner stores with the scan) and in the facts, so the evidence
shows exactly what was sent. Passwords are never recorded: an attempt is shown by user name
and its position in the default list. Without `ctx.active` the collectors send nothing and
say so in their facts.

Settings: the inventory's `settings.active` block (classes, interval, attempts per service,
a credential list file), handed in as `ctx.active_settings`; `--active` alone switches the
probes on. A credential file that cannot be read or has a bad line stops the active
collectors with one line naming the file and the line; the rest of the scan goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import ftplib
import re
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal
from urllib.parse import urljoin, urlsplit

import httpx
import paramiko
from pydantic import BaseModel, ConfigDict, Field

from scanner.collectors.http import HttpProbeError, WebCollector
from scanner.inventory import ActiveConfig, SafetyClass
from scanner.model import Facts, Target, TargetKind
from scanner.plugins import CollectContext, Collector

Sender = Callable[[str, str, bytes | None], Awaitable[tuple[int, bytes]]]
MAX_CREDENTIAL_FILE = 64 * 1024
MAX_CREDENTIAL_PAIRS = 32
WRITE_DIRS = ("/", "/upload/", "/uploads/", "/webdav/", "/dav/", "/files/")
MAX_UPLOAD_DIRS = 2
TELNET_READ = 4096

DEFAULT_CREDENTIALS: dict[str, list[tuple[str, str]]] = {
    "ssh": [("root", "root"), ("admin", "admin"), ("root", "toor"), ("pi", "raspberry")],
    "ftp": [("admin", "admin"), ("ftp", "ftp"), ("root", "root"), ("user", "user")],
    "telnet": [("admin", "admin"), ("root", "root"), ("admin", "password"), ("user", "user")],
    "http": [("admin", "admin"), ("admin", "password"), ("root", "root"), ("admin", "123456")],
}


class ActiveSettingsError(Exception):
    """The credential list file of `settings.active` is unreadable or invalid."""


class ActiveSettings(BaseModel):
    """What the active collectors run with: the inventory's `ActiveConfig` with its credential
    file read (the built-in short lists for the services the file does not name)."""

    model_config = ConfigDict(extra="forbid")

    classes: list[SafetyClass] = ["safe", "intrusive", "brute"]
    interval: float = Field(default=0.5, ge=0, le=60, description="seconds between probes")
    max_attempts: int = Field(default=3, ge=0, le=10, description="credential tries per service")
    credentials: dict[str, list[tuple[str, str]]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_CREDENTIALS.items()}
    )

    @classmethod
    def from_config(cls, config: ActiveConfig | None) -> ActiveSettings:
        """Settings from the inventory block (None: the defaults)."""
        if config is None:
            return cls()
        creds = {k: list(v) for k, v in DEFAULT_CREDENTIALS.items()}
        if config.credentials is not None:
            creds.update(read_credentials(config.credentials))
        return cls(
            classes=list(config.classes),
            interval=config.interval,
            max_attempts=config.max_attempts,
            credentials=creds,
        )

    def pairs(self, service: str) -> list[tuple[str, str]]:
        return list(self.credentials.get(service, DEFAULT_CREDENTIALS.get(service, [])))[
            : self.max_attempts
        ]


def _settings(own: ActiveSettings | None, ctx: CollectContext) -> ActiveSettings:
    if own is not None:
        return own
    config = ctx.active_settings
    if config is not None and not isinstance(config, ActiveConfig):
        raise ActiveSettingsError(f"settings.active: unexpected {type(config).__name__}")
    return ActiveSettings.from_config(config)


def read_credentials(path: Path) -> dict[str, list[tuple[str, str]]]:
    """The user/password pairs of a credential list file, by service, in file order.

    One pair a line: `service user [password]` separated by blanks (a missing password is
    the empty one; the password is the rest of the line, so it may hold blanks); `#` starts
    a comment line. Errors name the file and line but never echo a line, which holds a
    password.
    """
    where = f"settings.active.credentials {path}"
    try:
        p = path.expanduser()
        if p.stat().st_size > MAX_CREDENTIAL_FILE:
            raise ActiveSettingsError(f"{where}: larger than {MAX_CREDENTIAL_FILE} bytes")
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ActiveSettingsError(f"{where}: file not found") from None
    except IsADirectoryError:
        raise ActiveSettingsError(f"{where}: is a directory, not a credential list") from None
    except UnicodeDecodeError as exc:
        raise ActiveSettingsError(f"{where}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise ActiveSettingsError(f"{where}: cannot read: {exc.strerror or exc}") from None
    out: dict[str, list[tuple[str, str]]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(None, 2)
        service = fields[0].lower()
        if service not in DEFAULT_CREDENTIALS:
            known = ", ".join(DEFAULT_CREDENTIALS)
            shown = repr(fields[0][:20]) if len(fields) > 1 else "the line"
            raise ActiveSettingsError(
                f"{path}:{n} settings.active.credentials: {shown} is not a service "
                f"(one of {known}; a line is 'service user [password]')"
            )
        if len(fields) < 2:
            raise ActiveSettingsError(
                f"{path}:{n} settings.active.credentials: no user name "
                "(a line is 'service user [password]')"
            )
        pairs = out.setdefault(service, [])
        if len(pairs) >= MAX_CREDENTIAL_PAIRS:
            raise ActiveSettingsError(
                f"{path}:{n} settings.active.credentials: more than {MAX_CREDENTIAL_PAIRS} "
                f"pairs for {service} (only max_attempts of them are ever tried)"
            )
        pairs.append((fields[1], fields[2] if len(fields) > 2 else ""))
    return out


class RateLimiter:
    """At most one probe per `interval` seconds (per target: one limiter per collect call)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            loop = asyncio.get_running_loop()
            delay = self._next - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._next = loop.time() + self.interval


# == write methods and upload ======================================================================


class MethodProbe(BaseModel):
    url: str
    method: str
    status: int | None = None
    control_status: int | None = None  # the same path with a made-up method
    handled_without_auth: bool = False
    error: str = ""


class UploadAttempt(BaseModel):
    url: str
    put_status: int | None = None
    stored: bool = False  # a GET returned exactly what was written
    get_status: int | None = None
    delete_status: int | None = None
    deleted: bool = False  # a GET after the DELETE answered 404/410
    error: str = ""


class WebActiveFacts(Facts):
    ran: bool = False
    reason: str = ""  # why nothing (or not everything) ran
    classes: list[str] = Field(default_factory=list)
    method_probes: list[MethodProbe] = Field(default_factory=list)
    uploads: list[UploadAttempt] = Field(default_factory=list)
    log: list[str] = Field(default_factory=list)


def _handled(status: int | None, control: int | None) -> bool:
    """DELETE of a non-existent name was processed (not refused) without credentials, and
    the server does not answer the same to any method whatsoever."""
    if status is None or status in (400, 401, 403, 405, 406, 411, 413, 501):
        return False
    return control != status


class WebActiveCollector(Collector):
    """Write-method probes (safe) and the upload test (intrusive) on one site."""

    id = "web.active"
    target_kind = TargetKind.WEB
    facts_model = WebActiveFacts
    timeout = 60.0

    def __init__(self, settings: ActiveSettings | None = None) -> None:
        self._settings = settings
        self._web = WebCollector()

    def applies(self, target: Target) -> bool:
        return self._web.applies(target)

    async def collect(self, target: Target, ctx: CollectContext) -> WebActiveFacts:
        if not ctx.active:
            return WebActiveFacts(reason="not run: active probes need --active")
        settings = _settings(self._settings, ctx)
        classes: list[str] = [c for c in settings.classes if c in ("safe", "intrusive")]
        facts = WebActiveFacts(ran=bool(classes), classes=classes)
        if not classes:
            facts.reason = "the safe and intrusive classes are switched off in the settings"
            return facts
        start = await self._site_url(self._web.start_url(target), ctx)
        address = ctx.scope.resolve_url_host(start)
        limiter = RateLimiter(settings.interval)

        def log(line: str) -> None:
            facts.log.append(line)
            ctx.active_log.append(f"web.active: {line}")

        async with httpx.AsyncClient(
            timeout=httpx.Timeout(ctx.probe_timeout), trust_env=False, verify=False
        ) as client:

            async def send(method: str, url: str, body: bytes | None = None) -> tuple[int, bytes]:
                await limiter.wait()
                log(f"{method} {url}" + (f" ({len(body)} bytes)" if body else ""))
                extra = {"Content-Type": "text/plain"} if body is not None else {}
                try:
                    resp, got, _ = await self._web._send(
                        client,
                        method,
                        url,
                        address,
                        ctx.probe_timeout,
                        limit=4096,
                        extra=extra,
                        content=body,
                    )
                except HttpProbeError as exc:
                    log(f"  -> {exc}")
                    raise
                log(f"  -> {resp.status_code}")
                return resp.status_code, got

            for d in WRITE_DIRS:
                url = urljoin(start, d) + f"assay-probe-{secrets.token_hex(16)}"
                probe = MethodProbe(url=url, method="DELETE")
                try:
                    probe.status = (await send("DELETE", url))[0]
                    probe.control_status = (await send("ASSAYPROBE", url))[0]
                except HttpProbeError as exc:
                    probe.error = str(exc)
                probe.handled_without_auth = _handled(probe.status, probe.control_status)
                facts.method_probes.append(probe)
            if "intrusive" in classes:
                dirs = [
                    urlsplit(p.url).path.rsplit("/", 1)[0] + "/"
                    for p in facts.method_probes
                    if p.handled_without_auth
                ]
                for d in (dirs or ["/"])[:MAX_UPLOAD_DIRS]:
                    facts.uploads.append(await self._upload(urljoin(start, d), send))
        return facts

    async def _site_url(self, start: str, ctx: CollectContext) -> str:
        """Where the site really is: the end of the in-scope redirects from the start URL
        (probing a redirect-only cleartext port would test nothing)."""
        address = ctx.scope.resolve_url_host(start)
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(ctx.probe_timeout), trust_env=False, verify=False
        ) as client:
            try:
                first = await self._web._get(client, start, address, ctx.probe_timeout)
                walk = await self._web._walk(client, start, first, ctx)
            except HttpProbeError:
                return start
        if walk.final is None:
            return start
        parts = urlsplit(walk.final_url)
        return f"{parts.scheme}://{parts.netloc}/"

    @staticmethod
    async def _upload(directory: str, send: Sender) -> UploadAttempt:
        name = f"assay-upload-test-{secrets.token_hex(12)}.txt"
        url = directory + name
        payload = f"Assay upload test {name}: safe to delete\n".encode()
        up = UploadAttempt(url=url)
        try:
            up.put_status, _ = await send("PUT", url, payload)
            if up.put_status < 300:
                up.get_status, got = await send("GET", url, None)
                up.stored = up.get_status == 200 and got == payload
                up.delete_status, _ = await send("DELETE", url, None)
                after, _ = await send("GET", url, None)
                up.deleted = after in (404, 410)
        except HttpProbeError as exc:
            up.error = str(exc)
        return up


# == default credentials ===========================================================================


class CredentialAttempt(BaseModel):
    service: str  # ssh, ftp, telnet, http-basic, http-form
    username: str
    list_position: int  # 1-based position in the configured list (the password is never kept)
    outcome: Literal["accepted", "rejected", "error"]
    detail: str = ""


class DefaultCredentialFacts(Facts):
    ran: bool = False
    reason: str = ""
    service: str = ""  # which login surface was tried ("" when there was none)
    limit: int = 0
    attempts: list[CredentialAttempt] = Field(default_factory=list)
    log: list[str] = Field(default_factory=list)

    @property
    def accepted(self) -> list[CredentialAttempt]:
        return [a for a in self.attempts if a.outcome == "accepted"]


_TELNET_FAIL = re.compile(rb"incorrect|failed|denied|invalid|bad password", re.I)
_TELNET_OK = re.compile(rb"(?:[$#>%]\s*$)|last login|welcome to", re.I | re.M)
_LOGIN_PROMPT = re.compile(rb"(?:login|user(?:name)?)\s*:\s*$", re.I)
_PASS_PROMPT = re.compile(rb"password\s*:\s*$", re.I)
_HIDDEN = re.compile(
    r"<input\b(?=[^>]*\btype\s*=\s*[\"']?hidden)[^>]*\bname\s*=\s*[\"']?([^\"'\s>]+)[^>]*?"
    r"(?:\bvalue\s*=\s*[\"']?([^\"'>]*))?",
    re.I,
)


def _service_of(target: Target) -> str:
    name = target.service.name if target.service else ""
    if name in ("ssh", "ftp", "telnet"):
        return name
    if not name:
        return {22: "ssh", 21: "ftp", 23: "telnet"}.get(target.port or 0, "")
    return ""


class DefaultCredentialsCollector(Collector):
    """A handful of default passwords against SSH, FTP, telnet and HTTP logins (brute class)."""

    id = "active.credentials"
    target_kind = TargetKind.SERVICE
    facts_model = DefaultCredentialFacts
    timeout = 90.0

    def __init__(self, settings: ActiveSettings | None = None) -> None:
        self._settings = settings
        self._web = WebCollector()

    def applies(self, target: Target) -> bool:
        return bool(_service_of(target)) or self._web.applies(target)

    async def collect(self, target: Target, ctx: CollectContext) -> DefaultCredentialFacts:
        service = _service_of(target) or "http"
        facts = DefaultCredentialFacts(service=service)
        if not ctx.active:
            facts.reason = "not run: default-credential attempts need --active"
            return facts
        settings = _settings(self._settings, ctx)
        if "brute" not in settings.classes:
            facts.reason = "the brute class is switched off in the settings"
            return facts
        facts.ran = True
        facts.limit = settings.max_attempts
        limiter = RateLimiter(settings.interval)

        def log(line: str) -> None:
            facts.log.append(line)
            ctx.active_log.append(f"active.credentials: {line}")

        if service == "http":
            await self._http(target, ctx, settings, limiter, facts, log)
            return facts
        address = str(ctx.scope.ensure_address(target.address or ""))
        port = target.port or 0
        try_one = {"ssh": _ssh_try, "ftp": _ftp_try, "telnet": _telnet_try}[service]
        for i, (user, password) in enumerate(settings.pairs(service), 1):
            await limiter.wait()
            log(f"{service} {address}:{port} user {user!r} (default list #{i})")
            outcome, detail = await try_one(address, port, user, password, ctx.probe_timeout)
            log(f"  -> {outcome}{': ' + detail if detail else ''}")
            facts.attempts.append(
                CredentialAttempt(
                    service=service, username=user, list_position=i, outcome=outcome, detail=detail
                )
            )
            if outcome == "accepted" or (outcome == "error" and "not offered" in detail):
                break
        return facts

    async def _http(
        self,
        target: Target,
        ctx: CollectContext,
        settings: ActiveSettings,
        limiter: RateLimiter,
        facts: DefaultCredentialFacts,
        log: object,
    ) -> None:
        assert callable(log)
        start = self._web.start_url(target)
        address = ctx.scope.resolve_url_host(start)
        pairs = settings.pairs("http")
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(ctx.probe_timeout), trust_env=False, verify=False
        ) as client:
            await limiter.wait()
            log(f"GET {start} (looking for a login)")
            try:
                resp, body, _ = await self._web._send(
                    client, "GET", start, address, ctx.probe_timeout, limit=256 * 1024
                )
            except HttpProbeError as exc:
                facts.reason = f"the login page could not be fetched: {exc}"
                return
            challenge = resp.headers.get("www-authenticate", "").lower()
            if resp.status_code == 401 and challenge.startswith("basic"):
                facts.service = "http-basic"
                for i, (user, password) in enumerate(pairs, 1):
                    await limiter.wait()
                    log(f"GET {start} with Basic user {user!r} (default list #{i})")
                    auth = httpx.BasicAuth(user, password).auth_flow(httpx.Request("GET", start))
                    header = next(auth).headers["Authorization"]
                    try:
                        r, _, _ = await self._web._send(
                            client,
                            "GET",
                            start,
                            address,
                            ctx.probe_timeout,
                            limit=4096,
                            extra={"Authorization": header},
                        )
                        outcome: Literal["accepted", "rejected", "error"] = (
                            "rejected" if r.status_code in (401, 403) else "accepted"
                        )
                        detail = f"status {r.status_code}"
                    except HttpProbeError as exc:
                        outcome, detail = "error", str(exc)
                    log(f"  -> {outcome} ({detail})")
                    facts.attempts.append(
                        CredentialAttempt(
                            service="http-basic",
                            username=user,
                            list_position=i,
                            outcome=outcome,
                            detail=detail,
                        )
                    )
                    if outcome == "accepted":
                        break
                return
            form = _login_form(body.decode("utf-8", "replace"), str(resp.url), start)
            if form is None:
                facts.service = ""
                facts.reason = "no HTTP Basic prompt or login form on the start page"
                return
            facts.service = "http-form"
            action, user_field, pass_field, hidden = form
            try:
                action_address = ctx.scope.resolve_url_host(action)
            except Exception as exc:  # out of scope: the form posts elsewhere
                facts.reason = f"the login form posts outside the scope: {exc}"
                return

            async def post(user: str, password: str) -> tuple[int, str, bool]:
                data = {**hidden, user_field: user, pass_field: password}
                r, b, _ = await self._web._send(
                    client,
                    "POST",
                    action,
                    action_address,
                    ctx.probe_timeout,
                    limit=256 * 1024,
                    extra={"Content-Type": "application/x-www-form-urlencoded"},
                    content=httpx.QueryParams(data).__str__().encode(),
                )
                text = b.decode("utf-8", "replace")
                return r.status_code, r.headers.get("location", ""), _has_password(text)

            await limiter.wait()
            log(f"POST {action} with a random password (baseline for a failed login)")
            try:
                baseline = await post(pairs[0][0] if pairs else "admin", secrets.token_hex(12))
            except HttpProbeError as exc:
                facts.reason = f"the login form could not be submitted: {exc}"
                return
            for i, (user, password) in enumerate(pairs, 1):
                await limiter.wait()
                log(f"POST {action} user {user!r} (default list #{i})")
                try:
                    got = await post(user, password)
                except HttpProbeError as exc:
                    facts.attempts.append(
                        CredentialAttempt(
                            service="http-form",
                            username=user,
                            list_position=i,
                            outcome="error",
                            detail=str(exc),
                        )
                    )
                    continue
                ok = got != baseline and not (got[2] and got[0] == baseline[0])
                outcome = "accepted" if ok else "rejected"
                detail = f"status {got[0]}" + (f", to {got[1]}" if got[1] else "")
                log(f"  -> {outcome} ({detail})")
                facts.attempts.append(
                    CredentialAttempt(
                        service="http-form",
                        username=user,
                        list_position=i,
                        outcome=outcome,
                        detail=detail,
                    )
                )
                if ok:
                    break


def _has_password(text: str) -> bool:
    return bool(re.search(r"<input\b[^>]{0,2048}?\btype\s*=\s*[\"']?password", text, re.I))


def _login_form(
    text: str, page_url: str, start: str
) -> tuple[str, str, str, dict[str, str]] | None:
    """(action URL, user field, password field, hidden fields) of the first login form."""
    from scanner.collectors.webparse import parse_html

    forms, _ = parse_html(text[: 256 * 1024], start)
    for form in forms:
        if not form.has_password or form.method != "post":
            continue
        pw = next(i.name for i in form.inputs if i.type == "password")
        user = next(
            (i.name for i in form.inputs if i.type in ("text", "email") and i.name), "username"
        )
        hidden = {m.group(1): m.group(2) or "" for m in _HIDDEN.finditer(text)}
        return form.action, user, pw, dict(list(hidden.items())[:20])
    return None


# -- SSH, FTP, telnet: one attempt each, in a thread where the library blocks ----------------------


async def _ssh_try(
    address: str, port: int, user: str, password: str, timeout: float
) -> tuple[Literal["accepted", "rejected", "error"], str]:
    def attempt() -> tuple[Literal["accepted", "rejected", "error"], str]:
        try:
            sock = socket.create_connection((address, port), timeout=timeout)
        except OSError as exc:
            return "error", f"cannot connect: {exc}"
        transport = paramiko.Transport(sock)
        transport.banner_timeout = timeout
        transport.auth_timeout = timeout
        try:
            # the host key is not verified: only public default passwords are sent here
            transport.start_client(timeout=timeout)
            transport.auth_password(user, password)
            return ("accepted", "") if transport.is_authenticated() else ("rejected", "")
        except paramiko.BadAuthenticationType as exc:
            return "error", f"password authentication not offered ({', '.join(exc.allowed_types)})"
        except paramiko.AuthenticationException:
            return "rejected", ""
        except (paramiko.SSHException, OSError, EOFError) as exc:
            return "error", f"{type(exc).__name__}: {exc}"
        finally:
            transport.close()
            sock.close()

    return await asyncio.to_thread(attempt)


async def _ftp_try(
    address: str, port: int, user: str, password: str, timeout: float
) -> tuple[Literal["accepted", "rejected", "error"], str]:
    def attempt() -> tuple[Literal["accepted", "rejected", "error"], str]:
        ftp = ftplib.FTP(timeout=timeout)  # line length is bounded by ftplib.FTP.maxline
        try:
            ftp.connect(address, port)
            ftp.login(user, password)
            return "accepted", ""
        except ftplib.error_perm as exc:
            return "rejected", str(exc)[:200]
        except (ftplib.Error, OSError, EOFError) as exc:
            return "error", f"{type(exc).__name__}: {str(exc)[:200]}"
        finally:
            with contextlib.suppress(Exception):
                ftp.close()

    return await asyncio.to_thread(attempt)


def _telnet_filter(data: bytes, reply: bytearray) -> bytes:
    """Strip telnet negotiation, answering every DO with WONT and every WILL with DONT."""
    out = bytearray()
    i = 0
    while i < len(data):
        b = data[i]
        if b == 255 and i + 1 < len(data):
            cmd = data[i + 1]
            if cmd in (251, 252, 253, 254) and i + 2 < len(data):
                opt = data[i + 2]
                if cmd == 253:
                    reply += bytes((255, 252, opt))  # DO -> WONT
                elif cmd == 251:
                    reply += bytes((255, 254, opt))  # WILL -> DONT
                i += 3
                continue
            if cmd == 250:  # subnegotiation: skip to IAC SE
                end = data.find(b"\xff\xf0", i)
                i = len(data) if end < 0 else end + 2
                continue
            i += 2
            continue
        out.append(b)
        i += 1
    return bytes(out)


async def _telnet_try(
    address: str, port: int, user: str, password: str, timeout: float
) -> tuple[Literal["accepted", "rejected", "error"], str]:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout)
    except (OSError, TimeoutError) as exc:
        return "error", f"cannot connect: {exc}"
    seen = b""

    async def until(pattern: re.Pattern[bytes], budget: float) -> bool:
        nonlocal seen
        deadline = time.monotonic() + budget
        while len(seen) < 64 * 1024:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                chunk = await asyncio.wait_for(reader.read(TELNET_READ), left)
            except TimeoutError:
                return False
            if not chunk:
                return False
            reply = bytearray()
            seen += _telnet_filter(chunk, reply)
            if reply:
                writer.write(bytes(reply))
            if pattern.search(seen[-512:]):
                return True
        return False

    try:
        if not await until(_LOGIN_PROMPT, timeout):
            return "error", "no login prompt"
        seen = b""
        writer.write(user.encode() + b"\r\n")
        if not await until(_PASS_PROMPT, timeout):
            return "rejected", "no password prompt after the user name"
        seen = b""
        writer.write(password.encode() + b"\r\n")
        await until(
            re.compile(rb"(?:incorrect|failed|denied|invalid|[$#>%]\s*$|login:\s*$)", re.I | re.M),
            timeout,
        )
        if _TELNET_FAIL.search(seen) or _LOGIN_PROMPT.search(seen[-200:]):
            return "rejected", ""
        if _TELNET_OK.search(seen):
            return "accepted", ""
        return "rejected", "no shell prompt"
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
