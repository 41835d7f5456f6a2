"""The colours of loopviz's screens, named once.

The lanes take their colours from the painter's theme (painter.py), so pictures match the app.
Everything else on screen takes its colour from these names, declared as Textual CSS variables
(``$lv-accent``...) by every app built on ``ColouredApp``: app.tcss and each widget's
``DEFAULT_CSS`` say ``$lv-accent``, never a colour. Words a widget writes from Python take their
style either from a component class given its colour in CSS (``ink``, the panels' way) or from
``style("bold $lv-accent")``, so no colour is written in Python outside this table.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TypeVar

from rich.style import Style
from textual.app import App
from textual.widget import Widget

COLOURS: dict[str, str] = {
    "lv-ink": "#000000",  # the screen, and dark words on a badge
    "lv-bar": "#1c1c1c",  # the header and the explanation
    "lv-panel": "#0a0a0a",  # the side panel
    "lv-log": "#080808",  # the bottom pane
    "lv-notice": "#262626",
    "lv-help": "#101010",  # the help screen
    "lv-rule": "#444444",  # lines between panes
    "lv-white": "#ffffff",
    "lv-text": "#e4e4e4",  # plain words
    "lv-soft": "#bcbcbc",  # the header's secondary words
    "lv-dim": "#8a8a8a",  # labels
    "lv-accent": "#ffd700",  # headings, the clock at the cursor, key moments
    "lv-alarm": "#d70000",  # a block's length, a failed exit
    "lv-banner": "#af0000",  # the block banner
    "lv-watch": "#303000",  # the lesson's "Watch for"
    "lv-running": "#00ff5f",
    "lv-idle": "#5f87ff",
    "lv-ready": "#ffaf00",
    "lv-timers": "#87afff",
    "lv-loading": "#87afff",
    "lv-orange": "#ff8700",  # a truncated trace, tasks the recorder could not see
    "lv-stderr": "#ff8787",
    "lv-error": "#ff5f5f",
    "lv-blocked": "#ff3030",  # a blocked task (the lanes' red)
    "lv-waiting": "#87afff",  # a waiting task
    "lv-returned": "#00d75f",  # a task that returned
    "lv-faint": "#6c6c6c",  # line numbers, tree lines
    "lv-here": "#3a3a00",  # the source line at the cursor
    "lv-here-bright": "#5f5f00",  # the same, in the classroom theme
    "lv-held": "#5f0000",  # the source line that blocks the loop
    "lv-held-bright": "#870000",  # the same, in the classroom theme
    "lv-good": "#5fff5f",  # a run with no block (compare)
}

ReturnType = TypeVar("ReturnType")


class ColouredApp(App[ReturnType]):
    """An app whose CSS can use loopviz's colour variables."""

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return {**super().get_theme_variable_defaults(), **COLOURS}


def ink(widget: Widget, name: str) -> Style:
    """The style the CSS gives ``widget``'s component class ``ink--name`` (only what it sets:
    colour, background, bold)."""
    return widget.get_component_rich_style(f"ink--{name}", partial=True)


@lru_cache(maxsize=64)
def style(spec: str) -> Style:
    """A Rich style written with these names: ``style("bold $lv-accent on $lv-bar")``."""
    return Style.parse(re.sub(r"\$(lv-[a-z-]+)", lambda name: COLOURS[name[1]], spec))
