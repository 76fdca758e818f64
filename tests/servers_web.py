"""A weak and a hardened web site on a real nginx, for the web checks.

One nginx (see `tests/servers_nginx.py`) on one loopback address serves four sites:

- `weak` (cleartext): a login form without CSRF token, a session cookie without any flag, the
  nginx version and an X-Powered-By header, a weak CSP, X-Frame-Options ALLOWALL, an unsafe
  Referrer-Policy, an exposed `.env` with secrets, a `.git/` whose config has credentials in
  a remote URL, an autoindexed `/backup/` holding an SQL dump with personal data, a public
  stub_status page, WebDAV PUT/DELETE without authentication under `/upload/`, and HTTP
  Basic authentication over cleartext under `/admin/`;
- `bare` (cleartext): a plain page with no security header at all;
- `good_http` (cleartext): only a permanent redirect to `good_tls`, same host;
- `good_tls` (HTTPS, self-signed test certificate): every security header, a cookie with
  Secure, HttpOnly and SameSite, dotfiles denied, no listings, a form with a CSRF token,
  no version disclosure.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import free_port
from tests.servers_ftp import self_signed
from tests.servers_nginx import NginxServer

# the secrets and personal data below are invented test values
ENV_FILE = (
    "APP_ENV=production\nDB_HOST=10.0.0.5\nDB_PASSWORD=Sup3rS3cret!\nAPI_TOKEN=tok_9f8e7d6c5b4a\n"
)
GIT_CONFIG = """[core]
\trepositoryformatversion = 0
\tbare = false
[remote "origin"]
\turl = https://deploy:gh-pat-0123456789abcdef@git.example.gov.vn/portal/site.git
\tfetch = +refs/heads/*:refs/remotes/origin/*
"""
SQL_DUMP = """-- MySQL dump 10.13
CREATE TABLE citizens (id int, name text, phone text, cccd text, email text);
INSERT INTO citizens VALUES (1,'Nguyen Van A','0912345678','001203012345','a.nguyen@example.vn');
INSERT INTO citizens VALUES (2,'Tran Thi B','0987654321','079198001234','b.tran@example.vn');
"""
LOGIN_FORM = """<!doctype html><html><head><title>Portal</title>
<script src="http://cdn.example.invalid/jquery.js"></script></head>
<body><form method="post" action="/login">
<input type="text" name="user"><input type="password" name="pw"><button>Sign in</button>
</form></body></html>
"""
GOOD_PAGE = """<!doctype html><html><head><title>Portal</title>
<script src="/static/app.js" integrity="sha384-abc" crossorigin="anonymous"></script></head>
<body><form method="post" action="/login">
<input type="hidden" name="csrf_token" value="r4nd0m">
<input type="text" name="user"><input type="password" name="pw"><button>Sign in</button>
</form></body></html>
"""

GOOD_HEADERS = """
        add_header Strict-Transport-Security "max-age=63072000; includeSubDomains" always;
        add_header Content-Security-Policy "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'" always;
        add_header X-Frame-Options "DENY" always;
        add_header X-Content-Type-Options "nosniff" always;
        add_header Referrer-Policy "strict-origin-when-cross-origin" always;
        add_header Permissions-Policy "camera=(), microphone=(), geolocation=()" always;
        add_header Cross-Origin-Opener-Policy "same-origin" always;
        add_header Cross-Origin-Resource-Policy "same-origin" always;
        add_header Set-Cookie "SESSIONID=opaque; Path=/; Secure; HttpOnly; SameSite=Lax" always;"""  # noqa: E501


@dataclass(frozen=True)
class WebSites:
    address: str
    weak: int
    bare: int
    good_http: int
    good_tls: int
    weak_root: Path

    def url(self, site: str, path: str = "/") -> str:
        port = getattr(self, site)
        scheme = "https" if site == "good_tls" else "http"
        return f"{scheme}://{self.address}:{port}{path}"


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _ports(address: str, n: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < n:
        p = free_port(address)
        if p not in ports:
            ports.append(p)
    return ports


@contextmanager
def web_sites(workdir: Path, address: str) -> Iterator[WebSites]:
    weak_root, good_root = workdir / "weak", workdir / "good"
    _write(weak_root, {
        "index.html": LOGIN_FORM,
        ".env": ENV_FILE,
        ".git/HEAD": "ref: refs/heads/main\n",
        ".git/config": GIT_CONFIG,
        "backup/site-2024.sql": SQL_DUMP,
        "backup/readme.txt": "nightly dumps\n",
        "admin/index.html": "admin area\n",
    })  # fmt: skip
    (weak_root / "upload").mkdir(exist_ok=True)
    (weak_root / "upload").chmod(0o777)
    _write(good_root, {
        "index.html": GOOD_PAGE,
        ".env": ENV_FILE,  # present on disk, but denied by the configuration
        ".git/HEAD": "ref: refs/heads/main\n",
        "backup/site-2024.sql": SQL_DUMP,
    })  # fmt: skip
    cert, key = self_signed(workdir)
    weak, bare, good_http, good_tls = _ports(address, 4)
    blocks = [
        f"""    server {{
        listen {address}:{weak};
        root {weak_root};
        client_body_temp_path {workdir / "dav_temp"};
        add_header X-Powered-By "PHP/7.4.3" always;
        add_header Set-Cookie "PHPSESSID=abc123; Path=/" always;
        add_header Content-Security-Policy "default-src * 'unsafe-inline' 'unsafe-eval'" always;
        add_header X-Frame-Options "ALLOWALL" always;
        add_header Referrer-Policy "unsafe-url" always;
        location / {{ index index.html; }}
        location /backup/ {{ autoindex on; }}
        location = /nginx_status {{ stub_status; }}
        location /upload/ {{ dav_methods PUT DELETE MKCOL; create_full_put_path on; }}
        location /admin/ {{ auth_basic "staff"; auth_basic_user_file {workdir / "htpasswd"}; }}
    }}""",
        f"""    server {{
        listen {address}:{bare};
        root {weak_root};
        location / {{ try_files /backup/readme.txt =404; default_type text/html; }}
    }}""",
        f"""    server {{
        listen {address}:{good_http};
        server_tokens off;
        location / {{ return 301 https://$host:{good_tls}$request_uri; }}
    }}""",
        f"""    server {{
        listen {address}:{good_tls} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        server_tokens off;
        root {good_root};
        autoindex off;{GOOD_HEADERS}
        location ~ /\\. {{ deny all; return 404; }}
        location ~* \\.(sql|bak|zip|tar|gz)$ {{ deny all; return 404; }}
        location / {{ index index.html; }}
        location = /nginx_status {{ stub_status; allow 192.0.2.10; deny all; }}
    }}""",
    ]
    # the default-credential test logs in with admin/admin: {SHA} is base64(sha1(password))
    digest = base64.b64encode(hashlib.sha1(b"admin").digest()).decode()
    (workdir / "htpasswd").write_text(f"admin:{{SHA}}{digest}\n")
    with NginxServer(workdir, address, blocks) as nginx:
        nginx.wait(weak, bare, good_http, good_tls)
        yield WebSites(address, weak, bare, good_http, good_tls, weak_root)
