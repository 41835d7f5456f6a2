"""The await tree panel: who awaits whom at the cursor, drawn with tree lines.

``python -m asyncio pstree`` shows this for a live process, once; this panel shows it for any
moment of a recording. Each node has the same label and glyph as its lane, its state and what it
waits on; clicking a task selects its lane. The tree itself comes from ``loopviz.awaittree``.
"""

from __future__ import annotations

from typing import Any

from rich.style import Style
from rich.text import Text
from textual import events
from textual.message import Message
from textual.widget import Widget

from loopviz import model
from loopviz.awaittree import ASCII, BOX, Tree, tree_rows
from loopviz.painter import Theme
from loopviz.ui.colours import style
from loopviz.units import clock

_STATE_STYLES = {
    model.RUNNING: "bold $lv-running",
    model.BLOCKED: "bold $lv-blocked",
    model.READY: "bold $lv-ready",
    "starved": "bold $lv-ready",
    model.WAITING: "$lv-waiting",
    "returned": "$lv-returned",
    "raised": "bold $lv-blocked",
    "cancelled": "$lv-ready",
}
# the lane glyph of each state (a finished task shows its ending's glyph, as its lane does)
_GLYPH_STATE = {"starved": model.READY}


class AwaitTreePanel(Widget):
    """The await tree at the cursor. Clicking a task posts ``TaskChosen``."""

    DEFAULT_CSS = """
    AwaitTreePanel {
        background: $lv-panel;
        padding: 0 1;
    }
    """

    class TaskChosen(Message):
        def __init__(self, task_id: int) -> None:
            super().__init__()
            self.task_id = task_id

    def __init__(self, theme: Theme, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.theme_shown = theme
        self.glyphs = ASCII if theme.name == "ascii" else BOX
        self.await_tree = Tree(())
        self.t = 0
        self.selected: int | None = None
        self._row_tasks: list[int | None] = []

    def rows(self) -> int:
        """How many nodes fit under the title."""
        return max(self.size.height - 1, 1)

    def show(self, tree: Tree, t: int, selected: int | None) -> None:
        self.await_tree, self.t, self.selected = tree, t, selected
        self.refresh()

    def render(self) -> Text:
        theme = self.theme_shown
        text = Text(no_wrap=True, overflow="crop", end="")
        text.append(f"AWAIT TREE at {clock(self.t)}", style=style("bold $lv-accent"))
        self._row_tasks = [None]
        rows = tree_rows(self.await_tree, self.glyphs)
        if not rows:
            text.append("\nno task is alive here", style=style("$lv-dim"))
        for prefix, node, words in rows[: self.rows()]:
            text.append("\n")
            text.append(prefix, style=style("$lv-faint"))
            self._row_tasks.append(node.task if node is not None else None)
            if node is None or node.kind != "task":
                glyph = "" if node is None else theme.thread_glyph + " " if (
                    node.kind == "thread") else ""  # fmt: skip
                text.append(glyph + words, style=theme.thread if glyph else style("$lv-soft"))
                continue
            glyph = theme.outcomes[node.state][0] if node.state in theme.outcomes else (
                theme.lane_glyphs.get(_GLYPH_STATE.get(node.state, node.state), "?"))  # fmt: skip
            selected = node.task == self.selected
            name_style = theme.selected if selected else Style(bold=True)
            text.append(f"{glyph} {node.name}", style=name_style)
            text.append(f" {node.state}", style=style(_STATE_STYLES.get(node.state, "")))
            if node.wait:
                text.append(f" {node.wait}", style=style("$lv-dim"))
        if theme.name == "ascii":
            text.plain = text.plain.encode("ascii", "replace").decode("ascii")
        return text

    def on_click(self, event: events.Click) -> None:
        if 0 <= event.y < len(self._row_tasks):
            task = self._row_tasks[event.y]
            if task is not None:
                self.post_message(self.TaskChosen(task))
