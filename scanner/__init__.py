"""Assay's scanner: inventory, scope guard, discovery, the plugin contract, runner and store.

The public surface for plugin authors is re-exported here; everything else is internal.
"""

from __future__ import annotations

from scanner.model import (
    Facts,
    Reference,
    Remediation,
    Result,
    ServiceInfo,
    Severity,
    Status,
    Target,
    TargetKind,
    error,
    failed,
    not_applicable,
    not_assessed,
    passed,
)
from scanner.plugins import (
    Check,
    CheckMeta,
    CollectContext,
    Collector,
    FactsView,
    NoParams,
    Reporter,
)

__version__: str  # read from the installed package's metadata on first use, see __getattr__


def __getattr__(name: str) -> str:
    """`scanner.__version__`, looked up once when asked for.

    importlib.metadata and the distribution look-up cost every process about 15-20 ms of
    start-up, which a short audit (one SSH server, one store) should not pay before it needs
    the version for a report.
    """
    if name != "__version__":
        raise AttributeError(f"module 'scanner' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("assay")
    except PackageNotFoundError:  # running from a source tree that is not installed
        found = "0.0.0+source"
    globals()["__version__"] = found
    return found


__all__ = [
    "Check",
    "CheckMeta",
    "CollectContext",
    "Collector",
    "Facts",
    "FactsView",
    "NoParams",
    "Reference",
    "Remediation",
    "Reporter",
    "Result",
    "ServiceInfo",
    "Severity",
    "Status",
    "Target",
    "TargetKind",
    "__version__",
    "error",
    "failed",
    "not_applicable",
    "not_assessed",
    "passed",
]
