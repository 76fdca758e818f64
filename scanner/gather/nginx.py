"""A small reader of `nginx -T` output: server blocks with the TLS settings in effect.

nginx -T prints every included file after a `# configuration file PATH:` comment, so the
text is one configuration. The tokenizer knows quotes, comments, `{`, `}` and `;`, which is
all nginx's syntax has; depth and token counts are bounded because the text comes from the
host under assessment.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from dataclasses import dataclass, field

from scanner.gather.facts import NginxFacts, NginxServer

MAX_TOKENS = 200_000
MAX_DEPTH = 32


@dataclass
class Block:
    name: str
    args: list[str]
    directives: list[tuple[str, list[str]]] = field(default_factory=list)
    children: list[Block] = field(default_factory=list)

    def get(self, name: str) -> list[list[str]]:
        return [args for n, args in self.directives if n == name]


class NginxSyntaxError(ValueError):
    pass


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "#":
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif c in "{};":
            out.append(c)
            i += 1
        elif c in "\"'":
            j = i + 1
            buf = []
            while j < n and text[j] != c:
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(text[j])
                j += 1
            out.append("".join(buf))
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in "{};":
                j += 1
            out.append(text[i:j])
            i = j
        if len(out) > MAX_TOKENS:
            raise NginxSyntaxError(f"configuration has more than {MAX_TOKENS} tokens")
    return out


_FILE_HEADER = re.compile(r"^# configuration file (.+):$")
MAX_INCLUDE_DEPTH = 8


def split_files(text: str) -> dict[str, str]:
    """`nginx -T` prints each configuration file after a header line; split them."""
    files: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        m = _FILE_HEADER.match(line)
        if m:
            current = m.group(1).strip()
            files.setdefault(current, [])
        elif current:
            files[current].append(line)
    return {k: "\n".join(v) for k, v in files.items()}


def _expanded(name: str, files: dict[str, list[str]], depth: int = 0) -> list[str]:
    """The tokens of one file with its `include` directives replaced by the included files."""
    if depth > MAX_INCLUDE_DEPTH:
        raise NginxSyntaxError(f"includes nested deeper than {MAX_INCLUDE_DEPTH}")
    base = posixpath.dirname(next(iter(files), "/etc/nginx/nginx.conf"))
    toks = files[name]
    out: list[str] = []
    i = 0
    while i < len(toks):
        if toks[i] == "include" and i + 1 < len(toks):
            pattern = toks[i + 1]
            if not pattern.startswith("/"):
                pattern = posixpath.join(base, pattern)
            for other in files:
                if other != name and fnmatch.fnmatchcase(other, pattern):
                    out.extend(_expanded(other, files, depth + 1))
            i += 3 if i + 2 < len(toks) and toks[i + 2] == ";" else 2
            continue
        out.append(toks[i])
        i += 1
        if len(out) > MAX_TOKENS:
            raise NginxSyntaxError(f"configuration has more than {MAX_TOKENS} tokens")
    return out


def parse_config(text: str) -> Block:
    """Parse `nginx -T` output (several files) or one configuration file's text."""
    parts = split_files(text)
    if parts:
        files = {k: _tokens(v) for k, v in parts.items()}
        tokens = _expanded(next(iter(files)), files)
    else:
        tokens = _tokens(text)
    return _tree(tokens)


def _tree(tokens: list[str]) -> Block:
    root = Block("main", [])
    stack = [root]
    words: list[str] = []
    for tok in tokens:
        if tok == ";":
            if words:
                stack[-1].directives.append((words[0], words[1:]))
            words = []
        elif tok == "{":
            if not words:
                raise NginxSyntaxError("'{' without a block name")
            if len(stack) >= MAX_DEPTH:
                raise NginxSyntaxError(f"blocks nested deeper than {MAX_DEPTH}")
            child = Block(words[0], words[1:])
            stack[-1].children.append(child)
            stack.append(child)
            words = []
        elif tok == "}":
            if len(stack) == 1:
                raise NginxSyntaxError("'}' without an open block")
            stack.pop()
            words = []
        else:
            words.append(tok)
    return root


def _last(block: Block, name: str) -> list[str] | None:
    values = block.get(name)
    return values[-1] if values else None


def servers_of(text: str) -> NginxFacts:
    """The server blocks of the http context, each with the settings it inherits."""
    version = ""
    body = []
    for line in text.splitlines():
        if line.startswith("nginx version:"):
            version = line.split("/", 1)[-1].strip()
        elif line.startswith("nginx: "):
            continue
        else:
            body.append(line)
    try:
        root = parse_config("\n".join(body))
    except NginxSyntaxError as exc:
        return NginxFacts(version=version, error=str(exc))
    servers: list[NginxServer] = []
    for http in (b for b in root.children if b.name == "http"):
        h_protocols = _last(http, "ssl_protocols")
        h_ciphers = _last(http, "ssl_ciphers")
        h_tokens = _last(http, "server_tokens")
        h_hsts = any(
            a and a[0].lower() == "strict-transport-security" for a in http.get("add_header")
        )
        for srv in (b for b in http.children if b.name == "server"):
            listens = [" ".join(a) for a in srv.get("listen")]
            tls = any("ssl" in a.split() or "quic" in a.split() for a in listens) or (
                (_last(srv, "ssl") or ["off"])[0] == "on"
            )
            protocols = _last(srv, "ssl_protocols") or h_protocols
            ciphers = _last(srv, "ssl_ciphers") or h_ciphers
            tokens = _last(srv, "server_tokens") or h_tokens
            hsts = h_hsts or any(
                a and a[0].lower() == "strict-transport-security" for a in srv.get("add_header")
            )
            servers.append(
                NginxServer(
                    listen=tuple(listens) or ("80",),
                    names=tuple(n for a in srv.get("server_name") for n in a),
                    tls=tls,
                    protocols=tuple(protocols) if protocols is not None else None,
                    ciphers=" ".join(ciphers or []),
                    server_tokens=(tokens or [""])[0].lower(),
                    hsts=hsts,
                )
            )
    return NginxFacts(version=version, servers=tuple(servers))
