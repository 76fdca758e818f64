"""Real document stores started by the tests on their own loopback address: WsgiDAV (WebDAV)
and moto's server mode (S3), plus a scripted WebDAV server for faults a real one cannot make
(stalling mid-body, lying about sizes)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.helpers import free_port, pick_loopback, wait_port


@contextmanager
def wsgidav(root: Path, users: dict[str, str] | None) -> Iterator[str]:
    """WebDAV over http://addr:port/dav/ ; users=None allows anonymous access."""
    from cheroot import wsgi
    from wsgidav.wsgidav_app import WsgiDAVApp

    addr = pick_loopback()
    port = free_port(addr)
    if users is None:
        mapping: dict[str, Any] = {"*": True}
    else:
        mapping = {"*": {u: {"password": p} for u, p in users.items()}}
    config = {
        "host": addr,
        "port": port,
        "provider_mapping": {"/dav": str(root)},
        "simple_dc": {"user_mapping": mapping},
        "http_authenticator": {
            "accept_basic": True,
            "accept_digest": False,
            "default_to_digest": False,
            "trusted_auth_header": None,
        },
        "verbose": 0,
        "logging": {"enable": False},
        "dir_browser": {"enable": False},
        "property_manager": True,
        "lock_storage": True,
    }
    app = WsgiDAVApp(config)
    server = wsgi.Server((addr, port), app, numthreads=4)
    t = threading.Thread(target=server.start, daemon=True)
    t.start()
    try:
        wait_port(addr, port)
        yield f"http://{addr}:{port}/dav/"
    finally:
        server.stop()
        t.join(timeout=5)


@contextmanager
def moto_s3() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    addr = pick_loopback()
    port = free_port(addr)
    server = ThreadedMotoServer(ip_address=addr, port=port, verbose=False)
    server.start()
    try:
        wait_port(addr, port)
        yield f"http://{addr}:{port}"
    finally:
        server.stop()


_MULTI = (
    '<?xml version="1.0"?><d:multistatus xmlns:d="DAV:">'
    "<d:response><d:href>/dav/</d:href><d:propstat><d:prop><d:resourcetype><d:collection/>"
    "</d:resourcetype></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
    "{items}</d:multistatus>"
)
_ITEM = (
    "<d:response><d:href>/dav/{name}</d:href><d:propstat><d:prop><d:resourcetype/>"
    "<d:getcontentlength>{size}</d:getcontentlength></d:prop>"
    "<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
)


@contextmanager
def hostile_webdav(files: dict[str, tuple[int, bytes, bool]]) -> Iterator[str]:
    """files: name -> (listed size, body sent, stall after the first bytes?)."""
    addr = pick_loopback()
    port = free_port(addr)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((addr, port))
    srv.listen(16)
    srv.settimeout(0.2)
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                req = conn.recv(65536).decode("latin-1")
            except OSError:
                return
            line = req.split("\r\n", 1)[0]
            method, path = [*line.split(" "), "", ""][:2]
            if method == "PROPFIND":
                items = "".join(_ITEM.format(name=n, size=s) for n, (s, _, _) in files.items())
                body = _MULTI.format(items=items).encode()
                head = f"HTTP/1.1 207 Multi-Status\r\nContent-Length: {len(body)}\r\n"
                conn.sendall(head.encode() + b"Content-Type: text/xml\r\n\r\n" + body)
                return
            name = path.rsplit("/", 1)[-1]
            _, body, stall = files.get(name, (0, b"", False))
            conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body[:64])
            if stall:
                stop.wait(8)  # never finishes (bounded so the thread ends)
                return
            conn.sendall(body[64:])

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield f"http://{addr}:{port}/dav/"
    finally:
        stop.set()
        t.join(timeout=2)
        srv.close()
        time.sleep(0.05)
