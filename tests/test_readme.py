"""The README stays true: its inventory example parses, and the check counts it states are
the installed ones."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from scanner.inventory import parse_inventory
from scanner.plugins import load_registry

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_the_inventory_example_parses() -> None:
    m = re.search(r"An inventory is a YAML file.*?```yaml\n(.*?)```", README, re.S)
    assert m, "the README has no inventory example"
    inv = parse_inventory(m.group(1), "README.md")
    assert inv.units and inv.units[0].web[0].paths


def test_the_check_counts_are_the_installed_ones() -> None:
    reg = load_registry()
    builtin = [c for c in reg.checks if not c.startswith("example.")]
    total = re.search(r"shows all (\d+) built-in checks", README)
    assert total and int(total.group(1)) == len(builtin)
    families = Counter(c.split(".")[0] for c in builtin)
    table = dict(re.findall(r"^\| `(\w+)\.\*` \| (\d+) \|", README, re.M))
    assert {f: int(n) for f, n in table.items()} == dict(families)
