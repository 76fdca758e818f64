"""Who may read, from a Windows security descriptor: the DACL of a file or folder and an SMB
share's own ACL. Pure functions over bytes with a bound on every offset, so a hostile
descriptor is a ValueError (and can be fuzzed), never a crash.

MS-DTYP 2.4.6 (SECURITY_DESCRIPTOR, self-relative), 2.4.5 (ACL), 2.4.4.2 (ACCESS_ALLOWED_ACE),
2.4.2 (SID). Only the well-known groups that mean "anyone" (Everyone, Anonymous, Guests, the
domain's Guest and Domain Guests) or "every account" (Authenticated Users, Users, Domain Users)
are named; grants to other accounts count as restricted (their SIDs are not resolved).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

_READ_BITS = 0x00000001 | 0x80000000 | 0x10000000  # READ_DATA/LIST, GENERIC_READ, GENERIC_ALL
_INHERIT_ONLY = 0x08

# who a SID stands for; "anyone" includes guests, "accounts" every logged-in user
_ANYONE = {"S-1-1-0": "Everyone", "S-1-5-7": "Anonymous", "S-1-5-32-546": "Guests"}
_ACCOUNTS = {"S-1-5-11": "Authenticated Users", "S-1-5-32-545": "Users"}
ANYONE_LABELS = frozenset({*_ANYONE.values(), "Guest", "Domain Guests", "Everyone (no DACL)"})


def _sid(data: bytes, off: int) -> tuple[str, int]:
    if off + 8 > len(data):
        raise ValueError("SID runs past the descriptor")
    rev, count = data[off], data[off + 1]
    auth = int.from_bytes(data[off + 2 : off + 8], "big")
    end = off + 8 + 4 * count
    if end > len(data) or count > 15:
        raise ValueError("SID sub-authorities run past the descriptor")
    subs = struct.unpack_from(f"<{count}I", data, off + 8)
    return "-".join(["S", str(rev), str(auth), *map(str, subs)]), end


def _who(sid: str) -> tuple[str, str] | None:
    """('anyone'|'accounts', label) for the well-known groups that matter, else None."""
    if sid in _ANYONE:
        return "anyone", _ANYONE[sid]
    if sid in _ACCOUNTS:
        return "accounts", _ACCOUNTS[sid]
    if sid.startswith("S-1-5-21-") and sid.endswith(("-501", "-514")):
        return "anyone", "Guest" if sid.endswith("-501") else "Domain Guests"
    if sid.startswith("S-1-5-21-") and sid.endswith("-513"):
        return "accounts", "Domain Users"
    return None


@dataclass(frozen=True)
class ReadGrants:
    anyone: tuple[str, ...] = ()  # labels of public principals granted read
    accounts: tuple[str, ...] = ()  # labels of every-account principals granted read

    def summary(self) -> str:
        return ",".join(f"{w}:R" for w in (*self.anyone, *self.accounts))


def read_grants(sd: bytes) -> ReadGrants:
    """Who may read, from a self-relative SECURITY_DESCRIPTOR (MS-DTYP 2.4.6). A descriptor
    without a DACL grants everyone everything; a hostile one raises ValueError."""
    if len(sd) < 20 or sd[0] != 1:
        raise ValueError("not a self-relative security descriptor")
    control = struct.unpack_from("<H", sd, 2)[0]
    dacl_off = struct.unpack_from("<I", sd, 16)[0]
    if not control & 0x0004 or dacl_off == 0:  # SE_DACL_PRESENT unset: a NULL DACL
        return ReadGrants(anyone=("Everyone (no DACL)",))
    if dacl_off + 8 > len(sd):
        raise ValueError("DACL offset past the descriptor")
    count = struct.unpack_from("<H", sd, dacl_off + 4)[0]
    anyone: list[str] = []
    accounts: list[str] = []
    denied: set[str] = set()
    pos = dacl_off + 8
    for _ in range(count):
        if pos + 8 > len(sd):
            raise ValueError("ACE runs past the descriptor")
        ace_type, flags, size = sd[pos], sd[pos + 1], struct.unpack_from("<H", sd, pos + 2)[0]
        if size < 8 or pos + size > len(sd):
            raise ValueError("ACE with an impossible size")
        if ace_type in (0, 1) and not flags & _INHERIT_ONLY:
            mask = struct.unpack_from("<I", sd, pos + 4)[0]
            sid, _ = _sid(sd, pos + 8)
            who = _who(sid)
            if who and mask & _READ_BITS:
                kind, label = who
                if ace_type == 1:
                    denied.add(label)
                elif label not in denied:
                    (anyone if kind == "anyone" else accounts).append(label)
        pos += size
    return ReadGrants(tuple(dict.fromkeys(anyone)), tuple(dict.fromkeys(accounts)))


def grants_of(acl: str) -> ReadGrants:
    """The grants back from ReadGrants.summary()."""
    labels = [g[:-2] for g in acl.split(",") if g.endswith(":R")]
    return ReadGrants(
        anyone=tuple(x for x in labels if x in ANYONE_LABELS),
        accounts=tuple(x for x in labels if x not in ANYONE_LABELS),
    )


def effective_access(share: ReadGrants | None, root: ReadGrants | None) -> tuple[str, bool]:
    """Which list keeps the share from being public, in words, and whether the share root is
    open to anyone through the network (share ACL AND root DACL grant a public principal)."""
    share_open = share is not None and bool(share.anyone)
    root_open = root is not None and bool(root.anyone)
    if share is None and root is None:
        return "unknown: neither the share ACL nor the file DACL could be read", False
    if share is None:
        what = f"grants {', '.join(root.anyone)} read" if root and root_open else "restricts"
        return f"unknown: the share ACL could not be read; the root's file DACL {what}", root_open
    if root is None:
        what = "grants" if share_open else "restricts"
        return f"unknown: the root's file DACL could not be read; the share ACL {what}", False
    if share_open and root_open:
        return (
            f"open: the share ACL ({share.summary()}) and the root's file DACL "
            f"({root.summary()}) both grant read to anyone"
        ), True
    if share_open:
        return f"the file DACL restricts (the share ACL grants {share.summary()})", False
    if root_open:
        return f"the share ACL restricts (the root's file DACL grants {root.summary()})", False
    return "the share ACL and the file DACL both restrict", False
