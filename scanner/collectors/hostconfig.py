"""Host configuration over SSH (or of the local machine): one session, one gathering script.

The collector resolves the target's access (bound by the runner from the inventory), checks
that the host and any jump host are in scope, and runs the gatherer of `scanner.gather`
over SSH or locally. Facts are stored with the scan, so every host check can be judged again
later without logging in.

Failures that leave no facts (unreachable, wrong password, refused key, unknown or changed
host key) raise with the reason and become `error` outcomes for this host only. A session
that breaks later (dropped connection, spent time budget) returns the facts it has, marked
incomplete; the checks whose sources are missing say so.

Time: the host's own `ssh.budget` bounds the whole session (logins included), and
`bound_for` hands the runner that budget plus the login allowance, so a host given more time
than the scan's `collector_timeout` is not cut early and a stuck host is still stopped.
"""

from __future__ import annotations

from scanner.gather.facts import HostConfigFacts
from scanner.gather.local import gather_local
from scanner.model import Target, TargetKind
from scanner.plugins import CollectContext, Collector
from scanner.remote.access import LOCAL_ADDRESS, lookup
from scanner.remote.gather import gather_ssh, login_for
from scanner.remote.session import SshError

__all__ = ["HostConfigCollector", "HostConfigFacts"]


LOCAL_BUDGET = 60.0  # seconds for gathering the local machine
# Beyond the budget: paramiko's login phases (connect, banner, key exchange, auth) each wait
# up to the connect timeout, per hop; then closing the session and the worker thread.
LOGIN_PHASES = 4
GRACE = 10.0


def connect_timeout(ctx: CollectContext) -> float:
    return max(ctx.probe_timeout, 1.0)


class HostConfigCollector(Collector):
    id = "host.config"
    target_kind = TargetKind.SSH
    facts_model = HostConfigFacts
    timeout = 3600.0  # the host's own budget (ssh.budget) is enforced inside, see bound_for

    def applies(self, target: Target) -> bool:
        return target.kind is TargetKind.SSH

    def bound_for(self, target: Target, ctx: CollectContext) -> float | None:
        """The runner's limit for this host: its own budget, not the scan's collector_timeout."""
        access = lookup(target)
        if access is None:
            return None
        if access.ssh is None:
            return LOCAL_BUDGET + GRACE
        hops = 2 if access.ssh.jump is not None else 1
        return access.ssh.budget + hops * LOGIN_PHASES * connect_timeout(ctx) + GRACE

    async def collect(self, target: Target, ctx: CollectContext) -> HostConfigFacts:
        access = lookup(target)
        if access is None:
            raise SshError(f"no ssh access is declared for {target.label} in the inventory")
        if access.ssh is None:
            if target.address != LOCAL_ADDRESS:
                raise SshError(f"{target.label}: only the local target is gathered without SSH")
            return await gather_local(access.options, budget=LOCAL_BUDGET)
        address = target.address or ""
        ctx.scope.ensure_address(address)
        if access.ssh.jump is not None:
            ctx.scope.ensure_address(access.ssh.jump.address)
        login = login_for(address, access.ssh)
        return await gather_ssh(
            login,
            access.options,
            connect_timeout=connect_timeout(ctx),
            budget=access.ssh.budget,
        )
