"""Alerts after a unit's scan: a webhook POST and an e-mail through the server's SMTP relay.

An alert is raised when the unit's pass rate dropped since its previous scan or a new high or
critical finding opened. Every delivery attempt, sent or failed, is written to the
`notifications` table with a one-line reason (no secret in it), so a relay that is down or
refuses the message is visible in the API and the logs; it never fails the scan job, and a
failing e-mail never stops the webhooks (or the other way round).

The SMTP relay is configured once per server (`assay server mail-relay`), recipients per unit
(`assay server mail-to`). The relay's password is a credential reference (`env:VAR`,
`file:PATH`, `keyring:SERVICE/USER`) resolved in the process that sends, so neither the
database nor a log ever holds it. Credentials are only sent over TLS (STARTTLS or implicit).
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any, Literal, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import delete, insert, or_, select

from scanner.credentials import CredentialError, resolve
from scanner.inventory import CredentialRef
from scanner.server import tables as t

LOG = logging.getLogger(__name__)
WEBHOOK_TIMEOUT = 5.0
SMTP_TIMEOUT = 10.0
_ADDRESS = re.compile(r"[^@\s<>,;\"']{1,64}@[A-Za-z0-9.-]{1,255}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class MailConfigError(ValueError):
    """An SMTP relay or recipient setting that cannot be used (the message says which)."""


def parse_ref(text: str) -> CredentialRef:
    """`env:VAR`, `file:PATH` or `keyring:SERVICE/USER` as a reference.

    The refusal never repeats the text: someone may have pasted the password itself.
    """
    kind, sep, rest = text.partition(":")
    if sep and rest and kind in ("env", "file", "keyring"):
        try:
            return CredentialRef.model_validate({kind: rest})
        except ValueError:
            pass
    raise MailConfigError(
        "the SMTP password must be a reference (env:VAR, file:PATH or keyring:SERVICE/USER), "
        "never the password itself"
    )


class MailRelay(BaseModel):
    """The server's SMTP relay."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9.:_\[\]-]+$")
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    sender: str
    username: str | None = Field(default=None, min_length=1, max_length=255)
    password_ref: str | None = None
    cafile: str | None = None

    @field_validator("sender")
    @classmethod
    def _sender(cls, v: str) -> str:
        if not _ADDRESS.fullmatch(v):
            raise ValueError(f"sender {v!r} is not an e-mail address (name@domain)")
        return v

    @field_validator("password_ref")
    @classmethod
    def _ref(cls, v: str | None) -> str | None:
        if v is not None:
            parse_ref(v)
        return v

    @model_validator(mode="after")
    def _no_clear_credentials(self) -> MailRelay:
        if (self.username is None) != (self.password_ref is None):
            raise ValueError("username and password_ref go together")
        if self.username is not None and self.security == "none":
            raise ValueError(
                "the relay login would cross the network in clear: use security starttls or tls"
            )
        return self

    def describe(self) -> str:
        return f"SMTP {self.host}:{self.port} ({self.security})"


def check_address(address: str) -> str:
    if not _ADDRESS.fullmatch(address):
        raise MailConfigError(f"{address!r} is not an e-mail address (name@domain)")
    return address


# -- storage ---------------------------------------------------------------------------------


def set_relay(engine: Any, relay: MailRelay | None) -> None:
    """Store (or with None, remove) the server's relay."""
    with engine.begin() as c:
        c.execute(delete(t.mail_relay))
        if relay is not None:
            c.execute(
                insert(t.mail_relay).values(
                    id=1, updated_at=datetime.now(UTC), **relay.model_dump()
                )
            )


def get_relay(engine: Any) -> MailRelay | None:
    with engine.begin() as c:
        row = c.execute(select(t.mail_relay)).mappings().first()
    if row is None:
        return None
    return MailRelay.model_validate(
        {k: row[k] for k in MailRelay.model_fields if k in row and row[k] is not None}
    )


def add_recipient(engine: Any, address: str, unit_id: str | None) -> int:
    check_address(address)
    with engine.begin() as c:
        pk = c.execute(
            insert(t.mail_recipients).values(
                unit=unit_id, address=address, created_at=datetime.now(UTC)
            )
        ).inserted_primary_key
    assert pk is not None
    return int(pk[0])


def recipients_for(engine: Any, unit_id: str) -> list[str]:
    with engine.begin() as c:
        found = c.execute(
            select(t.mail_recipients.c.address).where(
                or_(t.mail_recipients.c.unit.is_(None), t.mail_recipients.c.unit == unit_id)
            )
        ).scalars()
        return sorted(set(found))


def webhooks_for(engine: Any, unit_id: str) -> list[str]:
    with engine.begin() as c:
        return list(
            c.execute(
                select(t.webhooks.c.url).where(
                    or_(t.webhooks.c.unit.is_(None), t.webhooks.c.unit == unit_id)
                )
            ).scalars()
        )


def _log(engine: Any, alert: Alert, channel: str, destination: str, error: str) -> None:
    state = "failed" if error else "sent"
    if error:
        LOG.warning(
            "%s alert for unit %s to %s failed: %s", channel, alert.unit, destination, error
        )
    with engine.begin() as c:
        c.execute(
            insert(t.notifications).values(
                unit=alert.unit,
                scan_id=alert.scan_id,
                channel=channel,
                destination=destination[:1024],
                state=state,
                error=error[:2000],
                created_at=datetime.now(UTC),
            )
        )


# -- the alert -------------------------------------------------------------------------------


class _Scores(Protocol):
    @property
    def pass_rate(self) -> float | None: ...

    def as_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Alert:
    unit: str
    unit_name: str
    scan_id: str
    reasons: list[str]
    scores: dict[str, Any]
    previous: dict[str, Any] | None
    findings: dict[str, int]
    new_severe: list[dict[str, Any]] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        """The webhook's JSON document."""
        return {
            "event": "assessment.alert",
            "unit": self.unit,
            "scan": self.scan_id,
            "reasons": self.reasons,
            "scores": self.scores,
            "previous": self.previous,
            "findings": self.findings,
            "new_severe": self.new_severe,
        }

    def subject(self) -> str:
        name = _CONTROL.sub(" ", self.unit_name)[:120]
        return f"[Assay] {name} ({self.unit}): {'; '.join(self.reasons)}"

    def text(self) -> str:
        def pct(v: Any) -> str:
            return "n/a" if v is None else f"{v:.1f}%"

        s, p = self.scores, self.previous
        lines = [
            f"Assay alert for unit {_CONTROL.sub(' ', self.unit_name)} ({self.unit}),",
            f"scan {self.scan_id}.",
            "",
            *(f"- {r}" for r in self.reasons),
            "",
            f"Policy: {s.get('policy') or 'n/a'}",
            f"Scores now: pass rate {pct(s.get('pass_rate'))}, weighted "
            f"{pct(s.get('weighted'))}, coverage {pct(s.get('coverage'))}",
        ]
        if p is not None:
            lines.append(
                f"Before:     pass rate {pct(p.get('pass_rate'))}, weighted "
                f"{pct(p.get('weighted'))}, coverage {pct(p.get('coverage'))}"
            )
        f = self.findings
        lines.append(
            f"Findings: {f.get('new', 0)} new, {f.get('reopened', 0)} reopened, "
            f"{f.get('fixed', 0)} fixed, {f.get('still_open', 0)} still open"
        )
        if self.new_severe:
            lines += ["", "New high or critical findings:"]
            lines += [
                f"  {r['severity']:<8} {r['check_id']}  on {r['target_key']}"
                for r in self.new_severe
            ]
        return "\n".join(lines) + "\n"


def alert_for(
    unit: str,
    unit_name: str,
    scan_id: str,
    before: _Scores | None,
    after: _Scores,
    counts: dict[str, int],
    new_severe: list[dict[str, Any]],
) -> Alert | None:
    """The alert for this scan, or None when nothing got worse."""
    reasons: list[str] = []
    if (
        before is not None
        and before.pass_rate is not None
        and after.pass_rate is not None
        and after.pass_rate < before.pass_rate
    ):
        reasons.append(f"pass rate dropped from {before.pass_rate}% to {after.pass_rate}%")
    if new_severe:
        reasons.append(f"{len(new_severe)} new high or critical finding(s)")
    if not reasons:
        return None
    return Alert(
        unit=unit,
        unit_name=unit_name,
        scan_id=scan_id,
        reasons=reasons,
        scores=after.as_dict(),
        previous=before.as_dict() if before is not None else None,
        findings=dict(counts),
        new_severe=new_severe,
    )


# -- delivery --------------------------------------------------------------------------------


def deliver(engine: Any, alert: Alert) -> None:
    """Every webhook and the e-mail of one alert; each outcome is logged, none raises."""
    for url in webhooks_for(engine, alert.unit):
        error = ""
        try:
            r = httpx.post(url, json=alert.body(), timeout=WEBHOOK_TIMEOUT, trust_env=False)
            if r.status_code >= 400:
                error = f"HTTP {r.status_code} from {url}"
        except httpx.HTTPError as exc:
            error = f"{url}: {type(exc).__name__}: {exc}"
        _log(engine, alert, "webhook", url, error)
    to = recipients_for(engine, alert.unit)
    if not to:
        return
    try:
        relay = get_relay(engine)
    except ValueError as exc:  # a stored row that no longer validates
        _log(engine, alert, "mail", ", ".join(to), f"SMTP relay setting: {exc}")
        return
    if relay is None:
        _log(engine, alert, "mail", ", ".join(to), "no SMTP relay is configured")
        return
    _log(engine, alert, "mail", ", ".join(to), send_mail(relay, to, message(relay, to, alert)))


def message(relay: MailRelay, to: list[str], alert: Alert) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = alert.subject()
    msg["From"] = relay.sender
    msg["To"] = ", ".join(to)
    msg["Date"] = format_datetime(datetime.now(UTC))
    # the domain is given: without it make_msgid asks the resolver for this host's name
    msg["Message-ID"] = make_msgid("assay", domain=relay.sender.rpartition("@")[2])
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(alert.text())
    return msg


def _literal(address: str) -> str:
    """This side's address as an EHLO argument (RFC 5321 address literal, no DNS lookup)."""
    return f"[IPv6:{address}]" if ":" in address else f"[{address}]"


def send_mail(
    relay: MailRelay, to: list[str], msg: EmailMessage, timeout: float = SMTP_TIMEOUT
) -> str:
    """Send one message; returns "" when the relay took it for everyone, else why not."""
    where = relay.describe()
    try:
        password = (
            resolve(parse_ref(relay.password_ref), f"{where} password")
            if relay.password_ref
            else None
        )
    except CredentialError as exc:
        return str(exc)
    try:
        ctx = ssl.create_default_context(cafile=relay.cafile)
    except OSError as exc:
        return f"{where}: cannot read the trust bundle {relay.cafile}: {exc.strerror or exc}"
    # local_hostname set now and replaced after connecting: smtplib would otherwise look the
    # host's own name up in DNS
    smtp: smtplib.SMTP = (
        smtplib.SMTP_SSL(local_hostname="assay", timeout=timeout, context=ctx)
        if relay.security == "tls"
        else smtplib.SMTP(local_hostname="assay", timeout=timeout)
    )
    try:
        try:
            # the name the certificate is checked against (smtplib keeps it from __init__)
            setattr(smtp, "_host", relay.host)  # noqa: B010
            smtp.connect(relay.host, relay.port)
            assert smtp.sock is not None
            smtp.local_hostname = _literal(smtp.sock.getsockname()[0])
            smtp.ehlo()
            if relay.security == "starttls":
                if not smtp.has_extn("starttls"):
                    return f"{where}: the relay does not offer STARTTLS"
                smtp.starttls(context=ctx)
                smtp.ehlo()
            if relay.username is not None and password is not None:
                smtp.login(relay.username, password)
            refused = smtp.send_message(msg, from_addr=relay.sender, to_addrs=to)
        finally:
            password = None
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()
    except smtplib.SMTPRecipientsRefused as exc:
        return f"{where} refused every recipient: {_refusals(exc.recipients)}"
    except smtplib.SMTPResponseException as exc:
        text = (
            exc.smtp_error.decode("utf-8", "replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        return f"{where} refused the message: {exc.smtp_code} {text}"
    except smtplib.SMTPException as exc:
        return f"{where}: {type(exc).__name__}: {exc}"
    except ssl.SSLError as exc:
        return f"{where}: TLS failed: {exc.reason or exc}"
    except OSError as exc:  # refused, unreachable, timed out
        return f"{where} is unreachable: {exc.strerror or type(exc).__name__}"
    if refused:
        return f"{where} refused some recipients: {_refusals(refused)}"
    return ""


def _refusals(found: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(
        f"{rcpt}: {code} {text.decode('utf-8', 'replace')}"
        for rcpt, (code, text) in sorted(found.items())
    )
