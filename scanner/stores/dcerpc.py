"""The few DCE/RPC and NDR pieces Assay needs to read an SMB share's own permissions.

A share has two access lists: the file system's DACL on its folder (read with QUERY_INFO), and
the share's security descriptor kept by the server service, which is only given out by the
`srvsvc` interface (MS-SRVS NetrShareGetInfo, opnum 16, level 502) over the `\\PIPE\\srvsvc`
named pipe on IPC$. What is reachable through the share is what BOTH allow, so the scan needs
the second one too.

Why our own encoder: the call is one bind and one request; an RPC library (impacket) would pull
in a whole protocol suite with its own SMB stack. Everything here is pure: bytes in, bytes or a
typed answer out, with a bound on every length, so a hostile server costs a ValueError, and the
parser can be fuzzed without a network.

Wire facts (MS-RPCE 2.2.2, C706 12.6; MS-SRVS 2.2.4.26, 3.1.4.10):
* connection-oriented PDUs: 16-byte header (version 5.0, type, flags, data representation
  10 00 00 00 = little-endian/ASCII/IEEE, fragment length, auth length, call id);
* bind (type 11) with one presentation context: srvsvc 4b324fc8-1670-01d3-1278-5a47bf6ee188
  v3.0 over NDR 8a885d04-1ceb-11c9-9fe8-08002b104860 v2; bind_ack (12), bind_nak (13);
* request (0) / response (2) / fault (3);
* NetrShareGetInfo(ServerName unique string, NetName ref string, Level, out InfoStruct) returns
  NET_API_STATUS; SHARE_INFO_502_I holds the share's self-relative security descriptor as a
  conformant byte array whose size is shi502_reserved.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

SRVSVC = uuid.UUID("4b324fc8-1670-01d3-1278-5a47bf6ee188")
SRVSVC_VERSION = (3, 0)
NDR = uuid.UUID("8a885d04-1ceb-11c9-9fe8-08002b104860")
NDR_VERSION = 2
OPNUM_SHARE_GET_INFO = 16
MAX_FRAG = 4280  # what we offer to send and receive per fragment
MAX_PDU_BYTES = 65_536  # one fragment from a server; more is hostile
MAX_STUB_BYTES = 256 * 1024  # a whole answer over all fragments
MAX_FRAGMENTS = 64
MAX_STRING_CHARS = 4096  # share names, paths and remarks are far shorter
MAX_SD_BYTES = 64 * 1024

_BIND, _BIND_ACK, _BIND_NAK, _REQUEST, _RESPONSE, _FAULT = 11, 12, 13, 0, 2, 3
_FIRST, _LAST = 0x01, 0x02
_DREP = b"\x10\x00\x00\x00"

# the NET_API_STATUS / Win32 and nca fault codes an assessor will meet, by name
_STATUS = {
    5: "ERROR_ACCESS_DENIED",
    53: "ERROR_BAD_NETPATH",
    87: "ERROR_INVALID_PARAMETER",
    124: "ERROR_INVALID_LEVEL",
    2310: "NERR_NetNameNotFound",
    0x1C010002: "nca_s_op_rng_error",
    0x1C010003: "nca_s_unk_if",
    0xC0000022: "STATUS_ACCESS_DENIED",
}


def status_name(code: int) -> str:
    name = _STATUS.get(code)
    return f"{name} ({code:#x})" if name else f"status {code:#x}"


class RpcRefused(Exception):
    """The server answered correctly but refused: a bind_nak, a fault or a non-zero status.
    Not a hostile answer: the message names the status (e.g. ERROR_ACCESS_DENIED)."""


def _header(ptype: int, call_id: int, body_len: int) -> bytes:
    return struct.pack("<BBBB4sHHI", 5, 0, ptype, _FIRST | _LAST, _DREP, 16 + body_len, 0, call_id)


def bind_pdu(call_id: int = 1) -> bytes:
    ctx = struct.pack("<HBB", 0, 1, 0)
    ctx += SRVSVC.bytes_le + struct.pack("<HH", *SRVSVC_VERSION)
    ctx += NDR.bytes_le + struct.pack("<I", NDR_VERSION)
    body = struct.pack("<HHIBBH", MAX_FRAG, MAX_FRAG, 0, 1, 0, 0) + ctx
    return _header(_BIND, call_id, len(body)) + body


def request_pdu(opnum: int, stub: bytes, call_id: int = 2) -> bytes:
    if len(stub) + 24 > MAX_FRAG:
        raise ValueError("request stub larger than one fragment")
    body = struct.pack("<IHH", len(stub), 0, opnum) + stub
    return _header(_REQUEST, call_id, len(body)) + body


@dataclass(frozen=True)
class Pdu:
    ptype: int
    flags: int
    call_id: int
    body: bytes


def parse_pdu(data: bytes) -> Pdu:
    """One connection-oriented PDU; ValueError for anything that is not one."""
    if len(data) < 16:
        raise ValueError(f"RPC answer of {len(data)} bytes is shorter than a PDU header")
    ver, minor, ptype, flags, drep, frag_len, auth_len, call_id = struct.unpack_from(
        "<BBBB4sHHI", data
    )
    if ver != 5 or minor != 0:
        raise ValueError(f"not a DCE/RPC 5.0 PDU (version {ver}.{minor})")
    if drep[0] & 0xF0 != 0x10:
        raise ValueError("RPC answer is big-endian; only little-endian is understood")
    if frag_len < 16 or frag_len > len(data) or frag_len > MAX_PDU_BYTES:
        raise ValueError(f"RPC fragment length {frag_len} does not match {len(data)} bytes")
    if auth_len + 16 > frag_len:
        raise ValueError("RPC auth length runs past the fragment")
    return Pdu(ptype, flags, call_id, data[16 : frag_len - auth_len])


def check_bind_ack(data: bytes) -> None:
    """Accept the bind answer or raise: RpcRefused (bind_nak, context rejected), ValueError."""
    pdu = parse_pdu(data)
    if pdu.ptype == _BIND_NAK:
        reason = struct.unpack_from("<H", pdu.body)[0] if len(pdu.body) >= 2 else -1
        raise RpcRefused(f"srvsvc bind refused (bind_nak, reason {reason})")
    if pdu.ptype != _BIND_ACK:
        raise ValueError(f"answer to the bind is PDU type {pdu.ptype}, not bind_ack")
    b = pdu.body
    if len(b) < 10:
        raise ValueError("bind_ack too short")
    addr_len = struct.unpack_from("<H", b, 8)[0]
    pos = 10 + addr_len
    pos += -pos % 4
    if pos + 4 + 24 > len(b):
        raise ValueError("bind_ack result list runs past the PDU")
    n_results = b[pos]
    if n_results < 1:
        raise ValueError("bind_ack without a result")
    result, reason = struct.unpack_from("<HH", b, pos + 4)
    if result != 0:
        raise RpcRefused(f"srvsvc interface not accepted (result {result}, reason {reason})")
    syntax = uuid.UUID(bytes_le=b[pos + 8 : pos + 24])
    if syntax != NDR:
        raise ValueError(f"bind_ack chose transfer syntax {syntax}, not NDR")


def response_stub(fragments: list[bytes], call_id: int = 2) -> bytes:
    """The stub of a (possibly fragmented) response; RpcRefused for a fault."""
    stub = b""
    if not fragments:
        raise ValueError("no RPC answer")
    for i, frag in enumerate(fragments):
        pdu = parse_pdu(frag)
        if pdu.call_id != call_id:
            raise ValueError(f"RPC answer for call {pdu.call_id}, expected {call_id}")
        if pdu.ptype == _FAULT:
            code = struct.unpack_from("<I", pdu.body, 8)[0] if len(pdu.body) >= 12 else 0
            raise RpcRefused(f"RPC fault {status_name(code)}")
        if pdu.ptype != _RESPONSE:
            raise ValueError(f"RPC answer is PDU type {pdu.ptype}, not a response")
        if i == 0 and not pdu.flags & _FIRST:
            raise ValueError("first RPC fragment without the first-fragment flag")
        if len(pdu.body) < 8:
            raise ValueError("RPC response too short")
        stub += pdu.body[8:]
        if len(stub) > MAX_STUB_BYTES:
            raise ValueError(f"RPC answer larger than {MAX_STUB_BYTES} bytes")
        if pdu.flags & _LAST:
            if i != len(fragments) - 1:
                raise ValueError("RPC fragments after the last one")
            return stub
    raise ValueError("RPC answer ends without its last fragment")


def is_last_fragment(data: bytes) -> bool:
    return len(data) >= 4 and bool(data[3] & _LAST)


# -- NDR ------------------------------------------------------------------------------------
def _ndr_string(text: str) -> bytes:
    """A conformant varying string of UTF-16 code units with its NUL, padded to 4."""
    raw = (text + "\0").encode("utf-16-le")
    n = len(raw) // 2
    out = struct.pack("<III", n, 0, n) + raw
    return out + b"\0" * (-len(out) % 4)


def share_get_info_stub(share: str, level: int = 502) -> bytes:
    """NetrShareGetInfo's input: a NULL ServerName (this server), the share name, the level."""
    return struct.pack("<I", 0) + _ndr_string(share) + struct.pack("<I", level)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def align(self, n: int) -> None:
        self.pos += -self.pos % n

    def u32(self) -> int:
        self.align(4)
        if self.pos + 4 > len(self.data):
            raise ValueError("NDR answer ends inside a number")
        value: int = struct.unpack_from("<I", self.data, self.pos)[0]
        self.pos += 4
        return value

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError("NDR answer ends inside an array")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def string(self) -> str:
        max_count, offset, actual = self.u32(), self.u32(), self.u32()
        if actual > max_count or offset != 0 or max_count > MAX_STRING_CHARS:
            raise ValueError(f"NDR string with impossible counts ({max_count}/{offset}/{actual})")
        raw = self.take(2 * actual)
        return raw.decode("utf-16-le", "replace").rstrip("\0")


@dataclass(frozen=True)
class ShareInfo502:
    netname: str
    path: str
    share_type: int
    security_descriptor: bytes  # b"" when the server keeps none


def parse_share_info_502(stub: bytes) -> ShareInfo502:
    """NetrShareGetInfo's output at level 502. RpcRefused for a non-zero NET_API_STATUS,
    ValueError for an answer that does not parse."""
    r = _Reader(stub)
    level = r.u32()
    ref = r.u32()
    if ref == 0:  # no structure: the status says why (ERROR_ACCESS_DENIED for non-admins)
        status = r.u32()
        raise RpcRefused(status_name(status) if status else "no share information returned")
    if level != 502:
        raise ValueError(f"share information at level {level}, asked for 502")
    p_name, share_type, p_remark = r.u32(), r.u32(), r.u32()
    _perms, _max_uses, _uses = r.u32(), r.u32(), r.u32()
    p_path, p_passwd, sd_size, p_sd = r.u32(), r.u32(), r.u32(), r.u32()
    if sd_size > MAX_SD_BYTES:
        raise ValueError(f"share security descriptor of {sd_size} bytes (limit {MAX_SD_BYTES})")
    name = r.string() if p_name else ""
    if p_remark:
        r.string()
    path = r.string() if p_path else ""
    if p_passwd:
        r.string()
    sd = b""
    if p_sd:
        count = r.u32()
        if count != sd_size:
            raise ValueError(f"security descriptor array of {count} bytes, announced {sd_size}")
        sd = r.take(count)
    status = r.u32()
    if status != 0:
        raise RpcRefused(status_name(status))
    return ShareInfo502(name, path, share_type, sd)
