"""Just enough of the encrypted SSH transport to ask which login methods a server allows.

After the key exchange the `none` authentication request must travel encrypted. Rather than
running a full client library in a thread for one request, Assay derives the session keys
itself (RFC 4253 7.2) and speaks one of a few widely offered packet protections:

- `aes128-gcm@openssh.com`, `aes256-gcm@openssh.com` (RFC 5647 as OpenSSH uses it);
- `chacha20-poly1305@openssh.com` (OpenSSH's PROTOCOL.chacha20poly1305);
- `aes128-ctr`, `aes192-ctr`, `aes256-ctr` with `hmac-sha2-256`, `hmac-sha2-512`,
  `hmac-sha1` and their `-etm@openssh.com` variants.

The host key signature is not verified: the audit sends nothing secret (a made-up user name
and the `none` method), and it reports the host key it saw instead of trusting it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import poly1305
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from scanner import sshwire as w

CIPHERS: dict[str, tuple[int, int]] = {  # name -> (key bytes, IV bytes)
    "aes128-gcm@openssh.com": (16, 12),
    "aes256-gcm@openssh.com": (32, 12),
    "chacha20-poly1305@openssh.com": (64, 0),
    "aes128-ctr": (16, 16),
    "aes192-ctr": (24, 16),
    "aes256-ctr": (32, 16),
}
AEAD = frozenset(
    {"aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com"}
)
MACS: dict[str, tuple[Callable[[], hashlib._Hash], int, bool]] = {  # name -> (hash, key, EtM)
    "hmac-sha2-256-etm@openssh.com": (hashlib.sha256, 32, True),
    "hmac-sha2-512-etm@openssh.com": (hashlib.sha512, 64, True),
    "hmac-sha2-256": (hashlib.sha256, 32, False),
    "hmac-sha2-512": (hashlib.sha512, 64, False),
    "hmac-sha1-etm@openssh.com": (hashlib.sha1, 20, True),
    "hmac-sha1": (hashlib.sha1, 20, False),
}


def kex_hash(method: str) -> Callable[[bytes], hashlib._Hash]:
    """The exchange hash of a key-exchange method (RFC 4253 8, 5656, 8731, 9142)."""
    if method.endswith("-sha1"):
        return hashlib.sha1
    if method.endswith(("nistp384", "-sha384")):
        return hashlib.sha384
    if method.endswith(("nistp521", "-sha512")):
        return hashlib.sha512
    return hashlib.sha256


def derive(
    hash_fn: Callable[[bytes], hashlib._Hash], k: bytes, h: bytes, letter: str, size: int
) -> bytes:
    """Key material `letter` (A-F) of `size` bytes; `k` is the shared secret as an mpint."""
    out = hash_fn(k + h + letter.encode() + h).digest()  # session id = H of the first exchange
    while len(out) < size:
        out += hash_fn(k + h + out).digest()
    return out[:size]


@dataclass
class Direction:
    """Packet protection for one direction, with its own sequence number."""

    cipher: str
    mac: str
    key: bytes
    iv: bytes
    mac_key: bytes
    seq: int
    _ctr: CipherContext | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.cipher.endswith("-ctr"):
            self._ctr = Cipher(algorithms.AES(self.key), modes.CTR(self.iv)).encryptor()

    @property
    def block(self) -> int:
        return 8 if self.cipher.startswith("chacha20") else 16

    def _next_seq(self) -> int:
        seq, self.seq = self.seq, (self.seq + 1) & 0xFFFFFFFF
        return seq

    def _gcm_nonce(self) -> bytes:
        nonce = self.iv
        fixed, counter = nonce[:4], int.from_bytes(nonce[4:], "big")
        self.iv = fixed + ((counter + 1) % (1 << 64)).to_bytes(8, "big")
        return nonce

    def _pad(self, payload: bytes, length_outside: bool) -> bytes:
        covered = len(payload) + 1 + (0 if length_outside else 4)
        pad = self.block - covered % self.block
        if pad < 4:
            pad += self.block
        return struct.pack(">IB", len(payload) + pad + 1, pad) + payload + os.urandom(pad)

    # -- sending ---------------------------------------------------------------------------------
    def seal(self, payload: bytes) -> bytes:
        seq = self._next_seq()
        if self.cipher in ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com"):
            packet = self._pad(payload, True)
            ct = AESGCM(self.key).encrypt(self._gcm_nonce(), packet[4:], packet[:4])
            return packet[:4] + ct
        if self.cipher == "chacha20-poly1305@openssh.com":
            packet = self._pad(payload, True)
            enc_len = _chacha(self.key[32:], seq, 0, packet[:4])
            body = _chacha(self.key[:32], seq, 1, packet[4:])
            tag = poly1305.Poly1305.generate_tag(_poly_key(self.key[:32], seq), enc_len + body)
            return enc_len + body + tag
        assert self._ctr is not None
        hash_fn, _, etm = MACS[self.mac]
        packet = self._pad(payload, etm)
        seqb = struct.pack(">I", seq)
        if etm:
            body = self._ctr.update(packet[4:])
            tag = hmac.new(self.mac_key, seqb + packet[:4] + body, hash_fn).digest()
            return packet[:4] + body + tag
        tag = hmac.new(self.mac_key, seqb + packet, hash_fn).digest()
        return self._ctr.update(packet) + tag

    # -- receiving -------------------------------------------------------------------------------
    def tag_size(self) -> int:
        if self.cipher in AEAD:
            return 16
        return MACS[self.mac][0]().digest_size

    def length(self, head: bytes) -> tuple[int, bytes]:
        """packet_length from the first bytes of a packet (4, or one block for E&M CTR)."""
        if self.cipher in ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com") or (
            self.cipher.endswith("-ctr") and MACS[self.mac][2]
        ):
            return struct.unpack(">I", head[:4])[0], head[:4]
        if self.cipher == "chacha20-poly1305@openssh.com":
            clear = _chacha(self.key[32:], self.seq, 0, head[:4])
            return struct.unpack(">I", clear)[0], clear
        assert self._ctr is not None
        clear = self._ctr.update(head[:16])
        return struct.unpack(">I", clear[:4])[0], clear

    def head_size(self) -> int:
        return 16 if self.cipher.endswith("-ctr") and not MACS[self.mac][2] else 4

    def open(self, raw: bytes, clear_head: bytes) -> bytes:
        """The payload of one whole packet `raw` (head, body, tag) whose head was decoded."""
        seq = self._next_seq()
        tag_len = self.tag_size()
        body, tag = raw[:-tag_len], raw[-tag_len:]
        if self.cipher in ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com"):
            try:
                clear = AESGCM(self.key).decrypt(self._gcm_nonce(), body[4:] + tag, body[:4])
            except InvalidTag:
                raise w.SshWireError("encrypted packet failed its GCM tag check") from None
            return w.decode_packet(clear)
        if self.cipher == "chacha20-poly1305@openssh.com":
            try:
                poly1305.Poly1305.verify_tag(_poly_key(self.key[:32], seq), body, tag)
            except (InvalidSignature, InvalidTag):
                raise w.SshWireError("encrypted packet failed its Poly1305 tag check") from None
            return w.decode_packet(_chacha(self.key[:32], seq, 1, body[4:]))
        assert self._ctr is not None
        hash_fn, _, etm = MACS[self.mac]
        seqb = struct.pack(">I", seq)
        if etm:
            expected = hmac.new(self.mac_key, seqb + body, hash_fn).digest()
            clear = self._ctr.update(body[4:])
        else:
            whole = clear_head + self._ctr.update(body[len(clear_head) :])
            expected = hmac.new(self.mac_key, seqb + whole, hash_fn).digest()
            clear = whole[4:]
        if not hmac.compare_digest(expected, tag):
            raise w.SshWireError("encrypted packet failed its MAC check")
        return w.decode_packet(clear)


def _chacha(key: bytes, seq: int, counter: int, data: bytes) -> bytes:
    # OpenSSH uses the original ChaCha20 (64-bit counter, 64-bit nonce = sequence number);
    # OpenSSL's 16-byte IV is counter || nonce in the same state words.
    nonce = counter.to_bytes(8, "little") + seq.to_bytes(8, "big")
    return Cipher(algorithms.ChaCha20(key, nonce), mode=None).encryptor().update(data)


def _poly_key(key: bytes, seq: int) -> bytes:
    return _chacha(key, seq, 0, bytes(32))


def choose(ours: tuple[str, ...], theirs: tuple[str, ...] | list[str]) -> str | None:
    return next((a for a in ours if a in theirs), None)


def directions(
    method: str,
    k: bytes,
    h: bytes,
    cipher: str,
    mac: str,
    seq_out: int,
    seq_in: int,
) -> tuple[Direction, Direction]:
    """Client-to-server and server-to-client protection from the exchange's K and H."""
    hash_fn = kex_hash(method)
    key_len, iv_len = CIPHERS[cipher]
    mac_len = 0 if cipher in AEAD else MACS[mac][1]

    def one(iv: str, key: str, mk: str, seq: int) -> Direction:
        return Direction(
            cipher,
            mac,
            derive(hash_fn, k, h, key, key_len),
            derive(hash_fn, k, h, iv, iv_len) if iv_len else b"",
            derive(hash_fn, k, h, mk, mac_len) if mac_len else b"",
            seq,
        )

    return one("A", "C", "E", seq_out), one("B", "D", "F", seq_in)
