"""Passwords: hashing, ageing (login.defs and /etc/shadow), umask, and PAM password quality,
lock-out, history and empty passwords. Debian keeps PAM in common-auth/common-password, the
RHEL family in system-auth/password-auth; both are read.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from checks.host._base import HostCheck, bsi, cis, cisv8, iso, meta, refs
from scanner.gather.facts import HostConfigFacts
from scanner.model import Result, Severity, failed, not_applicable, passed

_PW = refs(bsi("ORP.4.A8", "SYS.1.1.A2"), iso("A.5.17", "A.8.5"), cisv8("5.2"))
PAM_AUTH = ("pam.d/common-auth", "pam.d/system-auth", "pam.d/password-auth")
PAM_PASSWORD = ("pam.d/common-password", "pam.d/system-auth", "pam.d/password-auth")


def _pam_lines(h: HostConfigFacts, files: tuple[str, ...], kind: str) -> list[tuple[str, str]]:
    out = []
    for f in files:
        for ln in h.pam_map.get(f, []):
            if ln.split(None, 1)[0:1] == [kind] or ln.startswith(f"-{kind}"):
                out.append((f, ln))
    return out


def _args(line: str, module: str) -> dict[str, str]:
    words = line.split()
    try:
        i = next(i for i, w in enumerate(words) if w.endswith(module))
    except StopIteration:
        return {}
    out = {}
    for w in words[i + 1 :]:
        k, _, v = w.partition("=")
        out[k] = v
    return out


def _conf(h: HostConfigFacts, *names: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in names:
        for key, lines in h.pam_map.items():
            if key == name or (name.endswith(".d/") and key.startswith(name)):
                for ln in lines:
                    k, sep, v = ln.partition("=")
                    if sep:
                        out[k.strip()] = v.strip()
                    elif ln.strip():
                        out[ln.strip()] = ""
    return out


class HashScheme(HostCheck):
    meta = meta(
        id="host.accounts.hash_scheme",
        title="Passwords are hashed with yescrypt or SHA-512",
        severity=Severity.HIGH,
        rationale="DES and MD5 crypt hashes are cracked in minutes on one graphics card; "
        "yescrypt and SHA-512 crypt are the current schemes.",
        fix="Set ENCRYPT_METHOD YESCRYPT (or SHA512) and make the listed users change their "
        "passwords.",
        snippet="sed -i 's/^ENCRYPT_METHOD.*/ENCRYPT_METHOD YESCRYPT/' /etc/login.defs\n"
        "passwd -e ACCOUNT   # forces a new password, hashed with the new scheme",
        verify="`awk -F: '$2 ~ /^\\$(1|2a)\\$/ || ($2 !~ /^[$!*]/ && $2 != \"\")' /etc/shadow` "
        "prints nothing.",
        references=refs(cis("5.4.1.4"), _PW),
        tags=("passwords",),
    )
    sections = ("shadow",)

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        strong = {"y", "gy", "6", "7", "2b", "2y"}
        bad = [
            f"{a.name} ({a.scheme or '?'})"
            for a in h.accounts
            if a.pw_state == "hash" and a.scheme not in strong
        ]
        if bad:
            return failed(f"weak password hashes: {', '.join(bad)}", accounts=bad)
        n = sum(a.pw_state == "hash" for a in h.accounts)
        return passed(f"{n} password hashes, all strong schemes")


# -- password ageing ------------------------------------------------------------------------


class MaxDaysParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_days: int = Field(default=365, ge=1, description="Longest accepted password lifetime")


def _defs_int(h: HostConfigFacts, key: str) -> int | None:
    try:
        return int(h.login_defs[key])
    except (KeyError, ValueError):
        return None


class MaxDays(HostCheck):
    meta = meta(
        id="host.passwords.max_days",
        title="Passwords expire (PASS_MAX_DAYS)",
        severity=Severity.LOW,
        rationale="A password that never expires stays valid after it has leaked; the "
        "benchmark asks for at most 365 days (TCVN asks 60 days for administrators).",
        fix="Set PASS_MAX_DAYS in /etc/login.defs and apply it to existing users.",
        snippet="sed -i 's/^PASS_MAX_DAYS.*/PASS_MAX_DAYS 365/' /etc/login.defs\n"
        "chage --maxdays 365 ACCOUNT",
        verify="`grep ^PASS_MAX_DAYS /etc/login.defs` shows 365 or less.",
        references=refs(cis("5.4.1.1"), _PW),
        tags=("passwords",),
    )
    Params = MaxDaysParams
    sections = ("login_defs",)

    def judge(self, h: HostConfigFacts, p: MaxDaysParams) -> Result:
        v = _defs_int(h, "PASS_MAX_DAYS")
        if v is None:
            return failed("PASS_MAX_DAYS is not set (passwords never expire)")
        if v > p.max_days or v < 0:
            return failed(f"PASS_MAX_DAYS is {v}; expected at most {p.max_days}", value=v)
        return passed(f"PASS_MAX_DAYS is {v}", value=v)


class UsersMaxDays(HostCheck):
    meta = meta(
        id="host.passwords.users_max_days",
        title="Every user's password expires",
        severity=Severity.LOW,
        rationale="login.defs applies only to new accounts; existing accounts keep the "
        "lifetime they were created with, often 99999 days.",
        fix="Set the maximum password age of each listed account.",
        snippet="chage --maxdays 365 ACCOUNT",
        verify="`chage -l ACCOUNT` shows a maximum of 365 days or less.",
        references=refs(cis("5.4.1.1"), _PW),
        tags=("passwords",),
    )
    Params = MaxDaysParams
    sections = ("shadow",)

    def judge(self, h: HostConfigFacts, p: MaxDaysParams) -> Result:
        with_pw = [a for a in h.accounts if a.pw_state == "hash"]
        if not with_pw:
            return not_applicable("no account has a password (key-only logins)")
        bad = [
            f"{a.name} ({a.max_days})"
            for a in with_pw
            if a.max_days is None or a.max_days > p.max_days
        ]
        if bad:
            return failed(
                f"passwords that do not expire within {p.max_days} days: {', '.join(bad)}",
                accounts=bad,
            )
        return passed(f"{len(with_pw)} passwords expire within {p.max_days} days")


class MinDays(HostCheck):
    meta = meta(
        id="host.passwords.min_days",
        title="Passwords cannot be changed back at once (PASS_MIN_DAYS)",
        severity=Severity.INFO,
        rationale="Without a minimum age, a user forced to change a password can cycle "
        "straight back to the old one.",
        fix="Set PASS_MIN_DAYS to at least 1.",
        snippet="sed -i 's/^PASS_MIN_DAYS.*/PASS_MIN_DAYS 1/' /etc/login.defs",
        verify="`grep ^PASS_MIN_DAYS /etc/login.defs` shows 1 or more.",
        references=refs(cis("5.4.1.2"), _PW),
        tags=("passwords",),
    )
    sections = ("login_defs",)

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        v = _defs_int(h, "PASS_MIN_DAYS")
        if v is None or v < 1:
            return failed(
                f"PASS_MIN_DAYS is {v if v is not None else 'not set'}; expected 1 or more", value=v
            )
        return passed(f"PASS_MIN_DAYS is {v}", value=v)


class WarnAge(HostCheck):
    meta = meta(
        id="host.passwords.warn_age",
        title="Users are warned before their password expires",
        severity=Severity.INFO,
        rationale="A warning period lets users choose a new password in time instead of being "
        "locked out or picking one in a hurry.",
        fix="Set PASS_WARN_AGE to at least 7.",
        snippet="sed -i 's/^PASS_WARN_AGE.*/PASS_WARN_AGE 7/' /etc/login.defs",
        verify="`grep ^PASS_WARN_AGE /etc/login.defs` shows 7 or more.",
        references=refs(cis("5.4.1.3"), _PW),
        tags=("passwords",),
    )
    sections = ("login_defs",)

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        v = _defs_int(h, "PASS_WARN_AGE")
        if v is None or v < 7:
            return failed(
                f"PASS_WARN_AGE is {v if v is not None else 'not set'}; expected 7 or more", value=v
            )
        return passed(f"PASS_WARN_AGE is {v}", value=v)


class EncryptMethod(HostCheck):
    meta = meta(
        id="host.passwords.encrypt_method",
        title="New passwords are hashed with yescrypt or SHA-512",
        severity=Severity.MEDIUM,
        rationale="ENCRYPT_METHOD decides how passwords set with passwd/chpasswd are hashed; "
        "MD5 and DES hashes are cracked quickly.",
        fix="Set ENCRYPT_METHOD to YESCRYPT or SHA512 in /etc/login.defs.",
        snippet="sed -i 's/^ENCRYPT_METHOD.*/ENCRYPT_METHOD YESCRYPT/' /etc/login.defs",
        verify="`grep ^ENCRYPT_METHOD /etc/login.defs` shows YESCRYPT or SHA512.",
        references=refs(cis("5.4.1.4"), _PW),
        tags=("passwords",),
    )
    sections = ("login_defs",)

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        v = h.login_defs.get("ENCRYPT_METHOD", "").upper()
        if v in ("YESCRYPT", "SHA512", "GOST_YESCRYPT"):
            return passed(f"ENCRYPT_METHOD is {v}", value=v)
        return failed(f"ENCRYPT_METHOD is {v or 'not set (DES by default)'}", value=v)


class Umask(HostCheck):
    meta = meta(
        id="host.passwords.umask",
        title="The default umask keeps new files private to the group",
        severity=Severity.LOW,
        rationale="With umask 022 every file a user creates is readable by every other user; "
        "027 keeps them within the owner's group.",
        fix="Set UMASK 027 in /etc/login.defs.",
        snippet="sed -i 's/^UMASK.*/UMASK 027/' /etc/login.defs",
        verify="`grep ^UMASK /etc/login.defs` shows 027 or 077.",
        references=refs(cis("5.4.3.3"), iso("A.8.3")),
        tags=("passwords",),
    )
    sections = ("login_defs",)

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        v = h.login_defs.get("UMASK", "")
        try:
            m = int(v, 8)
        except ValueError:
            return failed(f"UMASK is {v or 'not set'}", value=v)
        if m & 0o027 == 0o027:
            return passed(f"UMASK is {v}", value=v)
        return failed(f"UMASK is {v}; expected 027 or stricter", value=v)


class InactiveParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_inactive: int = Field(default=45, ge=0, description="Days after expiry before lock")


class Inactive(HostCheck):
    meta = meta(
        id="host.passwords.inactive",
        title="Accounts with expired passwords are locked after 45 days",
        severity=Severity.LOW,
        rationale="Dormant accounts are a favourite foothold: nobody notices their use. "
        "TCVN and the benchmark ask for a lock after 45 days.",
        fix="Set the inactivity period for the default and for each listed account.",
        snippet="useradd -D -f 45\nchage --inactive 45 ACCOUNT",
        verify="`chage -l ACCOUNT` shows 'Password inactive' within 45 days of expiry.",
        references=refs(cis("5.4.1.5"), bsi("ORP.4.A2"), iso("A.5.18"), cisv8("5.3")),
        tags=("passwords",),
    )
    Params = InactiveParams
    sections = ("shadow",)

    def judge(self, h: HostConfigFacts, p: InactiveParams) -> Result:
        with_pw = [a for a in h.accounts if a.pw_state == "hash"]
        if not with_pw:
            return not_applicable("no account has a password (key-only logins)")
        bad = [
            a.name
            for a in with_pw
            if a.inactive is None or a.inactive < 0 or a.inactive > p.max_inactive
        ]
        if bad:
            return failed(f"accounts never locked after expiry: {', '.join(bad)}", accounts=bad)
        return passed(f"{len(with_pw)} accounts lock within {p.max_inactive} days")


# -- PAM ------------------------------------------------------------------------------------


class PwqualityParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    minlen: int = Field(default=14, ge=1, description="Shortest accepted password")


class Pwquality(HostCheck):
    meta = meta(
        id="host.pam.pwquality",
        title="PAM enforces password quality (pam_pwquality, minlen 14)",
        severity=Severity.MEDIUM,
        rationale="Without a quality check users pick short, guessable passwords; length is "
        "what matters most against guessing.",
        fix="Install libpam-pwquality, which adds pam_pwquality to the password stack, and set "
        "the length in pwquality.conf.",
        snippet="apt-get install libpam-pwquality\n"
        "printf 'minlen = 14\\ndictcheck = 1\\nenforcing = 1\\n' > "
        "/etc/security/pwquality.conf.d/50-assay.conf",
        verify="`grep pam_pwquality /etc/pam.d/common-password` shows the module and "
        "`grep minlen /etc/security/pwquality.conf*` shows 14 or more.",
        references=refs(cis("5.3.3.2.2"), _PW),
        tags=("pam",),
    )
    Params = PwqualityParams
    sections = ("pam",)

    def judge(self, h: HostConfigFacts, p: PwqualityParams) -> Result:
        lines = [
            ln
            for _, ln in _pam_lines(h, PAM_PASSWORD, "password")
            if "pam_pwquality" in ln or "pam_cracklib" in ln
        ]
        if not lines:
            return failed("no pam_pwquality (or pam_cracklib) in the password stack")
        conf = _conf(h, "security/pwquality.conf", "security/pwquality.conf.d/")
        args = _args(lines[0], "pam_pwquality.so") or _args(lines[0], "pam_cracklib.so")
        minlen_s = args.get("minlen") or conf.get("minlen", "8")
        try:
            minlen = int(minlen_s)
        except ValueError:
            minlen = 0
        if minlen < p.minlen:
            return failed(
                f"pam_pwquality accepts passwords of {minlen} characters; expected {p.minlen}",
                minlen=minlen,
            )
        return passed(f"pam_pwquality requires {minlen} characters", minlen=minlen)


class LockoutParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_deny: int = Field(default=5, ge=1, description="Most failures before lock-out")


class Lockout(HostCheck):
    meta = meta(
        id="host.pam.lockout",
        title="Accounts are locked after repeated failed logins",
        severity=Severity.MEDIUM,
        rationale="Lock-out turns unlimited password guessing into a handful of attempts; the "
        "benchmark asks for at most 5 failures and at least 15 minutes of lock.",
        fix="Enable pam_faillock and set deny and unlock_time in faillock.conf.",
        snippet="printf 'deny = 5\\nunlock_time = 900\\n' > /etc/security/faillock.conf\n"
        "# Debian/Ubuntu: add pam_faillock to common-auth and common-account (pam-auth-update)\n"
        "# RHEL: authselect enable-feature with-faillock",
        verify="`grep pam_faillock /etc/pam.d/common-auth` (RHEL: system-auth) shows the module.",
        references=refs(cis("5.3.3.1.1", "5.3.3.1.2"), bsi("SYS.1.1.A2"), iso("A.8.5")),
        tags=("pam",),
    )
    Params = LockoutParams
    sections = ("pam",)

    def judge(self, h: HostConfigFacts, p: LockoutParams) -> Result:
        lines = [
            ln
            for _, ln in _pam_lines(h, PAM_AUTH, "auth")
            if "pam_faillock" in ln or "pam_tally2" in ln
        ]
        if not lines:
            return failed("neither pam_faillock nor pam_tally2 is in the auth stack")
        conf = _conf(h, "security/faillock.conf")
        args: dict[str, str] = {}
        for ln in lines:
            args.update(_args(ln, "pam_faillock.so") or _args(ln, "pam_tally2.so"))
        deny_s = args.get("deny") or conf.get("deny", "3")
        try:
            deny = int(deny_s)
        except ValueError:
            deny = 0
        if deny == 0 or deny > p.max_deny:
            return failed(
                f"lock-out after {deny or 'no'} failures; expected at most {p.max_deny}", deny=deny
            )
        return passed(f"accounts lock after {deny} failed logins", deny=deny)


class History(HostCheck):
    meta = meta(
        id="host.pam.history",
        title="Recent passwords cannot be reused",
        severity=Severity.LOW,
        rationale="Without a history, a forced password change ends with the same password.",
        fix="Add pam_pwhistory with remember=24 to the password stack.",
        snippet="# /etc/pam.d/common-password (RHEL: system-auth), before pam_unix:\n"
        "password requisite pam_pwhistory.so remember=24 enforce_for_root use_authtok",
        verify="`grep pam_pwhistory /etc/pam.d/common-password` shows remember=24.",
        references=refs(cis("5.3.3.3.1"), _PW),
        tags=("pam",),
    )
    sections = ("pam",)

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        for _, ln in _pam_lines(h, PAM_PASSWORD, "password"):
            a = _args(ln, "pam_pwhistory.so") or _args(ln, "pam_unix.so")
            if "remember" in a and a["remember"].isdigit() and int(a["remember"]) >= 5:
                return passed(f"the last {a['remember']} passwords are remembered")
        return failed("no password history (pam_pwhistory remember=N) is enforced")


class Nullok(HostCheck):
    meta = meta(
        id="host.pam.nullok",
        title="PAM does not accept empty passwords",
        severity=Severity.MEDIUM,
        rationale="pam_unix with nullok lets an account with an empty password log in; Debian "
        "ships it by default.",
        fix="Remove nullok from the pam_unix lines.",
        snippet="sed -i 's/ nullok//' /etc/pam.d/common-auth   # RHEL: system-auth, password-auth",
        verify="`grep nullok /etc/pam.d/common-auth` prints nothing.",
        references=refs(cis("5.3.3.4.1"), _PW),
        tags=("pam",),
    )
    sections = ("pam",)

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        bad = [
            f"{f}: {ln}"
            for f, ln in _pam_lines(h, PAM_AUTH, "auth")
            if "pam_unix" in ln and "nullok" in ln.split()
        ]
        if not h.pam:
            return not_applicable("PAM is not configured on this host")
        if bad:
            return failed("pam_unix accepts empty passwords (nullok)", lines=bad)
        return passed("pam_unix refuses empty passwords")
