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
from loopviz.units import clock

_STATE_STYLES = {
    model.RUNNING: "bold #00ff5f",
    model.BLOCKED: "bold #ff3030",
    model.READY: "bold #ffaf00",
    "starved": "bold #ffaf00",
    model.WAITING: "#87afff",
    "returned": "#00d75f",
    "raised": "bold #ff3030",
    "cancelled": "#ffaf00",
}
# the lane glyph of each state (a finished task shows its ending's glyph, as its lane does)
_GLYPH_STATE = {"starved": model.READY}


class AwaitTreePanel(Widget):
    """The await tree at the cursor. Clicking a task posts ``TaskChosen``."""

    DEFAULT_CSS = """
    AwaitTreePanel {
        background: #0a0a0a;
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
        text.append(f"AWAIT TREE at {clock(self.t)}", style="bold #ffd700")
        self._row_tasks = [None]
        rows = tree_rows(self.await_tree, self.glyphs)
        if not rows:
            text.append("\nno task is alive here", style="#8a8a8a")
        for prefix, node, words in rows[: self.rows()]:
            text.append("\n")
            text.append(prefix, style="#6c6c6c")
            self._row_tasks.append(node.task if node is not None else None)
            if node is None or node.kind != "task":
                glyph = "" if node is None else theme.thread_glyph + " " if (
                    node.kind == "thread") else ""  # fmt: skip
                text.append(glyph + words, style=theme.thread if glyph else "#bcbcbc")
                continue
            glyph = theme.outcomes[node.state][0] if node.state in theme.outcomes else (
                theme.lane_glyphs.get(_GLYPH_STATE.get(node.state, node.state), "?"))  # fmt: skip
            selected = node.task == self.selected
            name_style = theme.selected if selected else Style(bold=True)
            text.append(f"{glyph} {node.name}", style=name_style)
            text.append(f" {node.state}", style=_STATE_STYLES.get(node.state, ""))
            if node.wait:
                text.append(f" {node.wait}", style="#8a8a8a")
        if theme.name == "ascii":
            text.plain = text.plain.encode("ascii", "replace").decode("ascii")
        return text

    def on_click(self, event: events.Click) -> None:
        if 0 <= event.y < len(self._row_tasks):
            task = self._row_tasks[event.y]
            if task is not None:
                self.post_message(self.TaskChosen(task))
