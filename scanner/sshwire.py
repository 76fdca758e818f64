"""The SSH transport layer as far as an unauthenticated audit needs it (RFC 4253, 4251, 5656).

Assay reads the server's identification line, its KEXINIT and its host key itself: the input
comes from a server nobody vouches for, and ssh clients built for logging in give up at the
first unsupported algorithm, which is exactly what an audit wants to list. Everything here is
pure (bytes in, typed values out) so it can be fuzzed, and every length is checked against a
limit before anything is allocated:

- the identification line is at most 255 bytes with its CR LF (RFC 4253 4.2), the lines a
  server may send before it at most `MAX_PRE_LINES` lines / `MAX_PRE_BYTES` bytes in total;
- a binary packet before NEWKEYS is at most `MAX_PACKET` bytes (RFC 4253 6.1 requires 35000;
  a KEX reply with a 16384-bit RSA key and signature is about 4.5 KB);
- a name-list has at most `MAX_NAMES` names of printable US-ASCII.

Errors are `SshWireError` with a message naming what was being read and where it broke.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from dataclasses import dataclass

# -- limits -------------------------------------------------------------------------------------
MAX_IDENT = 255  # identification line including CR LF (RFC 4253 4.2)
MAX_PRE_LINES = 50  # lines a server may send before its identification
MAX_PRE_BYTES = 8192  # ... and their total size
MAX_PACKET = 65536  # packet_length of one unencrypted packet
MAX_NAMES = 256  # names in one name-list
MAX_NAME = 128  # characters of one algorithm name (RFC 4251 says 64; be lenient)
MAX_MPINT = 2100  # bytes of one mpint (16800 bits)

# -- message numbers (RFC 4250 4.1) -------------------------------------------------------------
MSG_DISCONNECT = 1
MSG_IGNORE = 2
MSG_UNIMPLEMENTED = 3
MSG_DEBUG = 4
MSG_SERVICE_REQUEST = 5
MSG_SERVICE_ACCEPT = 6
MSG_EXT_INFO = 7
MSG_KEXINIT = 20
MSG_NEWKEYS = 21
MSG_KEX_INIT = 30  # KEXDH_INIT / KEX_ECDH_INIT
MSG_KEX_REPLY = 31  # KEXDH_REPLY / KEX_ECDH_REPLY / KEX_DH_GEX_GROUP
MSG_GEX_INIT = 32
MSG_GEX_REPLY = 33
MSG_GEX_REQUEST = 34
MSG_USERAUTH_REQUEST = 50
MSG_USERAUTH_FAILURE = 51
MSG_USERAUTH_SUCCESS = 52
MSG_USERAUTH_BANNER = 53

STRICT_KEX_SERVER = "kex-strict-s-v00@openssh.com"  # the Terrapin countermeasure marker


class SshWireError(ValueError):
    """The peer's bytes break the SSH wire format or one of the parser's limits."""


# -- identification line ------------------------------------------------------------------------
@dataclass(frozen=True)
class Identification:
    """`SSH-protoversion-softwareversion SP comments`, plus any lines the server sent first."""

    line: str
    proto: str
    software: str
    comments: str
    pre_lines: tuple[str, ...] = ()
    raw: bytes = b""  # the line as sent, without CR LF (hashed into the key exchange)


def printable(data: bytes, limit: int = 512) -> str:
    """Server text for facts and messages: latin-1, control characters escaped, bounded."""
    text = data[:limit].decode("latin-1")
    out = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
    return out + ("..." if len(data) > limit else "")


def split_identification(buf: bytes) -> tuple[Identification, bytes] | None:
    """The identification in `buf` and the bytes after it, or None when more input is needed.

    Raises SshWireError as soon as `buf` cannot become a valid identification within the
    limits, so a caller that reads a 1 MB banner stops after a few hundred bytes.
    """
    pre: list[str] = []
    pos = 0
    while True:
        end = buf.find(b"\n", pos)
        chunk = buf[pos:] if end < 0 else buf[pos : end + 1]
        if chunk[:4] == b"SSH-"[: len(chunk[:4])] and len(chunk) > 0:
            if len(chunk) > MAX_IDENT:
                raise SshWireError(
                    f"identification line longer than {MAX_IDENT} bytes: {printable(chunk, 60)}"
                )
            if end < 0 or len(chunk) < 4:
                return None
            return _parse_ident(chunk, tuple(pre)), buf[end + 1 :]
        if end < 0:
            if pos + len(chunk) > MAX_PRE_BYTES:
                raise SshWireError(
                    f"no SSH identification within the first {MAX_PRE_BYTES} bytes "
                    f"(server sent {printable(buf[:60], 60)})"
                )
            return None
        pre.append(printable(chunk.rstrip(b"\r\n"), 200))
        pos = end + 1
        if len(pre) > MAX_PRE_LINES or pos > MAX_PRE_BYTES:
            raise SshWireError(
                f"no SSH identification within {MAX_PRE_LINES} lines / {MAX_PRE_BYTES} bytes "
                f"(first line: {pre[0]})"
            )


def _parse_ident(raw: bytes, pre: tuple[str, ...]) -> Identification:
    line = raw.rstrip(b"\n").rstrip(b"\r")
    if b"\x00" in line or any(b < 0x20 or b > 0x7E for b in line.split(b" ", 1)[0]):
        raise SshWireError(f"identification contains control characters: {printable(line, 80)}")
    text = line.decode("latin-1")
    head, _, comments = text.partition(" ")
    parts = head.split("-", 2)
    if len(parts) != 3 or not parts[1] or not parts[2]:
        raise SshWireError(f"malformed identification line: {printable(line, 80)}")
    return Identification(
        line=printable(line, MAX_IDENT),
        proto=parts[1],
        software=parts[2],
        comments=printable(comments.encode("latin-1"), MAX_IDENT),
        pre_lines=pre,
        raw=line,
    )


# -- binary packets -----------------------------------------------------------------------------
def packet_length(header: bytes, limit: int = MAX_PACKET) -> int:
    """Validate the 4-byte packet_length that starts every packet; the bytes that follow."""
    if len(header) < 4:
        raise SshWireError("packet header truncated")
    (length,) = struct.unpack(">I", header[:4])
    if length > limit:
        raise SshWireError(f"packet of {length} bytes refused (limit {limit})")
    if length < 5:
        raise SshWireError(f"packet length {length} is too short for padding and a message")
    return length


def decode_packet(body: bytes) -> bytes:
    """Payload of one unencrypted packet, given the `packet_length` bytes after the header."""
    if not body:
        raise SshWireError("empty packet")
    pad = body[0]
    if pad + 1 >= len(body):
        raise SshWireError(f"padding length {pad} leaves no payload in a {len(body)}-byte packet")
    return body[1 : len(body) - pad]


def split_packet(buf: bytes, limit: int = MAX_PACKET) -> tuple[bytes, bytes] | None:
    """One payload from the front of `buf` and the rest, or None when it is incomplete."""
    if len(buf) < 4:
        return None
    length = packet_length(buf, limit)
    if len(buf) < 4 + length:
        return None
    return decode_packet(buf[4 : 4 + length]), buf[4 + length :]


def encode_packet(payload: bytes, block: int = 8) -> bytes:
    """An unencrypted packet: length, padding length, payload, random padding (4+ bytes)."""
    pad = block - (len(payload) + 5) % block
    if pad < 4:
        pad += block
    return struct.pack(">IB", len(payload) + pad + 1, pad) + payload + os.urandom(pad)


# -- primitive data types (RFC 4251 5) ----------------------------------------------------------
class Reader:
    """Cursor over one message; every read names what it was reading when it fails."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = data, 0, what

    def _take(self, n: int, field: str) -> bytes:
        if n > len(self.data) - self.pos:
            raise SshWireError(
                f"{self.what}: truncated reading {field} at byte {self.pos} "
                f"(needs {n}, {len(self.data) - self.pos} left)"
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def byte(self, field: str) -> int:
        return self._take(1, field)[0]

    def boolean(self, field: str) -> bool:
        return self.byte(field) != 0

    def uint32(self, field: str) -> int:
        return int(struct.unpack(">I", self._take(4, field))[0])

    def string(self, field: str, limit: int = MAX_PACKET) -> bytes:
        n = self.uint32(f"{field} length")
        if n > limit:
            raise SshWireError(f"{self.what}: {field} of {n} bytes refused (limit {limit})")
        return self._take(n, field)

    def mpint(self, field: str) -> int:
        raw = self.string(field, MAX_MPINT)
        return int.from_bytes(raw, "big", signed=True) if raw else 0

    def name_list(self, field: str) -> tuple[str, ...]:
        raw = self.string(field)
        if not raw:
            return ()
        if any(b <= 0x20 or b >= 0x7F for b in raw):
            raise SshWireError(
                f"{self.what}: {field} has non-printable bytes: {printable(raw, 60)}"
            )
        names = raw.decode("ascii").split(",")
        if len(names) > MAX_NAMES:
            raise SshWireError(f"{self.what}: {field} has {len(names)} names (limit {MAX_NAMES})")
        for name in names:
            if not name:
                raise SshWireError(f"{self.what}: {field} has an empty name: {printable(raw, 60)}")
            if len(name) > MAX_NAME:
                raise SshWireError(
                    f"{self.what}: {field} has a name of {len(name)} characters (limit {MAX_NAME})"
                )
        return tuple(names)

    def rest(self) -> bytes:
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out


def encode_string(data: bytes | str) -> bytes:
    raw = data.encode() if isinstance(data, str) else data
    return struct.pack(">I", len(raw)) + raw


def encode_mpint(value: int) -> bytes:
    if value == 0:
        return encode_string(b"")
    raw = value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True)
    return encode_string(raw)


def encode_name_list(names: tuple[str, ...] | list[str]) -> bytes:
    return encode_string(",".join(names).encode("ascii"))


# -- KEXINIT (RFC 4253 7.1) ---------------------------------------------------------------------
@dataclass(frozen=True)
class KexInit:
    cookie: bytes
    kex: tuple[str, ...]
    host_key: tuple[str, ...]
    ciphers_c2s: tuple[str, ...]
    ciphers_s2c: tuple[str, ...]
    macs_c2s: tuple[str, ...]
    macs_s2c: tuple[str, ...]
    compression_c2s: tuple[str, ...]
    compression_s2c: tuple[str, ...]
    languages_c2s: tuple[str, ...] = ()
    languages_s2c: tuple[str, ...] = ()
    first_kex_follows: bool = False

    @property
    def strict_kex(self) -> bool:
        return STRICT_KEX_SERVER in self.kex


_KEXINIT_LISTS = (
    "kex_algorithms",
    "server_host_key_algorithms",
    "encryption_algorithms_client_to_server",
    "encryption_algorithms_server_to_client",
    "mac_algorithms_client_to_server",
    "mac_algorithms_server_to_client",
    "compression_algorithms_client_to_server",
    "compression_algorithms_server_to_client",
    "languages_client_to_server",
    "languages_server_to_client",
)


def parse_kexinit(payload: bytes) -> KexInit:
    r = Reader(payload, "KEXINIT")
    msg = r.byte("message number")
    if msg != MSG_KEXINIT:
        raise SshWireError(f"expected KEXINIT (20), got message {msg}")
    cookie = r._take(16, "cookie")
    lists = [r.name_list(name) for name in _KEXINIT_LISTS]
    follows = r.boolean("first_kex_packet_follows")
    r.uint32("reserved")
    return KexInit(
        cookie,
        kex=lists[0],
        host_key=lists[1],
        ciphers_c2s=lists[2],
        ciphers_s2c=lists[3],
        macs_c2s=lists[4],
        macs_s2c=lists[5],
        compression_c2s=lists[6],
        compression_s2c=lists[7],
        languages_c2s=lists[8],
        languages_s2c=lists[9],
        first_kex_follows=follows,
    )


def encode_kexinit(k: KexInit) -> bytes:
    lists = (
        k.kex,
        k.host_key,
        k.ciphers_c2s,
        k.ciphers_s2c,
        k.macs_c2s,
        k.macs_s2c,
        k.compression_c2s,
        k.compression_s2c,
        k.languages_c2s,
        k.languages_s2c,
    )
    return (
        bytes([MSG_KEXINIT])
        + k.cookie
        + b"".join(encode_name_list(x) for x in lists)
        + bytes([1 if k.first_kex_follows else 0])
        + b"\x00\x00\x00\x00"
    )


def parse_disconnect(payload: bytes) -> str:
    """`reason code N: description` of an SSH_MSG_DISCONNECT, tolerant of a short message."""
    r = Reader(payload, "DISCONNECT")
    r.byte("message number")
    try:
        code = r.uint32("reason code")
        text = r.string("description", 4096)
    except SshWireError:
        return "disconnect without a readable reason"
    return f"reason code {code}: {printable(text, 200)}"


# -- host keys (RFC 4253 6.6, RFC 5656 3.1, RFC 8709) ------------------------------------------
@dataclass(frozen=True)
class HostKey:
    """What the audit needs to know about one public host key."""

    key_type: str  # the blob's own type name, e.g. "ssh-rsa", "ssh-ed25519"
    family: str  # "rsa", "dsa", "ecdsa", "ed25519", "ed448", "unknown"
    bits: int  # modulus / p size, curve size, or 0 when unknown
    curve: str  # "nistp256", ... for ECDSA
    fingerprint: str  # "SHA256:..." as ssh-keygen -l prints it
    certificate: bool = False
    rsa_exponent: int = 0


_CURVE_BITS = {"nistp256": 256, "nistp384": 384, "nistp521": 521}


def fingerprint_sha256(blob: bytes) -> str:
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def parse_host_key(blob: bytes) -> HostKey:
    r = Reader(blob, "host key")
    key_type = r.string("key type", 256).decode("latin-1")
    fp = fingerprint_sha256(blob)
    cert = key_type.endswith("-cert-v01@openssh.com")
    base = key_type.removesuffix("-cert-v01@openssh.com")
    if cert:
        r.string("certificate nonce", 1024)
    if base == "ssh-rsa":
        e = r.mpint("RSA exponent e")
        n = r.mpint("RSA modulus n")
        if n <= 0 or e <= 0:
            raise SshWireError("host key: RSA key with a non-positive modulus or exponent")
        return HostKey(key_type, "rsa", n.bit_length(), "", fp, cert, e)
    if base == "ssh-dss":
        p = r.mpint("DSA p")
        for name in ("DSA q", "DSA g", "DSA y"):
            r.mpint(name)
        return HostKey(key_type, "dsa", max(p, 0).bit_length(), "", fp, cert)
    if base.startswith(("ecdsa-sha2-", "sk-ecdsa-sha2-")):
        curve = r.string("ECDSA curve name", 64).decode("latin-1")
        point = r.string("ECDSA public point", 1024)
        if not point or point[0] not in (2, 3, 4):
            raise SshWireError("host key: ECDSA point is not in SEC1 encoding")
        return HostKey(
            key_type, "ecdsa", _CURVE_BITS.get(curve, 0), printable(curve.encode()), fp, cert
        )
    if base in ("ssh-ed25519", "sk-ssh-ed25519@openssh.com"):
        pk = r.string("Ed25519 public key", 64)
        if len(pk) != 32:
            raise SshWireError(f"host key: Ed25519 key of {len(pk)} bytes (must be 32)")
        return HostKey(key_type, "ed25519", 256, "", fp, cert)
    if base == "ssh-ed448":
        pk = r.string("Ed448 public key", 64)
        if len(pk) != 57:
            raise SshWireError(f"host key: Ed448 key of {len(pk)} bytes (must be 57)")
        return HostKey(key_type, "ed448", 456, "", fp, cert)
    return HostKey(printable(key_type.encode("latin-1"), 64), "unknown", 0, "", fp, cert)


# -- key exchange replies -----------------------------------------------------------------------
@dataclass(frozen=True)
class KexReply:
    host_key_blob: bytes
    server_public: bytes  # Q_S (ECDH) or the mpint f (DH), as sent
    signature_algorithm: str


def parse_kex_reply(payload: bytes, msg: int = MSG_KEX_REPLY) -> KexReply:
    """KEXDH_REPLY, KEX_ECDH_REPLY (31) or KEX_DH_GEX_REPLY (33): K_S, f or Q_S, signature."""
    r = Reader(payload, "KEX reply")
    got = r.byte("message number")
    if got != msg:
        raise SshWireError(f"expected KEX reply ({msg}), got message {got}")
    blob = r.string("host key", 16384)
    public = r.string("server public value", 16384)
    sig = Reader(r.string("signature", 16384), "KEX reply signature")
    alg = sig.string("signature algorithm", 256).decode("latin-1")
    return KexReply(blob, public, printable(alg.encode("latin-1"), 64))


def parse_gex_group(payload: bytes) -> tuple[int, int]:
    """KEX_DH_GEX_GROUP (31): the prime p and generator g the server chose."""
    r = Reader(payload, "DH GEX group")
    got = r.byte("message number")
    if got != MSG_KEX_REPLY:
        raise SshWireError(f"expected DH GEX group (31), got message {got}")
    p, g = r.mpint("prime p"), r.mpint("generator g")
    if p < 3 or not 1 < g < p:
        raise SshWireError("DH GEX group: invalid prime or generator")
    return p, g


# -- fixed Diffie-Hellman groups ----------------------------------------------------------------
# Oakley group 2 (RFC 2409 6.2, 1024 bits) and the 2048- and 4096-bit MODP groups of RFC 3526;
# their generator is 2. Only used to obtain the host key when nothing better is offered.
_OAKLEY2 = (
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A0879"
    "8E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B"
    "0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF"
)
_MODP2048 = (
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A0879"
    "8E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B"
    "0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA4836"
    "1C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804"
    "F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6"
    "955817183995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF"
)
DH_GROUPS: dict[str, int] = {
    "diffie-hellman-group1-sha1": int(_OAKLEY2, 16),
    "diffie-hellman-group14-sha1": int(_MODP2048, 16),
    "diffie-hellman-group14-sha256": int(_MODP2048, 16),
}
