"""Document stores behind one interface: local folders, WebDAV, S3-compatible, SMB."""

from scanner.stores.base import Connector, Entry, Exposure, StoreError, TooLarge, TooManyEntries

__all__ = ["Connector", "Entry", "Exposure", "StoreError", "TooLarge", "TooManyEntries"]
