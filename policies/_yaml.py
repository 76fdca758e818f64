"""Located YAML loading shared by packs and waiver files.

ruamel.yaml's round-trip loader keeps the line of every key and list item, so an error can name
the file, the line and the field in one line (`pack.yaml:14 controls[2].checks[0]: ...`),
the same way the inventory does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

MAX_BYTES = 4 * 1024 * 1024
Loc = tuple[str | int, ...]


class PolicyError(Exception):
    """One-line, located error: `file:line location: message`."""

    def __init__(self, file: str, line: int | None, location: str, message: str) -> None:
        self.file, self.line, self.location, self.message = file, line, location, message
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where} {location}: {message}" if location else f"{where}: {message}")


def loc_str(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def line_of(tree: Any, loc: Loc) -> int | None:
    """1-based line of the deepest node of `loc` present in the YAML tree."""
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


def plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    return node


def read_text(path: str | Path) -> str:
    p = Path(path)
    name = str(path)
    try:
        if p.stat().st_size > MAX_BYTES:
            raise PolicyError(name, None, "", f"file is larger than {MAX_BYTES} bytes")
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(name, None, "", "file not found") from None
    except IsADirectoryError:
        raise PolicyError(name, None, "", "is a directory, not a YAML file") from None
    except PermissionError:
        raise PolicyError(name, None, "", "permission denied") from None
    except UnicodeDecodeError as exc:
        raise PolicyError(name, None, "", f"not UTF-8 text ({exc.reason})") from None


def load_tree(text: str, file: str, what: str) -> CommentedMap:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise PolicyError(file, None, "", f"larger than {MAX_BYTES} bytes")
    try:
        tree = YAML(typ="rt").load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PolicyError(file, line, "", f"not valid YAML: {problem}") from None
    if not isinstance(tree, CommentedMap):
        raise PolicyError(file, 1, "", f"{what} must be a YAML mapping")
    return tree


def message(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "unknown key (check the spelling)"
    if kind == "missing":
        return "required field is missing"
    if kind == "literal_error" and err.get("loc", ("",))[-1] == "schema":
        return f"{msg} (this Assay reads 'assay-policy/1' packs)"
    return msg


def validation_error(exc: ValidationError, tree: Any, file: str) -> PolicyError:
    first = exc.errors(include_url=False)[0]
    loc: Loc = tuple(first["loc"])
    extra = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return PolicyError(file, line_of(tree, loc), loc_str(loc), message(dict(first)) + extra)
