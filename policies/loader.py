"""Loading, cross-checking and resolving policy packs.

`parse_pack` checks a pack's shape (the pydantic model); `Catalog.validate` checks it against the
installed checks: every check id must be registered, unless the pack marks it `planned`, and
every parameter override must name a real parameter with a valid value. Each problem is one
located line (`file:line location: message`) so a typo is found before a scan, not after.

Resolution expands `imports` (another pack's controls, with one of its profiles) into plain
controls, so scoring only ever sees one flat list per pack.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml.comments import CommentedMap

from policies._yaml import (
    PolicyError,
    line_of,
    load_tree,
    loc_str,
    message,
    plain,
    read_text,
    validation_error,
)
from policies.model import CheckRef, Control, Obligation, Pack

BUILTIN_PACKAGE = "policies.packs"


@dataclass(frozen=True)
class LoadedPack:
    """A parsed pack with what is needed to locate later problems in its file."""

    pack: Pack
    file: str
    tree: CommentedMap = field(repr=False, compare=False)
    builtin: bool = False

    def error(self, loc: tuple[str | int, ...], msg: str) -> PolicyError:
        return PolicyError(self.file, line_of(self.tree, loc), loc_str(loc), msg)


@dataclass(frozen=True)
class ResolvedControl:
    """A control ready for scoring: imports expanded, profile parameters merged in."""

    id: str  # unique within the resolved pack ("crypto-transport/TLS-01" when imported)
    control: Control
    checks: tuple[CheckRef, ...]
    obligation: Obligation
    level: int | None
    section: str
    source_pack: str

    def applies_at(self, level: int | None) -> bool:
        """Whether the control is selected at `level` (None: the pack has no levels)."""
        if level is None:
            return True
        if self.level is not None and level < self.level:
            return False
        until = self.control.until_level
        return not (until is not None and level > until)


@dataclass(frozen=True)
class ResolvedPack:
    pack: Pack
    controls: tuple[ResolvedControl, ...]

    def control(self, control_id: str) -> ResolvedControl | None:
        return next((c for c in self.controls if c.id == control_id), None)

    def check_ids(self) -> set[str]:
        return {ref.id for c in self.controls for ref in c.checks}


def parse_pack(text: str, file: str = "<pack>", builtin: bool = False) -> LoadedPack:
    tree = load_tree(text, file, "a policy pack")
    try:
        pack = Pack.model_validate(plain(tree))
    except ValidationError as exc:
        raise validation_error(exc, tree, file) from None
    loaded = LoadedPack(pack, file, tree, builtin)
    seen: dict[str, int] = {}
    for i, c in enumerate(pack.controls):
        if c.id in seen:
            raise loaded.error(
                ("controls", i, "id"), f"control id {c.id!r} repeats controls[{seen[c.id]}]"
            )
        seen[c.id] = i
        columns = {m.id for m in pack.mappings}
        for key in c.mapping:
            if key not in columns:
                raise loaded.error(
                    ("controls", i, "mapping", key),
                    f"mapping column {key!r} is not declared under 'mappings' "
                    f"(declared: {', '.join(sorted(columns)) or 'none'})",
                )
        top = max((lv.level for lv in pack.levels), default=None)
        for attr in ("level", "until_level"):
            value = getattr(c, attr)
            if value is not None and (top is None or value > top):
                raise loaded.error(
                    ("controls", i, attr),
                    f"level {value} is not declared by the pack"
                    + (f" (highest level: {top})" if top else " (the pack has no levels)"),
                )
    return loaded


def load_pack(path: str | Path) -> LoadedPack:
    return parse_pack(read_text(path), str(path))


def builtin_files() -> list[Path]:
    root = resources.files(BUILTIN_PACKAGE)
    return sorted(Path(str(p)) for p in root.iterdir() if p.name.endswith(".yaml"))


def _param_problem(params_model: type[BaseModel], overrides: Mapping[str, Any]) -> str | None:
    known = set(params_model.model_fields)
    unknown = sorted(set(overrides) - known)
    if unknown:
        return (
            f"has no parameter {', '.join(repr(u) for u in unknown)} "
            f"(known: {', '.join(sorted(known)) or 'none'})"
        )
    try:
        params_model.model_validate(dict(overrides))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = loc_str(tuple(first["loc"]))
        return f"parameter {where}: {message(dict(first))}"
    return None


class Catalog:
    """The packs Assay knows: the built-in ones plus any files given on the command line."""

    def __init__(self, packs: Iterable[LoadedPack] = ()) -> None:
        self.packs: dict[str, LoadedPack] = {}
        for lp in packs:
            self.add(lp)

    @classmethod
    def builtin(cls, extra_files: Iterable[str | Path] = ()) -> Catalog:
        cat = cls(
            parse_pack(p.read_text("utf-8"), f"policies/packs/{p.name}", True)
            for p in builtin_files()
        )
        for f in extra_files:
            cat.add(load_pack(f), replace=True)
        return cat

    def add(self, lp: LoadedPack, replace: bool = False) -> None:
        other = self.packs.get(lp.pack.id)
        if other is not None and not (replace and other.builtin):
            raise lp.error(("id",), f"pack id {lp.pack.id!r} is already defined by {other.file}")
        self.packs[lp.pack.id] = lp

    def get(self, ref: str) -> LoadedPack:
        """A pack by id, or by file path (which is loaded and added)."""
        if ref in self.packs:
            return self.packs[ref]
        if ref.endswith((".yaml", ".yml")) or "/" in ref:
            lp = load_pack(ref)
            self.add(lp, replace=True)
            return lp
        raise KeyError(f"no policy pack {ref!r} (known: {', '.join(sorted(self.packs))})")

    # -- validation against the installed checks ---------------------------------------------
    def validate(self, lp: LoadedPack, checks: Mapping[str, Any]) -> list[PolicyError]:
        """Every problem of one pack against the installed checks (empty list: valid)."""
        problems: list[PolicyError] = []
        pack = lp.pack
        for i, c in enumerate(pack.controls):
            for j, ref in enumerate(c.checks):
                loc: tuple[str | int, ...] = ("controls", i, "checks", j)
                check = checks.get(ref.id)
                if check is None:
                    if not ref.planned:
                        problems.append(
                            lp.error(
                                loc,
                                f"unknown check {ref.id!r}: it is not installed (mark it "
                                "'planned: true' if it is still being written)",
                            )
                        )
                    continue
                if ref.params:
                    why = _param_problem(check.Params, ref.params)
                    if why:
                        problems.append(lp.error((*loc, "params"), f"check {ref.id!r} {why}"))
        named = {ref.id for c in pack.controls for ref in c.checks}
        for i, prof in enumerate(pack.profiles):
            for check_id, overrides in prof.params.items():
                loc = ("profiles", i, "params", check_id)
                if check_id not in named:
                    problems.append(
                        lp.error(loc, f"check {check_id!r} is not named by any control")
                    )
                    continue
                check = checks.get(check_id)
                if check is not None:
                    why = _param_problem(check.Params, overrides)
                    if why:
                        problems.append(lp.error(loc, f"check {check_id!r} {why}"))
        for i, imp in enumerate(pack.imports):
            loc = ("imports", i)
            other = self.packs.get(imp.pack)
            if other is None or imp.pack == pack.id:
                problems.append(
                    lp.error(
                        (*loc, "pack"),
                        f"cannot import pack {imp.pack!r} (known: "
                        f"{', '.join(sorted(p for p in self.packs if p != pack.id))})",
                    )
                )
                continue
            if other.pack.imports:
                problems.append(
                    lp.error((*loc, "pack"), f"pack {imp.pack!r} itself imports; nest one level")
                )
            if imp.profile is not None and other.pack.profile(imp.profile) is None:
                known = ", ".join(p.id for p in other.pack.profiles) or "none"
                problems.append(
                    lp.error(
                        (*loc, "profile"),
                        f"pack {imp.pack!r} has no profile {imp.profile!r} (known: {known})",
                    )
                )
            ids = {c.id for c in other.pack.controls}
            for k, cid in enumerate(imp.controls or []):
                if cid not in ids:
                    problems.append(
                        lp.error((*loc, "controls", k), f"pack {imp.pack!r} has no control {cid!r}")
                    )
            top = max((lv.level for lv in pack.levels), default=None)
            if imp.level is not None and (top is None or imp.level > top):
                problems.append(lp.error((*loc, "level"), f"level {imp.level} is not declared"))
        return problems

    def unregistered(self, lp: LoadedPack, checks: Mapping[str, Any]) -> list[str]:
        """Check ids the pack names (as planned) that are not installed yet."""
        return sorted({r.id for c in lp.pack.controls for r in c.checks if r.id not in checks})

    # -- resolution --------------------------------------------------------------------------
    def resolve(self, pack_id: str) -> ResolvedPack:
        lp = self.get(pack_id)
        pack = lp.pack
        controls = [self._own(pack, c) for c in pack.controls]
        for imp in pack.imports:
            other = self.get(imp.pack).pack
            profile = other.profile(imp.profile)
            prefix = imp.prefix or f"{other.id}/"
            wanted = set(imp.controls) if imp.controls is not None else None
            for c in other.controls:
                if wanted is not None and c.id not in wanted:
                    continue
                chosen = profile.params if profile else {}
                refs = tuple(
                    r.model_copy(update={"params": {**r.params, **chosen.get(r.id, {})}})
                    for r in c.checks
                )
                controls.append(
                    ResolvedControl(
                        id=f"{prefix}{c.id}",
                        control=c,
                        checks=refs,
                        obligation=imp.obligation or c.obligation,
                        level=imp.level if imp.level is not None else None,
                        section=imp.section or c.section,
                        source_pack=other.id,
                    )
                )
        return ResolvedPack(pack, tuple(controls))

    @staticmethod
    def _own(pack: Pack, c: Control) -> ResolvedControl:
        profile = pack.profile(None)
        refs = tuple(
            r.model_copy(update={"params": {**r.params, **profile.params.get(r.id, {})}})
            if profile and r.id in profile.params
            else r
            for r in c.checks
        )
        return ResolvedControl(
            id=c.id,
            control=c,
            checks=refs,
            obligation=c.obligation,
            level=c.level,
            section=c.section,
            source_pack=pack.id,
        )
