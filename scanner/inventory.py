"""The inventory: units, their networks, hosts, web URLs and document stores.

Loaded from YAML with ruamel.yaml so that every validation error can name the file, the line
and the field in one line, e.g.::

    unit.yaml:14 units[0].networks[1].cidr: '10.0.0.300/24' is not a valid network

Secrets never live in the inventory: credentials are references to an environment variable,
a file or a keyring entry, and a literal password is refused.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from scanner.scope import ScopeGuard

MAX_INVENTORY_BYTES = 4 * 1024 * 1024
_PORTS = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")
_UNIT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
LITERAL_SECRET = (
    "a literal secret is not allowed in the inventory; "
    "reference it instead: {env: VAR}, {file: PATH} or {keyring: SERVICE/USER}"
)


class InventoryError(Exception):
    """One-line, located error: `file:line location: message`."""

    def __init__(self, file: str, line: int | None, location: str, message: str) -> None:
        self.file, self.line, self.location, self.message = file, line, location, message
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where} {location}: {message}" if location else f"{where}: {message}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CredentialRef(_Strict):
    """Where a secret lives. Exactly one of env, file, keyring."""

    env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    file: Path | None = None
    keyring: str | None = Field(default=None, pattern=r"^[^/]+/.+$")

    @model_validator(mode="before")
    @classmethod
    def _no_literal(cls, data: Any) -> Any:
        if isinstance(data, str | int | float):
            raise ValueError(LITERAL_SECRET)
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> CredentialRef:
        given = [k for k in ("env", "file", "keyring") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of env, file or keyring")
        return self

    def describe(self) -> str:
        """A safe description for logs and reports (never the secret)."""
        if self.env:
            return f"env:{self.env}"
        if self.file:
            return f"file:{self.file}"
        return f"keyring:{self.keyring}"


class JumpHost(_Strict):
    """A bastion the SSH session goes through (its address must be in scope too)."""

    address: str
    user: str = Field(min_length=1)
    port: int = Field(default=22, ge=1, le=65535)
    key: CredentialRef | None = None
    password: CredentialRef | None = None
    trust_on_first_use: bool = False

    @field_validator("address")
    @classmethod
    def _addr(cls, v: str) -> str:
        try:
            return str(ipaddress.ip_address(v))
        except ValueError:
            raise ValueError(f"{v!r} is not an IP address") from None


class SshAccess(_Strict):
    user: str = Field(min_length=1)
    port: int = Field(default=22, ge=1, le=65535)
    key: CredentialRef | None = None
    password: CredentialRef | None = None
    sudo: bool = False  # run the gatherer through sudo (sudo -n, or with sudo_password)
    sudo_password: CredentialRef | None = None
    trust_on_first_use: bool = False
    # host keys are verified against this file; default: Assay's pinned store
    # (~/.local/share/assay/known_hosts, or $ASSAY_KNOWN_HOSTS)
    known_hosts: Path | None = None
    budget: float = Field(default=60.0, gt=0, le=3600)  # seconds for the whole gathering
    jump: JumpHost | None = None

    @model_validator(mode="after")
    def _some_credential(self) -> SshAccess:
        if self.key is None and self.password is None:
            raise ValueError("give a key or a password reference for the SSH login")
        return self


class Contact(_Strict):
    name: str = ""
    email: str = ""
    phone: str = ""


def _check_ports(v: str | None) -> str | None:
    if v is None or v in ("default", "all"):
        return v
    v = str(v).replace(" ", "")
    if not _PORTS.match(v):
        raise ValueError(
            f"{v!r} is not a port list (use 'default', 'all' or e.g. '22,80,8000-8100')"
        )
    for part in v.split(","):
        lo, _, hi = part.partition("-")
        a, b = int(lo), int(hi or lo)
        if not (1 <= a <= b <= 65535):
            raise ValueError(f"port range {part!r} is outside 1-65535 or reversed")
    return v


class Network(_Strict):
    cidr: str
    exclude: list[str] = Field(default_factory=list)
    ports: str | None = None
    assume_up: bool = False
    name: str = ""

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, v: str) -> str:
        try:
            return str(ipaddress.ip_network(v, strict=False))
        except ValueError:
            raise ValueError(f"{v!r} is not a valid network") from None

    @field_validator("exclude")
    @classmethod
    def _exclude(cls, v: list[str]) -> list[str]:
        out = []
        for x in v:
            try:
                out.append(str(ipaddress.ip_network(x, strict=False)))
            except ValueError:
                raise ValueError(f"{x!r} is not a valid address or network") from None
        return out

    @field_validator("ports")
    @classmethod
    def _valid_ports(cls, v: str | None) -> str | None:
        return _check_ports(v)

    @model_validator(mode="after")
    def _not_empty(self) -> Network:
        net = ipaddress.ip_network(self.cidr)
        for x in self.exclude:
            ex = ipaddress.ip_network(x)
            if ex.version != net.version or not ex.overlaps(net):
                raise ValueError(f"exclusion {x} is not inside {self.cidr}")
            if net.subnet_of(ex):  # type: ignore[arg-type]
                raise ValueError(f"exclusion {x} removes every address of {self.cidr}")
        return self


class Host(_Strict):
    address: str
    names: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    ports: str | None = None
    ssh: SshAccess | None = None

    @field_validator("address")
    @classmethod
    def _addr(cls, v: str) -> str:
        try:
            return str(ipaddress.ip_address(v))
        except ValueError:
            raise ValueError(
                f"{v!r} is not an IP address (hosts are declared by address; put names in 'names')"
            ) from None

    @field_validator("ports")
    @classmethod
    def _valid_ports(cls, v: str | None) -> str | None:
        return _check_ports(v)


MAX_WEB_PATHS = 16
MAX_WEB_PATH_CHARS = 256
_PATH_CHARS = re.compile(r"^/[\x21-\x7e]*$")  # printable ASCII, no spaces


def _web_path(v: str) -> str:
    """A configured path is fetched on the URL's own site, so it may only name a path (and
    query): no scheme, no host, nothing a client could read as another site."""
    if "://" in v.split("?", 1)[0] or not v.startswith("/"):
        raise ValueError(f"{v!r} is not an absolute path (start with '/'; no scheme or host)")
    if v.startswith("//") or "\\" in v:
        raise ValueError(f"{v!r} would name another host ('//' or '\\'); give a path like /login")
    if len(v) > MAX_WEB_PATH_CHARS:
        raise ValueError(f"path is longer than {MAX_WEB_PATH_CHARS} characters")
    if not _PATH_CHARS.match(v) or "#" in v:
        raise ValueError(
            f"{v!r} is not a plain path (no spaces, fragments or non-ASCII; percent-encode them)"
        )
    return v


WebPath = Annotated[str, AfterValidator(_web_path)]


class WebUrl(_Strict):
    url: str
    tags: list[str] = Field(default_factory=list)
    # more pages of the same site to fetch besides the URL itself, e.g. [/login, /portal/]
    paths: list[WebPath] = Field(default_factory=list, max_length=MAX_WEB_PATHS)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{v!r} is not an http(s) URL")
        if parts.password:
            raise ValueError("a URL must not embed a password; " + LITERAL_SECRET)
        return v

    @field_validator("paths")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        seen: set[str] = set()
        for p in v:
            if p in seen:
                raise ValueError(f"path {p!r} is listed twice")
            seen.add(p)
        return v


class Store(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    kind: Literal["local", "webdav", "s3", "smb"]
    location: str
    credential: CredentialRef | None = None
    networked: bool = True  # a marked document on a networked store is critical

    @model_validator(mode="after")
    def _smb_location(self) -> Store:
        if self.kind == "smb":
            from scanner.stores.smb import parse_smb_url

            parse_smb_url(self.location)  # ValueError names the location and what is wrong
        return self


class Unit(_Strict):
    id: str
    name: str
    contact: Contact = Field(default_factory=Contact)
    networks: list[Network] = Field(default_factory=list)
    hosts: list[Host] = Field(default_factory=list)
    web: list[WebUrl] = Field(default_factory=list)
    stores: list[Store] = Field(default_factory=list)
    # assess the machine Assay runs on (host configuration, gathered without SSH)
    local: bool = False

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _UNIT_ID.match(v):
            raise ValueError(f"{v!r} is not a unit id (letters, digits, '-', '_', '.')")
        return v

    @model_validator(mode="after")
    def _something(self) -> Unit:
        if not (self.networks or self.hosts or self.web or self.stores or self.local):
            raise ValueError(
                "unit declares nothing to assess (no networks, hosts, web, stores or local)"
            )
        return self


SafetyClass = Literal["safe", "intrusive", "brute"]
SAFETY_CLASSES: tuple[SafetyClass, ...] = ("safe", "intrusive", "brute")


class ActiveConfig(_Strict):
    """How the active probes behave once `--active` enables them (the inventory alone never
    does): which safety classes run, how many passwords are tried per service, how fast, and
    an optional file of user/password pairs that replaces the built-in short list of each
    service it names (these are guesses to try, not the unit's secrets)."""

    classes: list[SafetyClass] = Field(default_factory=lambda: list(SAFETY_CLASSES), max_length=3)
    max_attempts: int = Field(default=3, ge=0, le=10)  # credential tries per service
    interval: float = Field(default=0.5, ge=0, le=60)  # seconds between two probes of a target
    # lines of `service user [password]` (service: ssh, ftp, telnet, http); read at scan time
    credentials: Path | None = None

    @field_validator("classes")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("a safety class is listed twice")
        return v


class Settings(_Strict):
    active: ActiveConfig = Field(default_factory=ActiveConfig)
    resolve_names: bool = False
    ports: str = "default"
    probe_timeout: float = Field(default=5.0, gt=0, le=120)
    collector_timeout: float = Field(default=60.0, gt=0, le=3600)
    version_budget: float = Field(default=20.0, gt=0, le=600)
    concurrency: int = Field(default=32, ge=1, le=1024)
    per_host: int = Field(default=4, ge=1, le=64)
    # CA certificates (PEM/DER files or directories) trusted for TLS besides the system store,
    # e.g. the unit's own internal CA. Checked when read, so an error names the file.
    tls_trust: list[Path] = Field(default_factory=list, max_length=64)

    @field_validator("ports")
    @classmethod
    def _valid_ports(cls, v: str | None) -> str | None:
        return _check_ports(v)


class Inventory(_Strict):
    version: Literal[1] = 1
    settings: Settings = Field(default_factory=Settings)
    units: list[Unit] = Field(min_length=1)

    def unit(self, unit_id: str) -> Unit:
        for u in self.units:
            if u.id == unit_id:
                return u
        known = ", ".join(u.id for u in self.units)
        raise KeyError(f"unit {unit_id!r} is not in the inventory (known: {known})")

    def scope(self, unit_ids: set[str] | None = None) -> ScopeGuard:
        units = [u for u in self.units if unit_ids is None or u.id in unit_ids]
        return ScopeGuard.of(
            networks=[(n.cidr, n.exclude, u.id) for u in units for n in u.networks],
            hosts=[(h.address, u.id) for u in units for h in u.hosts],
            names={name: h.address for u in units for h in u.hosts for name in h.names},
            resolve=self.settings.resolve_names,
        )


# ---------------------------------------------------------------------------------------------
# loading with located errors


def _loc_str(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _line_of(tree: Any, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest node of `loc` that exists in the YAML tree."""
    node, line = tree, None
    for part in loc:
        try:
            if isinstance(node, CommentedMap) and part in node:
                line = node.lc.key(part)[0] + 1
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
                line = node.lc.item(part)[0] + 1
                node = node[part]
            else:
                break
        except (KeyError, IndexError, TypeError, AttributeError):
            break
    if line is None and isinstance(tree, CommentedMap):
        line = tree.lc.line + 1
    return line


def _message(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "unknown key (check the spelling)"
    if kind == "missing":
        return "required field is missing"
    if kind in ("string_type", "int_parsing", "bool_parsing", "float_parsing", "list_type"):
        what = kind.split("_")[0]
        article = "an integer" if what == "int" else f"a {what}"
        return f"expected {article}, got {err.get('input')!r}"
    return msg


def _cross_checks(inv: Inventory, tree: Any) -> list[tuple[tuple[Any, ...], str]]:
    problems: list[tuple[tuple[Any, ...], str]] = []
    seen_units: dict[str, int] = {}
    nets: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, tuple[Any, ...]]] = []
    names: dict[str, str] = {}
    for ui, unit in enumerate(inv.units):
        if unit.id in seen_units:
            problems.append(
                (("units", ui, "id"), f"unit id {unit.id!r} repeats units[{seen_units[unit.id]}]")
            )
        seen_units.setdefault(unit.id, ui)
        for ni, network in enumerate(unit.networks):
            net = ipaddress.ip_network(network.cidr)
            for other, where in nets:
                if other.version == net.version and other.overlaps(net):
                    problems.append(
                        (
                            ("units", ui, "networks", ni, "cidr"),
                            f"{net} overlaps {other} declared at {_loc_str(where)}",
                        )
                    )
            nets.append((net, ("units", ui, "networks", ni)))
        for hi, host in enumerate(unit.hosts):
            for name in host.names:
                key = name.lower()
                if key in names and names[key] != host.address:
                    problems.append(
                        (("units", ui, "hosts", hi, "names"), f"name {name!r} is bound twice")
                    )
                names[key] = host.address
    if not inv.settings.resolve_names:
        guard = inv.scope()
        for ui, unit in enumerate(inv.units):
            for wi, web in enumerate(unit.web):
                try:
                    guard.resolve_url_host(web.url)
                except Exception as exc:
                    problems.append((("units", ui, "web", wi, "url"), str(exc)))
    return problems


def parse_inventory(text: str, file: str = "<inventory>") -> Inventory:
    yaml = YAML(typ="rt")
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise InventoryError(file, line, "", f"not valid YAML: {exc.problem or exc}") from None
    if not isinstance(tree, dict):
        raise InventoryError(file, 1, "", "the inventory must be a mapping with a 'units' list")
    try:
        inv = Inventory.model_validate(_plain(tree))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = tuple(first["loc"])
        # Never echo an input that might be a secret.
        message = _message(dict(first))
        if LITERAL_SECRET in message:
            message = LITERAL_SECRET
        extra = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise InventoryError(file, _line_of(tree, loc), _loc_str(loc), message + extra) from None
    problems = _cross_checks(inv, tree)
    if problems:
        loc, message = problems[0]
        extra = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InventoryError(file, _line_of(tree, loc), _loc_str(loc), message + extra)
    return inv


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def load_inventory(path: str | Path) -> Inventory:
    p = Path(path)
    name = str(path)
    try:
        if p.stat().st_size > MAX_INVENTORY_BYTES:
            raise InventoryError(name, None, "", f"file is larger than {MAX_INVENTORY_BYTES} bytes")
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InventoryError(str(p), None, "", "file not found") from None
    except IsADirectoryError:
        raise InventoryError(str(p), None, "", "is a directory, not an inventory file") from None
    except PermissionError:
        raise InventoryError(str(p), None, "", "permission denied") from None
    except UnicodeDecodeError as exc:
        raise InventoryError(str(p), None, "", f"not UTF-8 text ({exc.reason})") from None
    return parse_inventory(text, name)
