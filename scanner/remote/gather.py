"""The gathering script over SSH: resolve the credential references, run, assemble facts."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from scanner.credentials import CredentialError, resolve
from scanner.gather.facts import HostConfigFacts, HostKeyInfo, SectionState
from scanner.gather.local import assemble
from scanner.gather.script import GatherOptions, build_script
from scanner.inventory import CredentialRef, JumpHost, SshAccess
from scanner.remote.hostkeys import default_store
from scanner.remote.session import Login, SshError, run_script, sudo_refusal

T = TypeVar("T")


async def in_own_thread(name: str, fn: Callable[[], T]) -> T:
    """Run blocking `fn` (a paramiko session) in a thread of its own, not in the loop's shared
    executor: that has a handful of workers, and a host queued behind others would spend its
    time budget (and the runner's bound) waiting for one. `fn` ends by its own deadline, so
    the thread always ends; a caller that stops waiting just leaves it to finish."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(value: T | None, exc: BaseException | None) -> None:
        if done.cancelled():
            return
        if exc is not None:
            done.set_exception(exc)
        else:
            done.set_result(value)  # type: ignore[arg-type]

    def work() -> None:
        try:
            value, exc = fn(), None
        except BaseException as e:  # handed to the awaiting coroutine
            value, exc = None, e
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            loop.call_soon_threadsafe(settle, value, exc)

    threading.Thread(target=work, name=name, daemon=True).start()
    return await done


def _secret(ref: CredentialRef | None, what: str) -> str | None:
    if ref is None:
        return None
    try:
        return resolve(ref, what)
    except CredentialError as exc:
        raise SshError(str(exc)) from None


def login_for(address: str, access: SshAccess) -> Login:
    """Resolve the references now (in memory only) into a Login for the session."""
    store = str(access.known_hosts.expanduser() if access.known_hosts else default_store())
    jump: Login | None = None
    if access.jump is not None:
        j: JumpHost = access.jump
        jump = Login(
            address=j.address,
            port=j.port,
            user=j.user,
            key_text=_secret(j.key, f"jump host {j.address} key"),
            password=_secret(j.password, f"jump host {j.address} password"),
            store=store,
            trust_on_first_use=j.trust_on_first_use,
        )
    return Login(
        address=address,
        port=access.port,
        user=access.user,
        key_text=_secret(access.key, f"ssh key for {address}"),
        password=_secret(access.password, f"ssh password for {address}"),
        sudo=access.sudo or access.sudo_password is not None,
        sudo_password=_secret(access.sudo_password, f"sudo password for {address}"),
        store=store,
        trust_on_first_use=access.trust_on_first_use,
        jump=jump,
    )


async def gather_ssh(
    login: Login,
    options: GatherOptions | None = None,
    *,
    connect_timeout: float = 10.0,
    budget: float = 60.0,
) -> HostConfigFacts:
    """One session: log in, one exec of the script, parse. Raises SshError/HostKeyError when
    no facts at all could be gathered; a session that breaks later gives partial facts."""
    options = options or GatherOptions()
    nonce, script = build_script(options)
    start = time.monotonic()
    raw, verdict = await in_own_thread(
        f"assay-ssh-{login.address}",
        lambda: run_script(login, script, connect_timeout=connect_timeout, budget=budget),
    )
    facts = assemble(
        raw,
        nonce,
        options,
        address=login.address,
        via="ssh",
        user=login.user,
        sudo=login.sudo and login.user != "root",
        seconds=round(time.monotonic() - start, 3),
    )
    refused = sudo_refusal(raw.stderr) if facts.sudo else ""
    if refused:
        mark_unprivileged(facts, f"sudo {refused} for {login.where}")
    facts.host_key = HostKeyInfo(
        type=verdict.key_type,
        sha256=verdict.sha256,
        source="pinned_now" if verdict.pinned_now else "known_hosts",
        store=verdict.store,
    )
    return facts


def mark_unprivileged(facts: HostConfigFacts, why: str) -> None:
    """sudo was asked for and not obtained: the facts are the login's own, so they are partial,
    the first error names sudo, and every source refused for lack of rights says why."""
    facts.sudo = False
    facts.complete = False
    facts.errors.insert(
        0, f"{why}; the facts were gathered without root, root-only sources are missing"
    )
    for name, info in facts.sections.items():
        if info.state is SectionState.DENIED:
            note = f"{info.note or 'permission denied'}; {why}"
            facts.sections[name] = info.model_copy(update={"note": note})
