"""The server administration commands, as the team-server guide runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from scanner.server.service import ServerDB
from scanner.store import Store

ASSAY = (sys.executable, "-c", "from scanner.cli import main; main()")


def _run(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ASSAY, *args], capture_output=True, text=True, timeout=120, env=env, input=stdin
    )


def test_units_users_schedules_and_tokens(tmp_path: Path) -> None:
    inv = tmp_path / "so-tttt.yaml"
    inv.write_text(
        "version: 1\nunits:\n  - id: so-tttt\n    name: Sở TTTT\n"
        "    hosts:\n      - address: 127.77.0.5\n"
    )
    db = f"sqlite:///{tmp_path / 'team.db'}"
    env = {**os.environ, "ASSAY_DB": db}
    env.pop("ASSAY_PASSWORD", None)
    assert _run("server", "unit-add", str(inv), "--unit", "so-tttt", env=env).returncode == 0
    bad = _run("server", "unit-add", str(inv), "--unit", "nope", env=env)
    assert bad.returncode == 1 and "no unit 'nope'" in bad.stderr
    typo = tmp_path / "typo.yaml"
    typo.write_text("version: 1\nunits:\n  - id: x\n    nmae: X\n")
    bad = _run("server", "unit-add", str(typo), "--unit", "x", env=env)
    assert bad.returncode == 1 and "typo.yaml:3 units[0].name" in bad.stderr
    pw = {**env, "ASSAY_PASSWORD": "officer passphrase 1"}
    ok = _run("server", "user-add", "lan", "--role", "officer", "--unit", "so-tttt", env=pw)
    assert ok.returncode == 0, ok.stderr
    assert "officer passphrase" not in ok.stdout + ok.stderr
    piped = _run("server", "user-add", "thanh", "--role", "reviewer", "--all-units", env=env,
                 stdin="reviewer passphrase\n")  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    short = _run("server", "user-add", "x", "--role", "admin", env={**env, "ASSAY_PASSWORD": "s"})
    assert short.returncode == 1 and "12 characters" in short.stderr
    assert _run("server", "schedule-add", "so-tttt", "--cron", "0 2 * * 1", env=env).returncode == 0
    bad = _run("server", "schedule-add", "so-tttt", "--cron", "every monday", env=env)
    assert bad.returncode == 1 and "cron" in bad.stderr
    token = _run("server", "token", "lan", "--name", "ci", env=env)
    assert token.returncode == 0 and token.stdout.startswith("assay_")
    sdb = ServerDB(Store(db))
    principal = sdb.principal_for_token(token.stdout.strip())
    assert principal is not None and principal.username == "lan"
    assert sdb.authenticate("thanh", "reviewer passphrase").all_units
    assert [u["id"] for u in sdb.units(principal)] == ["so-tttt"]
    sdb.store.close()


def test_mail_relay_and_recipients_as_the_guide_sets_them(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'team.db'}"
    env = {**os.environ, "ASSAY_DB": db, "ASSAY_SMTP_PASSWORD": "the relay password"}
    inv = tmp_path / "so-tttt.yaml"
    inv.write_text(
        "version: 1\nunits:\n  - id: so-tttt\n    name: Sở TTTT\n"
        "    hosts:\n      - address: 127.77.0.5\n"
    )
    assert _run("server", "unit-add", str(inv), "--unit", "so-tttt", env=env).returncode == 0
    ok = _run("server", "mail-relay", "--host", "smtp.so-tttt.example", "--port", "587",
              "--security", "starttls", "--from", "assay@so-tttt.example", "--username", "assay",
              "--password-ref", "env:ASSAY_SMTP_PASSWORD", env=env)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "SMTP smtp.so-tttt.example:587 (starttls)" in ok.stdout
    to = _run("server", "mail-to", "it@so-tttt.example", "--unit", "so-tttt", env=env)
    assert to.returncode == 0, to.stderr
    assert _run("server", "mail-to", "soc@ubnd.example", env=env).returncode == 0
    # the password itself instead of a reference, a login in clear, a typo'd unit, a bad address
    pasted = _run("server", "mail-relay", "--host", "smtp.x", "--from", "a@x.example",
                  "--username", "u", "--password-ref", "Hunter2-secret", env=env)  # fmt: skip
    assert pasted.returncode == 1 and "must be a reference" in pasted.stderr
    assert "Hunter2-secret" not in pasted.stderr + pasted.stdout
    clear = _run("server", "mail-relay", "--host", "smtp.x", "--from", "a@x.example", "--security",
                 "none", "--username", "u", "--password-ref", "env:X", env=env)  # fmt: skip
    assert clear.returncode == 1 and "in clear" in clear.stderr
    typo = _run("server", "mail-to", "it@so-tttt.example", "--unit", "so-ttt", env=env)
    assert typo.returncode == 1 and "no unit 'so-ttt' (known: so-tttt)" in typo.stderr
    bad = _run("server", "mail-to", "it-at-so-tttt", env=env)
    assert bad.returncode == 1 and "not an e-mail address" in bad.stderr
    from scanner.server.notify import get_relay, recipients_for

    store = Store(db)
    relay = get_relay(store.engine)
    assert relay is not None and relay.password_ref == "env:ASSAY_SMTP_PASSWORD"
    assert recipients_for(store.engine, "so-tttt") == ["it@so-tttt.example", "soc@ubnd.example"]
    assert b"the relay password" not in (tmp_path / "team.db").read_bytes()
    store.close()
