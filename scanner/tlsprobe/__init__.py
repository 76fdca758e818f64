"""Assay's own TLS prober: crafted ClientHellos, a bounded ServerHello parser, enumeration.

It enumerates protocols, cipher suites, groups, server preference and DH sizes without the
local OpenSSL, so suites that OpenSSL has dropped (RC4, 3DES, export) are still detected.
"""

from scanner.tlsprobe.endpoint import (
    StartTlsError,
    TlsEndpoint,
    TlsProbeError,
    open_plain,
    tls_endpoint,
)

__all__ = ["StartTlsError", "TlsEndpoint", "TlsProbeError", "open_plain", "tls_endpoint"]
