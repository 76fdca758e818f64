"""Configuration of services found on the host: nginx TLS and version disclosure, vsftpd
anonymous access and TLS, Redis authentication, bind address and protected mode.

These read the service's own configuration (nginx -T, vsftpd.conf, redis.conf), so they also
cover services that a network scan cannot reach from where Assay runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from checks.host._base import HostCheck, bsi, cis, cisv8, iso, meta, refs
from scanner.gather.facts import HostConfigFacts, NginxServer
from scanner.model import Result, Severity, error, failed, not_applicable, passed

LEGACY = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1")


def _version(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3])


def _label(s: NginxServer) -> str:
    name = next((n for n in s.names if n not in ("_", "")), "default")
    return f"{name} ({', '.join(s.listen)})"


def _nginx(h: HostConfigFacts) -> Result | None:
    if h.nginx is None:
        return not_applicable("nginx is not installed on this host")
    if h.nginx.error:
        return error(f"nginx -T output could not be read: {h.nginx.error}")
    return None


class NginxTlsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refuse: list[str] = Field(default_factory=lambda: list(LEGACY), description="Protocols refused")


class NginxTls(HostCheck):
    meta = meta(
        id="host.svc.nginx_tls",
        title="nginx serves TLS 1.2 or newer only",
        severity=Severity.HIGH,
        rationale="SSLv3, TLS 1.0 and TLS 1.1 have known attacks (POODLE, BEAST) and are "
        "deprecated by RFC 8996; browsers no longer need them.",
        fix="Set ssl_protocols to TLSv1.2 TLSv1.3 in the http block (and remove older "
        "overrides in server blocks).",
        snippet="# /etc/nginx/nginx.conf, http { ... }\nssl_protocols TLSv1.2 TLSv1.3;\n\nnginx "
        "-t && systemctl reload nginx",
        verify="`nginx -T 2>/dev/null | grep ssl_protocols` shows only TLSv1.2 TLSv1.3.",
        references=refs(bsi("APP.3.2.A11", "CON.1.A1"), iso("A.8.24"), cisv8("3.10")),
        lang="nginx",
        tags=("nginx", "tls"),
    )
    Params = NginxTlsParams
    sections = ("nginx",)

    def judge(self, h: HostConfigFacts, p: NginxTlsParams) -> Iterable[Result]:
        gated = _nginx(h)
        if gated:
            return [gated]
        assert h.nginx is not None
        tls = [s for s in h.nginx.servers if s.tls]
        if not tls:
            return [not_applicable("nginx has no TLS server block")]
        new_default = _version(h.nginx.version) >= (1, 23, 4)
        out = []
        for s in tls:
            protocols: tuple[str, ...]
            if s.protocols is None:
                protocols = (
                    ("TLSv1.2", "TLSv1.3")
                    if new_default
                    else ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
                )
                how = f"build default of nginx {h.nginx.version or '?'}"
            else:
                protocols, how = s.protocols, "configured"
            bad = [x for x in protocols if x in p.refuse]
            if bad:
                out.append(
                    failed(
                        f"{_label(s)} allows {', '.join(bad)} ({how})",
                        detail=_label(s),
                        protocols=list(protocols),
                    )
                )
            else:
                out.append(
                    passed(
                        f"{_label(s)} allows {' '.join(protocols)} ({how})",
                        detail=_label(s),
                        protocols=list(protocols),
                    )
                )
        return out


class NginxServerTokens(HostCheck):
    meta = meta(
        id="host.svc.nginx_server_tokens",
        title="nginx does not disclose its version",
        severity=Severity.LOW,
        rationale="The version in the Server header and on error pages tells an attacker which "
        "known vulnerabilities to try.",
        fix="Set server_tokens off in the http block.",
        snippet="# /etc/nginx/nginx.conf, http { ... }\nserver_tokens off;\n\nnginx -t && "
        "systemctl reload nginx",
        verify="`curl -sI http://HOST/ | grep -i ^server` shows 'nginx' without a version.",
        references=refs(bsi("APP.3.2.A12", "SYS.1.3.A14"), iso("A.8.9"), cisv8("4.1")),
        lang="nginx",
        tags=("nginx",),
    )
    sections = ("nginx",)

    def judge(self, h: HostConfigFacts, p: Any) -> Iterable[Result]:
        gated = _nginx(h)
        if gated:
            return [gated]
        assert h.nginx is not None
        if not h.nginx.servers:
            return [not_applicable("nginx has no server block")]
        bad = [_label(s) for s in h.nginx.servers if s.server_tokens not in ("off",)]
        if bad:
            return [failed(f"server_tokens is not off for {', '.join(bad)}", servers=bad)]
        return [passed(f"server_tokens off for all {len(h.nginx.servers)} servers")]


class NginxHsts(HostCheck):
    meta = meta(
        id="host.svc.nginx_hsts",
        title="nginx TLS sites send Strict-Transport-Security",
        severity=Severity.LOW,
        rationale="Without HSTS the first request of a visitor can be downgraded to cleartext "
        "HTTP by anyone on the path.",
        fix="Add the HSTS header to every TLS server block.",
        snippet='add_header Strict-Transport-Security "max-age=63072000" always;',
        verify="`curl -sI https://HOST/ | grep -i strict-transport-security` shows the header.",
        references=refs(bsi("APP.3.2.A11"), iso("A.8.24"), cisv8("3.10")),
        lang="nginx",
        tags=("nginx", "tls"),
    )
    sections = ("nginx",)

    def judge(self, h: HostConfigFacts, p: Any) -> Iterable[Result]:
        gated = _nginx(h)
        if gated:
            return [gated]
        assert h.nginx is not None
        tls = [s for s in h.nginx.servers if s.tls]
        if not tls:
            return [not_applicable("nginx has no TLS server block")]
        return [
            (passed if s.hsts else failed)(
                f"{_label(s)} {'sends' if s.hsts else 'does not send'} HSTS", detail=_label(s)
            )
            for s in tls
        ]


def _vsftpd(h: HostConfigFacts) -> Result | None:
    if "vsftpd" not in h.packages and not h.vsftpd:
        return not_applicable("vsftpd is not installed on this host")
    if not h.vsftpd:
        return error("vsftpd is installed but no vsftpd.conf was found")
    return None


class VsftpdAnonymous(HostCheck):
    meta = meta(
        id="host.svc.vsftpd_anonymous",
        title="vsftpd refuses anonymous logins",
        severity=Severity.HIGH,
        rationale="Anonymous FTP lets anyone read (and with write_enable, store) files; "
        "vsftpd's built-in default is to allow it when the setting is missing.",
        fix="Set anonymous_enable=NO in vsftpd.conf and restart vsftpd.",
        snippet="sed -i 's/^anonymous_enable=.*/anonymous_enable=NO/' /etc/vsftpd.conf\n"
        "systemctl restart vsftpd",
        verify="`grep ^anonymous_enable /etc/vsftpd.conf` shows NO.",
        references=refs(cis("2.1.7"), bsi("APP.3.2.A1"), iso("A.8.3", "A.8.5"), cisv8("3.3")),
        tags=("ftp",),
    )
    sections = ("vsftpd", "packages")

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        gated = _vsftpd(h)
        if gated:
            return gated
        v = h.vsftpd.get("anonymous_enable", "YES (built-in default)")
        if v.upper() == "NO":
            return passed("anonymous_enable=NO")
        return failed(f"anonymous_enable={v}", value=v)


class VsftpdTls(HostCheck):
    meta = meta(
        id="host.svc.vsftpd_tls",
        title="vsftpd requires TLS for logins",
        severity=Severity.MEDIUM,
        rationale="FTP without TLS sends user names and passwords in cleartext.",
        fix="Enable TLS and force it for logins and data.",
        snippet="ssl_enable=YES\nforce_local_logins_ssl=YES\nforce_local_data_ssl=YES\n"
        "rsa_cert_file=/etc/ssl/certs/ftp.pem\nrsa_private_key_file=/etc/ssl/private/ftp.key",
        verify="`grep -E '^(ssl_enable|force_local_logins_ssl)' /etc/vsftpd.conf` shows YES.",
        references=refs(bsi("SYS.1.3.A8"), iso("A.8.24"), cisv8("3.10")),
        tags=("ftp", "tls"),
    )
    sections = ("vsftpd", "packages")

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        gated = _vsftpd(h)
        if gated:
            return gated
        ssl = h.vsftpd.get("ssl_enable", "NO").upper() == "YES"
        forced = h.vsftpd.get("force_local_logins_ssl", "YES").upper() == "YES"
        if ssl and forced:
            return passed("TLS is enabled and required for logins")
        return failed(
            "TLS is " + ("not required for logins" if ssl else "not enabled (ssl_enable=NO)")
        )


def _redis(h: HostConfigFacts) -> Result | None:
    if "redis-server" not in h.packages and "redis" not in h.packages and not h.redis:
        return not_applicable("Redis is not installed on this host")
    if not h.redis.get("=="):
        return error("Redis is installed but no redis.conf was readable")
    return None


class RedisRequirepass(HostCheck):
    meta = meta(
        id="host.svc.redis_requirepass",
        title="Redis requires a password",
        severity=Severity.HIGH,
        rationale="Redis without a password runs commands for any client that reaches it, "
        "including CONFIG SET, which writes files as the redis user.",
        fix="Set requirepass (or ACL users with passwords) in redis.conf.",
        snippet="# /etc/redis/redis.conf\nrequirepass <long random secret: openssl rand -base64 "
        "32>\n"
        "systemctl restart redis-server",
        verify="`redis-cli PING` answers NOAUTH.",
        references=refs(bsi("APP.4.3.A3"), iso("A.8.5"), cisv8("3.3")),
        lang="redis.conf",
        tags=("redis",),
    )
    sections = ("redis", "packages")

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        gated = _redis(h)
        if gated:
            return gated
        if h.redis.get("requirepass_set"):
            return passed("requirepass is set")
        users = h.redis.get("user", [])
        default = [u for u in users if u.split()[:1] == ["default"]]
        if (
            default
            and "nopass" not in default[0]
            and (" off" in f" {default[0]}" or "<secret>" in default[0])
        ):
            return passed("the default ACL user is off or has a password")
        return failed("no requirepass and the default user has no password")


class RedisBind(HostCheck):
    meta = meta(
        id="host.svc.redis_bind",
        title="Redis listens only on internal addresses",
        severity=Severity.HIGH,
        rationale="Without a bind line Redis listens on every interface; Redis was built for "
        "trusted networks.",
        fix="Bind Redis to loopback or the internal address its clients use.",
        snippet="# /etc/redis/redis.conf\nbind 127.0.0.1 -::1",
        verify="`ss -tlnp | grep 6379` shows only loopback or internal addresses.",
        references=refs(bsi("NET.1.1.A8"), iso("A.8.20"), cisv8("4.4", "12.2")),
        lang="redis.conf",
        tags=("redis",),
    )
    sections = ("redis", "packages")

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        gated = _redis(h)
        if gated:
            return gated
        binds = " ".join(h.redis.get("bind", []))
        if not binds:
            return failed("no bind line: Redis listens on every interface")
        wide = [a for a in binds.split() if a.lstrip("-") in ("0.0.0.0", "*", "::", "::*")]
        if wide:
            return failed(f"bind {binds}: listens on every interface", bind=binds)
        return passed(f"bind {binds}", bind=binds)


class RedisProtectedMode(HostCheck):
    meta = meta(
        id="host.svc.redis_protected_mode",
        title="Redis protected mode is on",
        severity=Severity.MEDIUM,
        rationale="Protected mode refuses non-loopback clients while no password is set, the "
        "last line of defence for a misconfigured Redis.",
        fix="Set protected-mode yes.",
        snippet="# /etc/redis/redis.conf\nprotected-mode yes",
        verify="`redis-cli CONFIG GET protected-mode` shows yes.",
        references=refs(bsi("APP.4.3.A3"), iso("A.8.20")),
        lang="redis.conf",
        tags=("redis",),
    )
    sections = ("redis", "packages")

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        gated = _redis(h)
        if gated:
            return gated
        v = (h.redis.get("protected-mode") or ["yes"])[-1].lower()
        if v == "no":
            return failed("protected-mode is no")
        return passed(f"protected-mode is {v}")
