"""The screens' colours are named once (ui/colours.py): no colour is written anywhere else in the
UI, every name used is defined, every name defined is used, and each app declares them."""

from __future__ import annotations

import re

from conftest import REPO
from loopviz.catalogue import catalogue
from loopviz.ui.colours import COLOURS, style
from loopviz.ui.picker import PickerApp

UI = REPO / "src" / "loopviz" / "ui"
HEX = re.compile(r"#[0-9a-fA-F]{6}\b|#[0-9a-fA-F]{3}\b")
NAME = re.compile(r"\$(lv-[a-z-]+)")


def ui_files() -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted(UI.glob("*.*"))
            if path.suffix in (".py", ".tcss") and path.name != "colours.py"}  # fmt: skip


def test_no_colour_is_written_outside_the_table():
    written = {name: HEX.findall(text) for name, text in ui_files().items()}
    assert {name: found for name, found in written.items() if found} == {}


def test_every_colour_name_used_is_defined_and_every_one_defined_is_used():
    used = {name for text in ui_files().values() for name in NAME.findall(text)}
    assert used - set(COLOURS) == set()
    assert set(COLOURS) - used == set()


def test_a_style_in_python_reads_the_table():
    assert style("bold $lv-accent on $lv-bar").color.triplet.hex == COLOURS["lv-accent"]
    assert style("bold $lv-accent on $lv-bar").bgcolor.triplet.hex == COLOURS["lv-bar"]


async def test_an_app_on_its_own_declares_the_colours():
    """The picker is an app of its own: its CSS gets the same variables as the main app's."""
    app = PickerApp(catalogue(REPO / "scenarios"))
    async with app.run_test():
        heading = app.query_one("#heading")
        assert heading.styles.color.hex.lower() == COLOURS["lv-accent"]
        assert app.screen.styles.background.hex.lower() == COLOURS["lv-ink"]
