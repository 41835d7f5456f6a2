"""Keys are defined once, in the bindings: the help screen is made from them, and the README's
key table must list every one of them and no other."""

from __future__ import annotations

import re
from pathlib import Path

from textual.binding import Binding

from loopviz.ui.app import LoopvizApp
from loopviz.ui.help import key_name, key_table, unexplained

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_keys() -> set[str]:
    """The backticked keys in the first column of the README's table of keys."""
    text = README.read_text(encoding="utf-8")
    table = text[text.index("| key | does |") :].split("\n\n", 1)[0]
    rows = [line.split("|")[1] for line in table.splitlines()[2:]]
    return {key for cell in rows for key in re.findall(r"`([^`]+)`", cell)}


def test_every_binding_is_explained_in_the_help():
    assert unexplained(LoopvizApp.key_bindings()) == []


def test_the_help_lists_every_key_of_the_bindings():
    bindings = LoopvizApp.key_bindings()
    listed = " ".join(keys for keys, _does in key_table(bindings))
    for binding in bindings:
        assert key_name(binding) in listed.split() or key_name(binding) + "," in listed.split()


def test_the_help_is_read_from_the_bindings_not_written_twice():
    """Rebinding a key changes what the help says."""
    bindings = [Binding("x", "app.step(-1)"), Binding("y", "app.step(1)")]
    bound = [row for row in key_table(bindings) if not row[0].startswith("click")]
    assert bound == [("x y", "previous / next event")]
    assert unexplained([Binding("z", "app.something_new")]) == ["something_new"]


def test_the_readme_lists_exactly_the_bound_keys():
    bound = {key_name(binding) for binding in LoopvizApp.key_bindings()}
    listed = _readme_keys()
    assert bound - listed == set(), "keys missing from the README's key table"
    assert listed - bound == set(), "keys in the README's table that nothing binds"
