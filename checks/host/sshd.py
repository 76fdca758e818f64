"""The effective sshd configuration (`sshd -T`): login, forwarding, crypto, limits, access.

`sshd -T` prints the configuration sshd actually uses, after includes, defaults and the
compiled-in values, so these checks judge what is in force rather than what a file says.
Each row of `RULES` is one registered check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from checks.host._base import bsi, cis, cisv8, iso, make_check, meta, refs
from scanner.gather.facts import HostConfigFacts
from scanner.model import Reference, Result, Severity, failed, passed
from scanner.plugins import NoParams

SSHD = ("sshd",)
CONF = "/etc/ssh/sshd_config (or a file in /etc/ssh/sshd_config.d/)"


def _value(h: HostConfigFacts, key: str) -> str | None:
    values = h.sshd.get(key)
    return values[0] if values else None


def _reload(line: str) -> str:
    return f"# {CONF}\n{line}\n\n# then\nsshd -t && systemctl reload ssh"


@dataclass(frozen=True)
class Rule:
    name: str
    key: str
    title: str
    severity: Severity
    rationale: str
    line: str  # the sshd_config line that fixes it
    judge: Callable[[HostConfigFacts, Any], Result]
    references: tuple[Reference, ...]
    params: type[BaseModel] = NoParams


def want(key: str, *good: str) -> Callable[[HostConfigFacts, Any], Result]:
    def judge(h: HostConfigFacts, p: Any) -> Result:
        v = _value(h, key)
        shown = v if v is not None else "(not reported)"
        if v is not None and v.lower() in good:
            return passed(f"{key} is {v}", value=v)
        return failed(f"{key} is {shown}; expected {' or '.join(good)}", value=shown)

    return judge


def at_most(
    key: str, default: int, minimum: int = 0
) -> tuple[Callable[[HostConfigFacts, Any], Result], type[BaseModel]]:
    params: type[BaseModel] = create_model(
        f"{key.capitalize()}Params",
        __config__=ConfigDict(extra="forbid"),
        maximum=(int, Field(default=default, ge=0, description=f"Largest accepted {key}")),
    )

    def judge(h: HostConfigFacts, p: Any) -> Result:
        v = _value(h, key)
        try:
            n = int(v or "")
        except ValueError:
            return failed(f"{key} is {v or '(not reported)'}; expected a number", value=v)
        if n < minimum or n > p.maximum or (minimum > 0 and n == 0):
            low = f"between {max(minimum, 1)} and " if minimum else "at most "
            return failed(f"{key} is {n}; expected {low}{p.maximum}", value=n)
        return passed(f"{key} is {n} (at most {p.maximum})", value=n)

    return judge, params


# Algorithms with known weaknesses (SHA-1, MD5, 64-bit tags, CBC/3DES/RC4/Blowfish, small or
# fixed 1024-bit DH groups, DSA host keys).
WEAK = {
    "ciphers": ("-cbc", "3des", "arcfour", "blowfish", "cast128", "rijndael"),
    "macs": ("md5", "hmac-sha1", "umac-64", "ripemd", "-96"),
    "kexalgorithms": (
        "group1-sha1",
        "group14-sha1",
        "group-exchange-sha1",
        "gss-",
        "ecdh-sha2-nistp",
    ),
    "hostkeyalgorithms": ("ssh-dss", "ssh-rsa", "ssh-rsa-cert"),
}
# CIS names ecdh-sha2-nistp* as acceptable; BSI TR-02102-4 too. Only SHA-1 and weak groups
# are refused by default: the NIST-curve entries are listed but opt-in through the parameter.
DEFAULT_WEAK = {
    "ciphers": WEAK["ciphers"],
    "macs": WEAK["macs"],
    "kexalgorithms": ("group1-sha1", "group14-sha1", "group-exchange-sha1", "gss-"),
    "hostkeyalgorithms": ("ssh-dss", "ssh-rsa"),
}


def weak_algorithms(key: str) -> tuple[Callable[[HostConfigFacts, Any], Result], type[BaseModel]]:
    params: type[BaseModel] = create_model(
        f"{key.capitalize()}Params",
        __config__=ConfigDict(extra="forbid"),
        refuse=(
            list[str],
            Field(
                default_factory=lambda: list(DEFAULT_WEAK[key]),
                description="Substrings that mark an algorithm as weak",
            ),
        ),
    )

    def judge(h: HostConfigFacts, p: Any) -> Result:
        v = _value(h, key)
        if v is None:
            return failed(f"{key} is not reported by sshd -T", value=None)
        algs = [a for a in v.split(",") if a]
        # ssh-rsa means RSA with SHA-1 signatures; the cert and sk variants follow the same rule
        bad = [
            a
            for a in algs
            if any(
                (w == a or a.startswith(w + "-cert")) if w in ("ssh-rsa", "ssh-dss") else w in a
                for w in p.refuse
            )
        ]
        if bad:
            return failed(f"{key} offers weak algorithms: {', '.join(bad)}", weak=bad, offered=algs)
        return passed(f"{key} offers only strong algorithms", offered=algs)

    return judge, params


def access_limited(h: HostConfigFacts, p: Any) -> Result:
    found = {
        k: h.sshd[k]
        for k in ("allowusers", "allowgroups", "denyusers", "denygroups")
        if h.sshd.get(k)
    }
    if found:
        return passed("SSH logins are limited by " + ", ".join(found), limits=found)
    return failed(
        "no AllowUsers, AllowGroups, DenyUsers or DenyGroups: every account may log in over SSH"
    )


def root_login(h: HostConfigFacts, p: Any) -> Result:
    v = (_value(h, "permitrootlogin") or "(not reported)").lower()
    if v == "no":
        return passed("PermitRootLogin is no", value=v)
    if v in ("without-password", "prohibit-password", "forced-commands-only") and p.allow_key_only:
        return passed(
            f"PermitRootLogin is {v} (key-only root login allowed by the policy)", value=v
        )
    return failed(f"PermitRootLogin is {v}; expected no", value=v)


class RootLoginParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    allow_key_only: bool = Field(
        default=False, description="Accept prohibit-password (root with a key only)"
    )


def client_alive(h: HostConfigFacts, p: Any) -> Result:
    try:
        interval = int(_value(h, "clientaliveinterval") or "0")
        count = int(_value(h, "clientalivecountmax") or "0")
    except ValueError:
        return failed("ClientAliveInterval/ClientAliveCountMax are not numbers")
    if 0 < interval <= p.max_interval and 0 < count <= p.max_count:
        return passed(
            f"idle sessions end after about {interval * count}s", interval=interval, count=count
        )
    return failed(
        f"ClientAliveInterval {interval}, ClientAliveCountMax {count}: idle sessions are not "
        f"ended (expected 1-{p.max_interval}s and 1-{p.max_count})",
        interval=interval,
        count=count,
    )


class ClientAliveParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_interval: int = Field(default=300, ge=1)
    max_count: int = Field(default=3, ge=1)


def max_startups(h: HostConfigFacts, p: Any) -> Result:
    v = _value(h, "maxstartups") or ""
    parts = v.split(":")
    try:
        nums = [int(x) for x in parts]
    except ValueError:
        return failed(f"MaxStartups is {v!r}; expected start:rate:full", value=v)
    start, full = nums[0], nums[-1]
    if start <= 10 and full <= p.max_full:
        return passed(f"MaxStartups is {v}", value=v)
    return failed(f"MaxStartups is {v}; expected at most 10:30:{p.max_full}", value=v)


class MaxStartupsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_full: int = Field(default=60, ge=1)


def loglevel(h: HostConfigFacts, p: Any) -> Result:
    v = (_value(h, "loglevel") or "").upper()
    if v in ("INFO", "VERBOSE"):
        return passed(f"LogLevel is {v}", value=v)
    return failed(f"LogLevel is {v or '(not reported)'}; expected INFO or VERBOSE", value=v)


def banner(h: HostConfigFacts, p: Any) -> Result:
    v = _value(h, "banner") or "none"
    if v.lower() != "none":
        return passed(f"a pre-login banner is shown ({v})", value=v)
    return failed("no pre-login warning banner is configured", value=v)


def forwarding(key: str) -> Callable[[HostConfigFacts, Any], Result]:
    inner = want(key, "no")

    def judge(h: HostConfigFacts, p: Any) -> Result:
        if (_value(h, "disableforwarding") or "").lower() == "yes":
            return passed("DisableForwarding yes turns every kind of forwarding off")
        return inner(h, p)

    return judge


_mat, _mat_p = at_most("maxauthtries", 4)
_lgt, _lgt_p = at_most("logingracetime", 60, minimum=1)
_ms, _ms_p = at_most("maxsessions", 10)

_C = refs(bsi("CON.1.A1", "SYS.1.3.A8"), iso("A.8.24"), cisv8("3.10"))

RULES: tuple[Rule, ...] = (
    Rule(
        "root_login",
        "permitrootlogin",
        "SSH does not accept root logins",
        Severity.HIGH,
        "Direct root logins leave no trace of which administrator acted and make root the one "
        "account every password-guessing attack aims at; administrators should log in as "
        "themselves and escalate with sudo.",
        "PermitRootLogin no",
        root_login,
        refs(cis("5.1.20"), bsi("SYS.1.3.A8"), iso("A.8.2", "A.8.5"), cisv8("5.4")),
        RootLoginParams,
    ),
    Rule(
        "password_auth",
        "passwordauthentication",
        "SSH does not accept password logins",
        Severity.HIGH,
        "Passwords can be guessed, phished and reused; key or certificate logins resist online "
        "guessing, which every Internet-facing SSH server receives.",
        "PasswordAuthentication no",
        want("passwordauthentication", "no"),
        refs(bsi("SYS.1.3.A8"), iso("A.8.5"), cisv8("6.5")),
    ),
    Rule(
        "kbd_interactive",
        "kbdinteractiveauthentication",
        "SSH keyboard-interactive login is off",
        Severity.MEDIUM,
        "With PAM, keyboard-interactive authentication asks for the account password, so it "
        "reopens password logins even when PasswordAuthentication is off.",
        "KbdInteractiveAuthentication no",
        want("kbdinteractiveauthentication", "no"),
        refs(bsi("SYS.1.3.A8"), iso("A.8.5")),
    ),
    Rule(
        "max_auth_tries",
        "maxauthtries",
        "SSH limits authentication attempts per connection",
        Severity.MEDIUM,
        "A low MaxAuthTries slows password guessing and makes failed attempts visible in the "
        "log sooner.",
        "MaxAuthTries 4",
        _mat,
        refs(cis("5.1.16"), bsi("SYS.1.1.A2"), iso("A.8.5"), cisv8("4.1")),
        _mat_p,
    ),
    Rule(
        "login_grace_time",
        "logingracetime",
        "SSH drops unauthenticated connections within a minute",
        Severity.LOW,
        "Connections that never authenticate hold server slots; a short grace time limits "
        "the resources an unauthenticated client can keep busy.",
        "LoginGraceTime 60",
        _lgt,
        refs(cis("5.1.13"), iso("A.8.5"), cisv8("4.1")),
        _lgt_p,
    ),
    Rule(
        "max_sessions",
        "maxsessions",
        "SSH limits sessions per connection",
        Severity.LOW,
        "Limiting multiplexed sessions per connection limits what one stolen connection can do "
        "and the resources one client takes.",
        "MaxSessions 10",
        _ms,
        refs(cis("5.1.17"), iso("A.8.5")),
        _ms_p,
    ),
    Rule(
        "max_startups",
        "maxstartups",
        "SSH limits concurrent unauthenticated connections",
        Severity.LOW,
        "MaxStartups drops excess unauthenticated connections early, which blunts connection "
        "floods and parallel guessing.",
        "MaxStartups 10:30:60",
        max_startups,
        refs(cis("5.1.18"), iso("A.8.5")),
        MaxStartupsParams,
    ),
    Rule(
        "client_alive",
        "clientaliveinterval",
        "SSH ends idle sessions",
        Severity.LOW,
        "An abandoned administrative session is an open door on an unlocked workstation; "
        "ClientAlive settings end sessions whose client has gone.",
        "ClientAliveInterval 300\nClientAliveCountMax 3",
        client_alive,
        refs(cis("5.1.7"), bsi("SYS.1.1.A2"), iso("A.8.5")),
        ClientAliveParams,
    ),
    Rule(
        "x11_forwarding",
        "x11forwarding",
        "SSH X11 forwarding is off",
        Severity.LOW,
        "X11 forwarding exposes the client's display to the server; a compromised server can "
        "read keystrokes and screen contents of the connecting administrator.",
        "X11Forwarding no",
        forwarding("x11forwarding"),
        refs(cis("5.1.9"), iso("A.8.9"), cisv8("4.8")),
    ),
    Rule(
        "tcp_forwarding",
        "allowtcpforwarding",
        "SSH TCP forwarding is off",
        Severity.MEDIUM,
        "TCP forwarding turns any SSH account into a tunnel through the firewall, past the "
        "unit's network controls.",
        "AllowTcpForwarding no",
        forwarding("allowtcpforwarding"),
        refs(cis("5.1.9"), iso("A.8.20"), cisv8("4.8")),
    ),
    Rule(
        "agent_forwarding",
        "allowagentforwarding",
        "SSH agent forwarding is off",
        Severity.LOW,
        "A forwarded agent lets anyone with root on the server use the administrator's keys "
        "to log in elsewhere while the session lasts.",
        "AllowAgentForwarding no",
        forwarding("allowagentforwarding"),
        refs(iso("A.8.5"), cisv8("4.8")),
    ),
    Rule(
        "tunnel",
        "permittunnel",
        "SSH tun/tap tunnelling is off",
        Severity.LOW,
        "tun/tap forwarding connects whole networks through an SSH session, bypassing "
        "network segmentation.",
        "PermitTunnel no",
        want("permittunnel", "no"),
        refs(iso("A.8.20", "A.8.22")),
    ),
    Rule(
        "gateway_ports",
        "gatewayports",
        "SSH forwarded ports are not opened to other hosts",
        Severity.LOW,
        "GatewayPorts lets a remote forward listen on all interfaces, publishing internal "
        "services to the network.",
        "GatewayPorts no",
        want("gatewayports", "no"),
        refs(iso("A.8.20")),
    ),
    Rule(
        "empty_passwords",
        "permitemptypasswords",
        "SSH refuses accounts with empty passwords",
        Severity.CRITICAL,
        "An account without a password would be open to anyone who can reach the SSH port.",
        "PermitEmptyPasswords no",
        want("permitemptypasswords", "no"),
        refs(cis("5.1.19"), iso("A.8.5"), cisv8("5.2")),
    ),
    Rule(
        "hostbased_auth",
        "hostbasedauthentication",
        "SSH host-based authentication is off",
        Severity.MEDIUM,
        "Host-based trust lets a compromise of one host become a login on another without any "
        "user credential.",
        "HostbasedAuthentication no",
        want("hostbasedauthentication", "no"),
        refs(cis("5.1.10"), iso("A.8.5")),
    ),
    Rule(
        "ignore_rhosts",
        "ignorerhosts",
        "SSH ignores .rhosts files",
        Severity.MEDIUM,
        ".rhosts and .shosts files let users grant password-less access to their account from "
        "other hosts, outside any administrator's control.",
        "IgnoreRhosts yes",
        want("ignorerhosts", "yes"),
        refs(cis("5.1.11"), iso("A.8.5")),
    ),
    Rule(
        "user_environment",
        "permituserenvironment",
        "SSH does not read user environment files",
        Severity.LOW,
        "PermitUserEnvironment lets users set variables such as LD_PRELOAD for sshd-started "
        "processes, which can bypass access restrictions.",
        "PermitUserEnvironment no",
        want("permituserenvironment", "no"),
        refs(cis("5.1.21"), iso("A.8.2")),
    ),
    Rule(
        "use_pam",
        "usepam",
        "SSH uses PAM",
        Severity.LOW,
        "Without PAM, account lockout, password ageing and session limits configured in PAM do "
        "not apply to SSH logins.",
        "UsePAM yes",
        want("usepam", "yes"),
        refs(cis("5.1.22"), iso("A.8.5")),
    ),
    Rule(
        "strict_modes",
        "strictmodes",
        "SSH checks the permissions of users' key files",
        Severity.LOW,
        "StrictModes refuses a login whose authorized_keys another user could write, which "
        "would let that user add their own key.",
        "StrictModes yes",
        want("strictmodes", "yes"),
        refs(iso("A.8.5")),
    ),
    Rule(
        "log_level",
        "loglevel",
        "SSH logs logins at INFO or VERBOSE",
        Severity.LOW,
        "Login records are the first evidence after an intrusion; VERBOSE also records the key "
        "fingerprint used, which ties a login to a key.",
        "LogLevel VERBOSE",
        loglevel,
        refs(cis("5.1.14"), bsi("OPS.1.1.5.A3"), iso("A.8.15"), cisv8("8.2")),
    ),
    Rule(
        "banner",
        "banner",
        "SSH shows a warning banner before login",
        Severity.INFO,
        "A legal notice before login states that access is restricted and monitored, which some "
        "jurisdictions need before intrusions can be prosecuted.",
        "Banner /etc/issue.net",
        banner,
        refs(cis("5.1.5"), iso("A.5.10")),
    ),
    Rule(
        "access",
        "allowusers",
        "SSH logins are limited to named users or groups",
        Severity.MEDIUM,
        "Limiting SSH to an administrators' group keeps service and forgotten accounts from "
        "being used for remote login.",
        "AllowGroups sshusers",
        access_limited,
        refs(cis("5.1.4"), bsi("SYS.1.3.A8"), iso("A.8.2", "A.8.5"), cisv8("6.8")),
    ),
    Rule(
        "ciphers",
        "ciphers",
        "SSH offers only strong ciphers",
        Severity.MEDIUM,
        "CBC-mode, 3DES, RC4 and Blowfish ciphers have practical attacks or too-small blocks; "
        "AEAD ciphers (ChaCha20-Poly1305, AES-GCM) and AES-CTR are current.",
        "Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,"
        "aes256-ctr,aes192-ctr,aes128-ctr",
        weak_algorithms("ciphers")[0],
        refs(cis("5.1.6"), _C),
        weak_algorithms("ciphers")[1],
    ),
    Rule(
        "macs",
        "macs",
        "SSH offers only strong MACs",
        Severity.MEDIUM,
        "MD5, SHA-1 and 64-bit-tag MACs no longer give the integrity margin current guidance "
        "asks for; encrypt-then-MAC SHA-2 MACs do.",
        "MACs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,"
        "hmac-sha2-512,hmac-sha2-256",
        weak_algorithms("macs")[0],
        refs(cis("5.1.15"), _C),
        weak_algorithms("macs")[1],
    ),
    Rule(
        "kex",
        "kexalgorithms",
        "SSH offers only strong key exchange",
        Severity.MEDIUM,
        "Key exchange with SHA-1 or the 1024-bit Oakley group can be broken or downgraded by a "
        "well-resourced attacker; Curve25519, sntrup761 and SHA-2 DH groups are current.",
        "KexAlgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,"
        "curve25519-sha256@libssh.org,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,"
        "diffie-hellman-group-exchange-sha256",
        weak_algorithms("kexalgorithms")[0],
        refs(cis("5.1.12"), _C),
        weak_algorithms("kexalgorithms")[1],
    ),
    Rule(
        "host_key_algorithms",
        "hostkeyalgorithms",
        "SSH host keys use no DSA or SHA-1 RSA signatures",
        Severity.LOW,
        "DSA keys are limited to 1024 bits and ssh-rsa signs with SHA-1; Ed25519, ECDSA and "
        "rsa-sha2 signatures are current.",
        "HostKeyAlgorithms ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512,rsa-sha2-256",
        weak_algorithms("hostkeyalgorithms")[0],
        refs(_C),
        weak_algorithms("hostkeyalgorithms")[1],
    ),
)


def _register() -> None:
    for r in RULES:
        make_check(
            meta(
                id=f"host.sshd.{r.name}",
                title=r.title,
                severity=r.severity,
                rationale=r.rationale,
                fix=f"Set `{r.line.splitlines()[0]}` in the sshd configuration and reload sshd.",
                snippet=_reload(r.line),
                verify=f"`sshd -T | grep -i '^{r.key} '` shows the new value.",
                references=r.references,
                lang="sshd_config",
                tags=("sshd",),
            ),
            SSHD,
            r.judge,
            r.params,
            globals(),
        )


_register()
