"""Assay's scanner: inventory, scope guard, discovery, the plugin contract, runner and store.

The public surface for plugin authors is re-exported here; everything else is internal.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("assay")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"

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
