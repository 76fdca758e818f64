"""Running the gatherer: the shared assembly step, and the local run without SSH.

The same script and the same reader serve the `local` target and SSH targets, so a scan of
the scanner's own host and a scan over SSH give the same facts (a test holds them equal).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import signal
import time
from dataclasses import dataclass
from typing import Literal

from scanner.gather.facts import HostConfigFacts
from scanner.gather.interpret import to_facts
from scanner.gather.script import GatherOptions, build_script
from scanner.gather.sections import parse_output

MAX_OUTPUT = 32 * 1024 * 1024  # bytes of gatherer output read from one host
MAX_STDERR = 4096


@dataclass
class RawRun:
    """What came back from one run of the script, however it ended."""

    stdout: bytes
    stderr: bytes = b""
    exit_status: int | None = None
    problem: str = ""  # why the run ended early (time budget, connection lost ...)
    clipped: bool = False


def assemble(
    raw: RawRun,
    nonce: str,
    options: GatherOptions,
    *,
    address: str,
    via: Literal["ssh", "local"],
    user: str = "",
    sudo: bool = False,
    seconds: float = 0.0,
) -> HostConfigFacts:
    parsed = parse_output(raw.stdout, nonce)
    facts = HostConfigFacts(address=address, via=via, user=user, sudo=sudo, seconds=seconds)
    to_facts(parsed, facts, options.sections, options.root.rstrip("/"))
    if raw.problem:
        facts.complete = False
        facts.errors.insert(0, raw.problem)
    if raw.clipped:
        facts.complete = False
        facts.errors.append(f"output larger than {MAX_OUTPUT} bytes; the rest was dropped")
    if not parsed.started:
        facts.complete = False
        err = raw.stderr.decode("utf-8", "replace").strip()[:300]
        facts.errors.insert(
            0,
            "the gathering script did not start"
            + (f" (exit status {raw.exit_status})" if raw.exit_status is not None else "")
            + (f": {err}" if err else ""),
        )
    elif not parsed.finished and not raw.problem:
        facts.errors.insert(0, "the gathering script stopped before it finished")
    return facts


async def run_local(options: GatherOptions, budget: float) -> tuple[RawRun, str]:
    """Run the script on this machine with /bin/sh; stop it when `budget` seconds are spent."""
    nonce, script = build_script(options)
    proc = await asyncio.create_subprocess_exec(
        "/bin/sh",
        "-s",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdout and proc.stderr
    chunks: list[bytes] = []
    size = 0
    clipped = False

    async def read_out() -> None:
        nonlocal size, clipped
        assert proc.stdout
        while chunk := await proc.stdout.read(65536):
            if size + len(chunk) > MAX_OUTPUT:
                clipped = True
                continue
            chunks.append(chunk)
            size += len(chunk)

    async def read_err() -> bytes:
        assert proc.stderr
        data = await proc.stderr.read(MAX_STDERR)
        while await proc.stderr.read(65536):
            pass
        return data

    problem = ""
    err_task = asyncio.ensure_future(read_err())
    try:
        async with asyncio.timeout(budget):
            assert proc.stdin
            proc.stdin.write(script)
            with contextlib.suppress(ConnectionError):
                await proc.stdin.drain()
            proc.stdin.close()
            await read_out()
            await proc.wait()
    except TimeoutError:
        problem = f"time budget of {budget:g}s spent; the gathering was stopped"
        _kill(proc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 5)
    finally:
        if proc.returncode is None:
            _kill(proc)
    try:
        stderr = await asyncio.wait_for(err_task, 5)
    except TimeoutError:
        stderr = b""
    raw = RawRun(b"".join(chunks), stderr, proc.returncode, problem, clipped)
    return raw, nonce


def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def gather_local(
    options: GatherOptions | None = None, budget: float = 60.0
) -> HostConfigFacts:
    options = options or GatherOptions()
    start = time.monotonic()
    raw, nonce = await run_local(options, budget)
    return assemble(
        raw,
        nonce,
        options,
        address="local",
        via="local",
        user=_whoami(),
        seconds=round(time.monotonic() - start, 3),
    )


def _whoami() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER
        return ""
