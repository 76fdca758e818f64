"""A real nginx for the HTTP tests, confined to pytest's tmp_path.

Everything nginx writes (pid, error and access logs, every temp directory) is inside the work
directory, `-e` keeps it from touching the compiled-in error log even before the config is
read, and `master_process off` keeps it one process running as the test user so it can read
the pages under tmp_path.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import TracebackType

from tests.helpers import free_port, wait_port
from tests.servers_redis import stop_process

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
HAVE_NGINX = Path(NGINX).exists()

LOGIN_PAGE = """<!doctype html>
<html><head><title>Intranet login</title></head>
<body><form method="post" action="/login">
<label>User <input type="text" name="user"></label>
<label>Password <input name="pw" type="password"></label>
<button>Sign in</button>
</form></body></html>
"""

PLAIN_PAGE = "<!doctype html><html><body><p>Opening hours: 8-16</p></body></html>\n"


class NginxServer:
    """nginx on `address` with the given `server { ... }` blocks (use {root} for the docroot)."""

    def __init__(self, workdir: Path, address: str, servers: list[str]) -> None:
        self.workdir, self.address, self.servers = workdir, address, servers
        self.root = workdir / "html"
        self.proc: subprocess.Popen[bytes] | None = None

    def port(self) -> int:
        return free_port(self.address)

    def __enter__(self) -> NginxServer:
        w = self.workdir
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "index.html").write_text(LOGIN_PAGE)
        (self.root / "plain.html").write_text(PLAIN_PAGE)
        temps = "\n".join(
            f"    {kind}_temp_path {w / (kind + '_temp')};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        blocks = "\n".join(b.replace("{root}", str(self.root)) for b in self.servers)
        conf = w / "nginx.conf"
        conf.write_text(
            f"""daemon off;
master_process off;
worker_processes 1;
pid {w / "nginx.pid"};
error_log {w / "error.log"} warn;
events {{ worker_connections 64; }}
http {{
    access_log {w / "access.log"};
{temps}
    default_type text/html;
    server_tokens on;
{blocks}
}}
"""
        )
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(w), "-e", str(w / "error.log"), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return self

    def wait(self, *ports: int) -> None:
        assert self.proc is not None
        try:
            for port in ports:
                wait_port(self.address, port, timeout=10)
        except TimeoutError:
            stop_process(self.proc)
            log = self.workdir / "error.log"
            text = log.read_text() if log.exists() else ""
            raise RuntimeError(f"nginx did not start: {text[-2000:]}") from None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc is not None:
            stop_process(self.proc)


def content_server(address: str, port: int) -> str:
    """The weak site: the login form straight over cleartext."""
    return f"""    server {{
        listen {address}:{port};
        root {{root}};
        location / {{ index index.html; }}
    }}"""


def plain_server(address: str, port: int) -> str:
    """Content without a login form: cleartext, but only medium severity."""
    return f"""    server {{
        listen {address}:{port};
        root {{root}};
        location / {{ try_files /plain.html =404; }}
    }}"""


def redirect_server(address: str, port: int, to: str = "https://$host$request_uri") -> str:
    """The good site (or, with `to`, a redirect anywhere)."""
    return f"""    server {{
        listen {address}:{port};
        location / {{ return 301 {to}; }}
    }}"""
