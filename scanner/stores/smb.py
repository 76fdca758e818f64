"""SMB shares (Samba, Windows) through smbprotocol's low-level API, SMB 2/3.

Why the low-level API and not `smbclient`: `smbclient` keeps one process-wide connection pool
keyed by server, so a guest probe, a cleartext probe and the scanning session to the same
server would share state and credentials; it also hides the negotiate result, the session's
guest flag and the share's encryption flag, which are the exposure facts. Here every probe has
its own connection, and every request runs under a watchdog that closes the socket when the
server stops answering (smbprotocol waits without a limit otherwise).

Exposure facts:
* guest / anonymous: a session set up with an unknown user name; a server that maps it to
  guest ("map to guest = Bad User") and then lists the share is readable by anyone;
* cleartext: the share accepts an unencrypted tree connect (SMB3 encryption not required);
* SMB1 offered: one NT LM 0.12 negotiate on its own connection (smbprotocol speaks no SMB1);
* signing not required: the SMB2 negotiate's security mode;
* permissions: the DACL of the share root, each folder and each file (READ_CONTROL); a read
  grant to Everyone, Guest(s) or Anonymous is public, to Authenticated Users / Users / Domain
  Users every account;
* share permissions: the share's own security descriptor, read over DCE/RPC (srvsvc
  NetrShareGetInfo level 502, see dcerpc.py; descriptors are parsed in secdesc.py). What the
  network reaches is what the share ACL AND the file DACL allow; the notes say which of the
  two restricts. Windows gives level 502
  to administrators only: a refusal is noted as "share ACL not readable: <status>", never as
  restricted.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from scanner.stores import dcerpc
from scanner.stores.base import Connector, Entry, Exposure, StoreError, TooLarge, TooManyEntries
from scanner.stores.cache import DOC
from scanner.stores.secdesc import (  # noqa: F401 - re-exported for checks and tests
    ANYONE_LABELS,
    ReadGrants,
    effective_access,
    grants_of,
    read_grants,
)

DEFAULT_PORT = 445
GUEST_PROBE_USER = "assay-guest-probe"  # unknown on purpose: tests "map to guest = Bad User"
MAX_SD_BYTES = 64 * 1024
MAX_LISTING_ROUNDS = 10_000  # QUERY_DIRECTORY rounds per folder
PIPELINE = 8  # files whose permissions are asked in one round trip (3-4 credits each)
WALK_BATCH = 256  # listed files asked for permissions together, then yielded
PREFETCH_READ = 65536  # files below this are read with their permissions (one credit)
MAX_PREFETCH_BYTES = 32 * 1024 * 1024  # bytes held between the walk and read()
_SIGNING_REQUIRED = 0x02

# the share-permission facts, as notes of the exposure (the checks read them back)
SHARE_ACL = "share ACL: "  # + "Everyone:R,..." or "restricted"
SHARE_ACL_UNREADABLE = "share ACL not readable: "  # + the status or the fault
EFFECTIVE = "effective access: "
RESTRICTED = "restricted"
MAX_PIPE_READ = 65536


def parse_smb_url(url: str) -> tuple[str, int, str, str]:
    """(host, port, share, path inside the share, '/'-separated) of smb://host[:port]/share/p."""
    parts = urlsplit(url)
    if parts.scheme != "smb" or not parts.hostname:
        raise ValueError(f"{url!r} is not an smb://ADDRESS[:PORT]/share[/path] location")
    if parts.username or parts.password:
        raise ValueError("an SMB location must not embed a user or password; use credential")
    if "\\" in url or parts.query or parts.fragment:
        raise ValueError(f"{url!r}: use '/' separators and no query or fragment")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ValueError(f"{url!r} has an invalid port") from None
    segs = [unquote(s) for s in parts.path.split("/") if s]
    if not segs:
        raise ValueError(f"{url!r} names no share (smb://ADDRESS/share)")
    if any(s in (".", "..") for s in segs):
        raise ValueError(f"{url!r}: '.' and '..' are not allowed in the path")
    bad = set('<>:"|?*') | {chr(c) for c in range(32)}
    if any(c in bad for s in segs for c in s):
        raise ValueError(f"{url!r}: a share or folder name contains a character SMB forbids")
    return parts.hostname, port, segs[0], "/".join(segs[1:])


# -- SMB1 ---------------------------------------------------------------------------------------
def smb1_offered(address: str, port: int, timeout: float) -> bool | None:
    """True when the server answers an SMB1 NT LM 0.12 negotiate with that dialect; False when
    it refuses or closes; None when the answer is not SMB at all."""
    dialects = b"\x02NT LM 0.12\x00"
    header = (
        b"\xffSMB\x72" + b"\x00" * 4 + b"\x18" + struct.pack("<H", 0xC801) + b"\x00" * 12
        + struct.pack("<HHHH", 0, 0xFEFF, 0, 0)
    )  # fmt: skip
    msg = header + b"\x00" + struct.pack("<H", len(dialects)) + dialects
    data = b""
    try:
        with socket.create_connection((address, port), timeout=timeout) as s:
            s.sendall(struct.pack(">I", len(msg)) + msg)
            while len(data) < 4 + 37:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    except TimeoutError:
        return None if not data else False
    except OSError:
        return False if data == b"" else None
    if len(data) < 4 + 35:
        return False  # closed the connection: SMB1 is off
    smb = data[4:]
    if smb[:4] == b"\xfeSMB":
        return False
    if smb[:4] != b"\xffSMB":
        return None
    status = struct.unpack_from("<I", smb, 5)[0]
    if status != 0 or smb[32] == 0:
        return False
    return struct.unpack_from("<H", smb, 33)[0] != 0xFFFF


# -- the connector ----------------------------------------------------------------------------
class _Watchdog:
    """One thread per store that closes the socket of a request past its deadline; cheaper
    than a timer thread per request (a share walk makes several requests per file)."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._armed: dict[int, tuple[Any, float]] = {}
        self._fired: set[int] = set()
        self._next = 0
        self._stop = False
        self._thread: threading.Thread | None = None

    def arm(self, conn: Any, timeout: float) -> int:
        with self._cv:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="smb-watchdog", daemon=True)
                self._thread.start()
            self._next += 1
            self._armed[self._next] = (conn, time.monotonic() + timeout)
            self._cv.notify()
            return self._next

    def disarm(self, token: int) -> bool:
        """Stop watching; True when the deadline had passed and the socket was closed."""
        with self._cv:
            self._armed.pop(token, None)
            fired = token in self._fired
            self._fired.discard(token)
            return fired

    def stop(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)

    def _run(self) -> None:
        while True:
            due: list[Any] = []
            with self._cv:
                if self._stop:
                    return
                now = time.monotonic()
                for token, (conn, deadline) in list(self._armed.items()):
                    if deadline <= now:
                        del self._armed[token]
                        self._fired.add(token)
                        due.append(conn)
                if not due:
                    nxt = min((d for _, d in self._armed.values()), default=None)
                    self._cv.wait(None if nxt is None else max(nxt - now, 0.01))
            for conn in due:
                with suppress(Exception):
                    conn.transport.close()


class _Session:
    """One TCP connection, one session, one tree: closed together."""

    def __init__(self, conn: Any, session: Any, tree: Any) -> None:
        self.conn, self.session, self.tree = conn, session, tree

    def close(self) -> None:
        with suppress(Exception):
            self.conn.disconnect(True, timeout=2)
        with suppress(Exception):
            self.conn.transport.close()


class SmbStore(Connector):
    kind = "smb"

    def __init__(
        self,
        url: str,
        address: str,
        creds: tuple[str, str] | None,
        timeout: float = 5.0,
        file_acls: bool = True,
    ) -> None:
        try:
            _, self.port, self.share, self.root = parse_smb_url(url)
        except ValueError as exc:
            raise StoreError(str(exc)) from None
        self.address = address
        self.where = f"smb://{address}:{self.port}/{self.share}"
        self.creds = creds
        self.timeout = timeout
        self.file_acls = file_acls
        self._guest: tuple[bool | None, str] | None = None
        self._dirs_open: list[str] = []  # folders readable by anyone / every account
        self._exposure: Exposure | None = None
        self._denied: dict[str, str] = {}  # folder -> why it could not be listed
        self._dog = _Watchdog()
        self._previous: dict[str, _Seen] = {}  # last scan's listing, from the cache
        self._ctime_kept = False  # the server keeps a ChangeTime apart from LastWriteTime
        self._prefetched: dict[str, bytes] = {}  # bytes read with the permissions, for read()
        self._prefetched_bytes = 0
        self.grants_reused = 0  # files whose permissions came from the last scan
        self.clean_unasked = 0  # unchanged files without findings: permissions not asked
        self._dead: dict[int, str] = {}  # id(connection) -> why it was closed
        try:
            if creds is None:
                self.main = self._open(None, encrypt=False, probe="guest")
            else:
                self.main = self._open(creds, encrypt=None, probe="")
        except BaseException:
            self._dog.stop()
            raise
        self.encrypted = bool(self.main.session.encrypt_data or self.main.tree.encrypt_data)

    # -- plumbing --------------------------------------------------------------------------
    @contextmanager
    def _watch(self, conn: Any, what: str) -> Iterator[None]:
        """Close the socket when the server has not answered within the timeout; later requests
        on that connection fail at once, naming the request the server stopped answering."""
        if id(conn) in self._dead:
            raise StoreError(f"{self.where}: {what}: not tried, {self._dead[id(conn)]}")
        token = self._dog.arm(conn, self.timeout)
        fired = False
        try:
            yield
        except StoreError:
            raise
        except Exception as exc:
            fired = self._dog.disarm(token)
            if fired:
                self._dead[id(conn)] = f"the server stopped answering while {what}"
                raise StoreError(
                    f"{self.where}: the server stopped answering while {what} "
                    f"(no reply within {self.timeout:g} s)"
                ) from None
            raise StoreError(f"{self.where}: {what} failed: {_reason(exc)}") from None
        finally:
            if not fired:
                self._dog.disarm(token)

    def _open(
        self, creds: tuple[str, str] | None, encrypt: bool | None, probe: str, share: str = ""
    ) -> _Session:
        """A session on the share (or on `share`, e.g. IPC$). encrypt None: encrypt when the
        server can (scanning), False: never (the cleartext and guest probes)."""
        from smbprotocol.connection import Connection
        from smbprotocol.exceptions import (
            AccessDenied,
            BadNetworkName,
            LogonFailure,
            SMBAuthenticationError,
        )
        from smbprotocol.session import Session
        from smbprotocol.tree import TreeConnect

        guest = creds is None
        conn = Connection(uuid.uuid4(), self.address, self.port, require_signing=not guest)
        try:
            conn.connect(timeout=self.timeout)
        except (ValueError, OSError) as exc:
            if str(exc).startswith("Failed to connect to") or isinstance(exc, OSError):
                raise StoreError(f"{self.where}: cannot connect ({_reason(exc)})") from None
            with suppress(Exception):
                conn.transport.close()
            raise StoreError(f"{self.where}: SMB negotiate failed: {_reason(exc)}") from None
        except Exception as exc:
            with suppress(Exception):
                conn.transport.close()
            raise StoreError(f"{self.where}: SMB negotiate failed: {_reason(exc)}") from None
        user, password = creds if creds else (GUEST_PROBE_USER, "-")
        want_enc = bool(conn.supports_encryption) if encrypt is None else encrypt
        sess = Session(conn, user, password, require_encryption=want_enc, auth_protocol="ntlm")
        share = share or self.share
        tree = TreeConnect(sess, rf"\\{self.address}\{share}")
        holder = _Session(conn, sess, tree)
        try:
            with self._watch(conn, "logging on"):
                try:
                    sess.connect()
                except (LogonFailure, SMBAuthenticationError):
                    who = "an unknown user (guest)" if guest else f"user {user!r}"
                    raise StoreError(
                        f"{self.where}: logon refused for {who}"
                        + ("" if guest else " (wrong user name or password?)")
                    ) from None
            if guest and sess.session_key is not None:
                raise StoreError(f"{self.where}: the unknown user was logged on as a real user")
            with self._watch(conn, f"connecting to share {share!r}"):
                try:
                    tree.connect(require_secure_negotiate=not guest)
                except BadNetworkName:
                    raise StoreError(f"{self.where}: share {share!r} does not exist") from None
                except AccessDenied:
                    raise StoreError(
                        f"{self.where}: access to share {share!r} denied"
                        + (" (unencrypted)" if probe == "cleartext" else "")
                    ) from None
        except StoreError:
            holder.close()
            raise
        return holder

    # -- exposure --------------------------------------------------------------------------
    def exposure(self) -> Exposure:
        """Probed once; later calls add the folders found open while walking."""
        if self._exposure is None:
            self._exposure = self._probe()
        exp = self._exposure.model_copy(deep=True)
        exp.world_readable_dirs = list(dict.fromkeys(self._dirs_open))
        return exp

    def _probe(self) -> Exposure:
        exp = Exposure(transport="smb-encrypted" if self.encrypted else "smb")
        security_mode = int(self.main.conn.server_security_mode or 0)
        dialect = int(self.main.conn.dialect or 0)
        exp.notes.append(f"SMB dialect {dialect >> 8}.{dialect & 0xFF:02x} negotiated")
        if not security_mode & _SIGNING_REQUIRED:
            exp.notes.append("signing not required: messages can be altered on the way")
        smb1 = smb1_offered(self.address, self.port, self.timeout)
        if smb1:
            exp.notes.append("SMB1 (NT LM 0.12) offered")
        elif smb1 is None:
            exp.notes.append("SMB1 support could not be determined")
        # guest access
        if self.creds is None:
            exp.anonymous_read = exp.public_listing = True
            exp.anonymous_detail = "an unknown user was logged on as guest and listed the share"
            exp.cleartext = True  # a guest session cannot sign or encrypt
        else:
            exp.anonymous_read, exp.anonymous_detail = self._guest_probe()
            exp.public_listing = exp.anonymous_read
            exp.cleartext = self._cleartext_probe() if self.encrypted else True
        if exp.cleartext:
            exp.notes.append("the share is served without SMB3 encryption")
        root: ReadGrants | None = None
        with suppress(StoreError):
            root = self._grants(self.root, directory=True)
        share, why = self._share_acl()
        if share is None:
            exp.notes.append(SHARE_ACL_UNREADABLE + why)
        else:
            exp.notes.append(SHARE_ACL + (share.summary() or RESTRICTED))
        verdict, open_root = effective_access(share, root)
        exp.notes.append(EFFECTIVE + verdict)
        if open_root and root is not None:
            exp.public_acl.append(f"share root: {', '.join(root.anyone)} read")
        return exp

    def _share_acl(self) -> tuple[ReadGrants | None, str]:
        """The share's own read grants, asked of the server service over srvsvc on IPC$;
        (None, why) when they cannot be read. On a connection of its own, so a server that
        stalls or garbles the RPC costs this fact only, never the scan's session."""
        try:
            ipc = self._open(self.creds, encrypt=None if self.creds else False, probe="rpc",
                             share="IPC$")  # fmt: skip
        except StoreError as exc:
            return None, str(exc).split(": ", 1)[-1]
        try:
            stub = self._rpc(ipc, dcerpc.share_get_info_stub(self.share))
            info = dcerpc.parse_share_info_502(stub)
            if not info.security_descriptor:  # Samba withholds it from a guest, even when set
                return None, "the server returned no security descriptor for this account"
            return read_grants(info.security_descriptor), ""
        except dcerpc.RpcRefused as exc:
            return None, str(exc)
        except ValueError as exc:
            return None, f"malformed srvsvc answer ({exc})"
        except StoreError as exc:
            return None, str(exc).split(": ", 1)[-1]
        finally:
            ipc.close()

    def _rpc(self, s: _Session, stub: bytes) -> bytes:
        """Bind to srvsvc on its pipe and make one NetrShareGetInfo call; the answer's stub."""
        from smbprotocol.open import (
            CreateDisposition,
            CreateOptions,
            ImpersonationLevel,
            Open,
            ShareAccess,
        )

        pipe = Open(s.tree, "srvsvc")
        with self._watch(s.conn, "opening the srvsvc pipe"):
            pipe.create(
                ImpersonationLevel.Impersonation,
                0x0012019F,  # read/write data, attributes and EAs, READ_CONTROL, SYNCHRONIZE
                0,
                ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE,
                CreateDisposition.FILE_OPEN,
                CreateOptions.FILE_NON_DIRECTORY_FILE,
            )
        size = min(MAX_PIPE_READ, int(s.conn.max_read_size or MAX_PIPE_READ))
        try:
            with self._watch(s.conn, "binding to srvsvc"):
                pipe.write(dcerpc.bind_pdu(call_id=1))
                ack = bytes(pipe.read(0, size))
            dcerpc.check_bind_ack(_whole_pdu(ack))
            frags: list[bytes] = []
            what = "asking srvsvc for the share permissions"
            with self._watch(s.conn, what):
                pipe.write(dcerpc.request_pdu(dcerpc.OPNUM_SHARE_GET_INFO, stub, call_id=2))
            while len(frags) < dcerpc.MAX_FRAGMENTS:
                with self._watch(s.conn, what):
                    frag = bytes(pipe.read(0, size))
                frags.append(_whole_pdu(frag))
                if dcerpc.is_last_fragment(frag):
                    break
            return dcerpc.response_stub(frags, call_id=2)
        finally:
            with suppress(Exception), self._watch(s.conn, "closing the srvsvc pipe"):
                pipe.close()

    def _guest_probe(self) -> tuple[bool, str]:
        try:
            probe = self._open(None, encrypt=False, probe="guest")
        except StoreError as exc:
            return False, f"guest refused: {str(exc).split(': ', 1)[-1]}"
        try:
            listed = sum(1 for _ in self._list(probe, self.root))
        except StoreError as exc:
            return False, f"guest logged on but could not list: {str(exc).split(': ', 1)[-1]}"
        finally:
            probe.close()
        return True, f"an unknown user was logged on as guest and listed {listed} entries"

    def _cleartext_probe(self) -> bool:
        """True when the share also accepts a signed but unencrypted session."""
        try:
            probe = self._open(self.creds, encrypt=False, probe="cleartext")
        except StoreError:
            return False
        forced = bool(probe.session.encrypt_data or probe.tree.encrypt_data)  # server's demand
        probe.close()
        return not forced

    def _grants(self, path: str, directory: bool) -> ReadGrants | None:
        return self._grants_many([path], directory)[0]

    def _sd_query(self, fh: Any) -> tuple[Any, Any]:
        """A QUERY_INFO for the DACL of an open `fh`, and how to unpack its answer."""
        from smbprotocol.open import SMB2QueryInfoRequest, SMB2QueryInfoResponse

        conn = self.main.conn
        q = SMB2QueryInfoRequest()
        q["info_type"] = 3  # SMB2_0_INFO_SECURITY
        q["output_buffer_length"] = MAX_SD_BYTES
        q["additional_information"] = 0x4  # DACL_SECURITY_INFORMATION
        q["file_id"] = fh.file_id

        def unpack(req: Any) -> bytes:
            r = SMB2QueryInfoResponse()
            r.unpack(conn.receive(req)["data"].get_value())
            return bytes(r["buffer"].get_value())

        return q, unpack

    def _grants_and_bodies(self, paths: list[str]) -> list[ReadGrants | None]:
        """For files the scan will read: DACL and bytes in ONE related compound per file
        (CREATE + QUERY_INFO(security) + READ + CLOSE), PIPELINE files per round trip, instead
        of opening each file twice (permissions while listing, bytes when read). The bytes are
        kept for read(); a file the account may open for one but not both (READ_CONTROL or
        READ_DATA refused) falls back to the permissions-only compound and a plain read."""
        from smbprotocol.exceptions import AccessDenied, EndOfFile

        def both(fh: Any) -> list[tuple[Any, Any]]:
            return [self._sd_query(fh), fh.read(0, PREFETCH_READ, send=False)]

        out: list[ReadGrants | None] = []
        retry: list[int] = []
        for i in range(0, len(paths), PIPELINE):
            batch = paths[i : i + PIPELINE]
            items = [(p, False, 0x00020081, both) for p in batch]  # READ_CONTROL | data | attrs
            answers = self._compound_many(self.main, items, "reading")
            for path, ans in zip(batch, answers, strict=True):
                if isinstance(ans, AccessDenied):
                    retry.append(len(out))
                    out.append(None)
                    continue
                if isinstance(ans, Exception):
                    raise StoreError(f"{self.where}: {path}: permissions: {_reason(ans)}")
                sd, body = ans
                if isinstance(body, EndOfFile):
                    body = b""
                if isinstance(body, bytes | bytearray | memoryview):
                    body = bytes(body)
                    if self._prefetched_bytes + len(body) <= MAX_PREFETCH_BYTES:
                        self._prefetched[path] = body
                        self._prefetched_bytes += len(body)
                out.append(self._parse_sd(path, sd))
        if retry:
            for k, g in zip(
                retry, self._grants_many([paths[k] for k in retry], False), strict=True
            ):
                out[k] = g
        return out

    def _parse_sd(self, path: str, sd: Any) -> ReadGrants | None:
        from smbprotocol.exceptions import AccessDenied

        if isinstance(sd, AccessDenied):
            return None  # READ_CONTROL not granted: the permissions stay unknown
        if isinstance(sd, Exception):
            raise StoreError(f"{self.where}: {path}: permissions: {_reason(sd)}")
        try:
            return read_grants(sd)
        except ValueError as exc:
            raise StoreError(
                f"{self.where}: {path or '/'}: bad security descriptor ({exc})"
            ) from None

    def _grants_many(self, paths: list[str], directory: bool) -> list[ReadGrants | None]:
        """The read grants of each path (None: READ_CONTROL refused), PIPELINE at a time."""
        s = self.main
        query = self._sd_query
        out: list[ReadGrants | None] = []
        for i in range(0, len(paths), PIPELINE):
            batch = paths[i : i + PIPELINE]
            items = [(p, directory, 0x00020000, query) for p in batch]
            answers = self._compound_many(s, items, "reading the permissions of")
            out += [self._parse_sd(p, sd) for p, sd in zip(batch, answers, strict=True)]
        return out

    def _compound(
        self, s: _Session, path: str, directory: bool, access: int, middle: Any, what: str
    ) -> Any:
        """CREATE + one request + CLOSE in one related compound: one round trip, not three.
        Protocol errors of the CREATE (AccessDenied, not found) are raised as they are."""
        result = self._compound_many(s, [(path, directory, access, middle)], what)[0]
        if isinstance(result, Exception):
            raise result
        return result

    def _compound_many(
        self, s: _Session, items: list[tuple[str, bool, int, Any]], what: str
    ) -> list[Any]:
        """Several CREATE + request + CLOSE compounds sent together, then all answers read:
        one round trip for a batch. Each item's result, or the protocol error it met."""
        from smbprotocol.exceptions import SMBResponseException
        from smbprotocol.open import Open

        sent = []
        where = items[0][0] if len(items) == 1 else f"{len(items)} files"
        with self._watch(s.conn, f"{what} {where or '/'}"):
            for path, directory, access, middle in items:
                fh = Open(s.tree, path.replace("/", "\\"))
                create, create_recv = fh.create(*_open_existing(access, directory), send=False)
                mid = middle(fh)
                several = isinstance(mid, list)
                mids = mid if several else [mid]
                close, close_recv = fh.close(send=False)
                reqs = s.conn.send_compound(
                    [create, *(m for m, _ in mids), close],
                    s.session.session_id,
                    s.tree.tree_connect_id,
                    related=True,
                )
                sent.append((reqs, (create_recv, *(r for _, r in mids), close_recv), several))
            results: list[Any] = []
            for reqs, fns, several in sent:
                outcome: list[Any] = []
                for req, fn in zip(reqs, fns, strict=True):
                    try:  # every response must be received, even after a failure
                        outcome.append(fn(req))
                    except SMBResponseException as exc:
                        outcome.append(exc)
                if isinstance(outcome[0], SMBResponseException):
                    results.append(outcome[0])  # the CREATE failed: so did the rest
                elif several:
                    results.append(outcome[1:-1])  # each middle answer or its own error
                else:
                    results.append(outcome[1])
        return results

    @contextmanager
    def _handle(self, s: _Session, path: str, directory: bool) -> Iterator[Any]:
        """An open handle to list a folder or read a file (READ_DATA / LIST_DIRECTORY and
        READ_ATTRIBUTES), closed afterwards."""
        from smbprotocol.exceptions import AccessDenied
        from smbprotocol.open import Open

        fh = Open(s.tree, path.replace("/", "\\"))
        with self._watch(s.conn, f"opening {path or '/'}"):
            try:
                fh.create(*_open_existing(0x00000001 | 0x00000080, directory))
            except AccessDenied:
                raise StoreError(f"{self.where}: {path or '/'}: access denied") from None
        try:
            yield fh
        finally:
            with suppress(Exception), self._watch(s.conn, f"closing {path or '/'}"):
                fh.close()

    # -- listing ---------------------------------------------------------------------------
    def _list(
        self, s: _Session, path: str
    ) -> Iterator[tuple[str, bool, int, float | None, int, int]]:
        """(name, is folder, size, mtime, LastWriteTime and ChangeTime in microseconds)."""
        from smbprotocol.exceptions import NoMoreFiles
        from smbprotocol.file_info import FileInformationClass

        with self._handle(s, path, directory=True) as fh:
            for _ in range(MAX_LISTING_ROUNDS):
                with self._watch(s.conn, f"listing {path or '/'}"):
                    try:
                        batch = fh.query_directory(
                            "*", FileInformationClass.FILE_ID_BOTH_DIRECTORY_INFORMATION
                        )
                    except NoMoreFiles:
                        return
                if not batch:
                    return
                for e in batch:
                    name = e["file_name"].get_value().decode("utf-16-le", "replace")
                    if name in (".", ".."):
                        continue
                    is_dir = bool(e["file_attributes"].get_value() & 0x10)
                    mtime = e["last_write_time"].get_value()
                    ctime = e["change_time"].get_value()
                    ts = mtime.timestamp() if hasattr(mtime, "timestamp") else None
                    m_us, c_us = _micros(mtime), _micros(ctime)
                    yield name, is_dir, int(e["end_of_file"].get_value()), ts, m_us, c_us
            raise StoreError(f"{self.where}: {path or '/'}: listing does not end")

    def previous(self, entries: Mapping[str, Sequence[Any]]) -> None:
        """The last scan's cache entries (path -> [size, mtime, etag, sha, facts]). An entry's
        ETag carries its LastWriteTime, ChangeTime and read grants (see _etag). A file with the
        same size and LastWriteTime and nothing found in it last time is not asked for its
        grants (nothing about it is reported); one with findings keeps its grants when its
        ChangeTime is unchanged too, where the server keeps a ChangeTime of its own (walk)."""
        old: dict[str, _Seen] = {}
        for path, e in entries.items():
            seen = _parse_etag(e[2]) if isinstance(e, list | tuple) and len(e) > 2 else None
            if seen is not None:
                clean = len(e) > DOC and e[DOC] is None  # scanned, nothing to report
                old[path] = _Seen(seen.size, seen.mtime_us, seen.ctime_us, seen.acl, clean, e[2])
        self._previous = old
        if any(v.mtime_us != v.ctime_us for v in old.values()):
            self._ctime_kept = True

    def walk(self, max_entries: int, max_depth: int) -> Iterator[Entry]:
        """Lists folder by folder; files are then asked for their permissions (and, for those
        the scan will read, their bytes) WALK_BATCH at a time.

        ChangeTime changes on an ACL or attribute change as well as on a write (NTFS), so an
        unchanged (size, LastWriteTime, ChangeTime) keeps last scan's grants. Samba reports
        ChangeTime = LastWriteTime (a chmod or smbcacls leaves both alone), which says nothing
        about the ACL; the cached grants are therefore trusted only on a server that has shown
        a ChangeTime different from the LastWriteTime of some entry (here or last scan)."""
        count = 0
        files: list[tuple[str, int, float | None, int, int]] = []
        stack: list[tuple[str, int]] = [(self.root, 0)]
        try:
            while stack:
                path, depth = stack.pop()
                if self.file_acls:
                    self._note_folder(path)
                subdirs = []
                try:
                    listing = sorted(self._list(self.main, path))
                except StoreError as exc:
                    if path == self.root:
                        raise
                    # a folder the account may not list: one entry whose read reports why, so
                    # the folder is named as not scanned and the rest of the share is walked
                    count += 1
                    self._denied[self._rel(path) + "/"] = str(exc).split(": ", 1)[-1]
                    yield Entry(path=self._rel(path) + "/", size=None, etag="unlisted")
                    continue
                for name, is_dir, size, mtime, m_us, c_us in listing:
                    full = f"{path}/{name}" if path else name
                    if m_us != c_us:
                        self._ctime_kept = True
                    if is_dir:
                        if depth + 1 <= max_depth:
                            subdirs.append((full, depth + 1))
                        continue
                    count += 1
                    if count > max_entries:
                        raise TooManyEntries(max_entries)
                    files.append((full, size, mtime, m_us, c_us))
                stack.extend(sorted(subdirs, reverse=True))
                if len(files) >= WALK_BATCH:
                    yield from self._entries(files)
                    files = []
        except TooManyEntries:
            yield from self._entries(files)  # what was listed before the cap is still scanned
            raise
        yield from self._entries(files)

    def _entries(self, files: list[tuple[str, int, float | None, int, int]]) -> Iterator[Entry]:
        grants: dict[str, ReadGrants | None] = {}
        kept_etag: dict[str, str] = {}
        ask: list[str] = []  # permissions only: unchanged content, or too large to prefetch
        fetch: list[str] = []  # permissions and bytes in one compound
        for full, size, _, m_us, c_us in files:
            if not self.file_acls:
                grants[full] = None
                continue
            prev = self._previous.get(self._rel(full))
            same = prev is not None and prev.size == size and prev.mtime_us == m_us
            if prev is not None and same and prev.clean:
                # the same bytes, nothing found in them last time: the file is not reported
                # whoever may read it, so its grants are not asked (its ETag is kept as is)
                grants[full] = None if prev.acl == "?" else grants_of(prev.acl)
                kept_etag[full] = prev.etag
                self.clean_unasked += 1
                continue
            kept = prev is not None and same and self._ctime_kept and prev.ctime_us == c_us
            if kept and prev is not None and prev.acl != "?":  # asked last time, unchanged since
                grants[full] = grants_of(prev.acl)
                self.grants_reused += 1
                continue
            if same or size >= PREFETCH_READ:
                ask.append(full)
            else:
                fetch.append(full)
        for paths, fn in ((fetch, self._grants_and_bodies), (ask, self._grants_many_files)):
            if not paths:
                continue
            found: list[ReadGrants | None] = [None] * len(paths)
            with suppress(StoreError):
                found = fn(paths)
            grants.update(zip(paths, found, strict=True))
        for full, size, mtime, m_us, c_us in files:
            g = grants.get(full)
            yield Entry(
                path=self._rel(full),
                size=size,
                mtime=mtime,
                etag=kept_etag.get(full) or _etag(size, m_us, c_us, g),
                world_readable=None if g is None else bool(g.anyone or g.accounts),
                mode="" if g is None else g.summary(),
            )

    def _grants_many_files(self, paths: list[str]) -> list[ReadGrants | None]:
        return self._grants_many(paths, directory=False)

    def _note_folder(self, path: str) -> None:
        with suppress(StoreError):
            g = self._grants(path, directory=True)
            if g and (g.anyone or g.accounts):
                rel = (path[len(self.root) :] if self.root else path).strip("/")
                self._dirs_open.append(f"/{rel} ({g.summary()})")

    def _rel(self, full: str) -> str:
        return full[len(self.root) :].lstrip("/") if self.root else full

    def read(self, entry: Entry, max_bytes: int) -> bytes:
        if entry.path in self._denied:
            raise StoreError(f"folder {entry.path} could not be listed: {self._denied[entry.path]}")
        if entry.size is not None and entry.size > max_bytes:
            raise TooLarge(f"{entry.path}: listed as {entry.size} bytes (limit {max_bytes})")
        s = self.main
        full = f"{self.root}/{entry.path}" if self.root else entry.path
        early = self._prefetched.pop(full, None)
        if early is not None:
            self._prefetched_bytes -= len(early)
            if len(early) < PREFETCH_READ:  # a whole file; one that grew is read again
                if len(early) > max_bytes:
                    raise TooLarge(f"{entry.path}: more than {max_bytes} bytes")
                return early
        chunk = max(4096, min(int(s.conn.max_read_size or 65536), 1024 * 1024))
        if entry.size is not None and entry.size < chunk:
            body = self._read_small(s, full, entry, min(chunk, max_bytes + 1))
        else:
            body = self._read_chunks(s, full, entry, max_bytes, chunk)
        if len(body) > max_bytes:
            raise TooLarge(f"{entry.path}: more than {max_bytes} bytes (listed as {entry.size})")
        return body

    def _read_small(self, s: _Session, full: str, entry: Entry, length: int) -> bytes:
        """A file listed below one read: CREATE + READ + CLOSE in one round trip."""
        from smbprotocol.exceptions import AccessDenied, EndOfFile

        def read(fh: Any) -> tuple[Any, Any]:
            msg, unpack = fh.read(0, length, send=False)
            return msg, unpack

        try:
            return bytes(self._compound(s, full, False, 0x00000081, read, "reading"))
        except EndOfFile:
            return b""
        except AccessDenied:
            raise StoreError(f"{self.where}: {entry.path}: access denied") from None
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"{self.where}: reading {entry.path} failed: {_reason(exc)}") from None

    def _read_chunks(
        self, s: _Session, full: str, entry: Entry, max_bytes: int, chunk: int
    ) -> bytes:
        body = bytearray()
        with self._handle(s, full, directory=False) as fh:
            while len(body) <= max_bytes:
                want = min(chunk, max_bytes + 1 - len(body))
                with self._watch(s.conn, f"reading {entry.path}"):
                    try:
                        data = fh.read(len(body), want)
                    except Exception as exc:
                        if type(exc).__name__ == "EndOfFile":
                            break
                        raise
                body += data
                if len(data) < want:
                    break  # a short read is the end of the file
        return bytes(body)

    def close(self) -> None:
        self._prefetched.clear()
        self.main.close()
        self._dog.stop()


def _open_existing(access: int, directory: bool) -> tuple[Any, ...]:
    """Open.create()'s arguments for an existing file or folder, shared for reading."""
    from smbprotocol.open import (
        CreateDisposition,
        CreateOptions,
        FileAttributes,
        ImpersonationLevel,
        ShareAccess,
    )

    return (
        ImpersonationLevel.Impersonation,
        access,
        FileAttributes.FILE_ATTRIBUTE_DIRECTORY if directory else 0,
        ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE,
        CreateDisposition.FILE_OPEN,
        CreateOptions.FILE_DIRECTORY_FILE if directory else CreateOptions.FILE_NON_DIRECTORY_FILE,
    )


@dataclass(frozen=True)
class _Seen:
    """What an ETag of ours says about a file as it was listed last time."""

    size: int
    mtime_us: int
    ctime_us: int
    acl: str  # ReadGrants.summary(), "" for none open, "?" for unknown
    clean: bool = False  # last scan found nothing to report in it
    etag: str = ""


def _micros(value: Any) -> int:
    return round(value.timestamp() * 1_000_000) if hasattr(value, "timestamp") else 0


def _etag(size: int, m_us: int, c_us: int, g: ReadGrants | None) -> str:
    """size-LastWriteTime-ChangeTime-grants: equal ETags mean the same bytes AND the same
    grants, so the cache may skip the file; a changed grant makes it read again."""
    return f"{size}-{m_us}-{c_us}-{'?' if g is None else g.summary()}"


def _parse_etag(etag: Any) -> _Seen | None:
    if not isinstance(etag, str):
        return None
    parts = etag.split("-", 3)
    if len(parts) != 4:
        return None
    try:
        return _Seen(int(parts[0]), int(parts[1]), int(parts[2]), parts[3])
    except ValueError:
        return None


def _whole_pdu(data: bytes) -> bytes:
    """One RPC PDU as a message-mode pipe gives it, one message per READ (a longer message is
    STATUS_BUFFER_OVERFLOW): an answer shorter than its fragment length is truncated, and is
    not waited for."""
    if len(data) < 10:
        raise ValueError(f"RPC answer of {len(data)} bytes is shorter than a PDU header")
    need = struct.unpack_from("<H", data, 8)[0]
    if len(data) != need:
        raise ValueError(f"RPC fragment announces {need} bytes, the pipe gave {len(data)}")
    return data


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."
