"""The source pane and the code column: the line at the cursor, in its file, beside the lanes.

A student who sees *when* a task ran also needs to see *where*: the line each task is paused on,
the line that is running, the line that froze the loop. ``SourcePane`` draws a window of a file
around that line (line numbers, Rich's syntax highlighting, the line marked) with every paused
task's label beside its await line. ``CodeColumn`` holds it above the await tree
(``ui/awaittree.py``) and works out both from the cursor: the app makes one call per redraw.

What to show comes from ``loopviz.sourcecode`` and ``loopviz.awaittree`` (pure); this module only
draws it. Files are read when first shown and never executed.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.style import Style
from rich.syntax import Syntax
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widget import Widget

from loopviz import model
from loopviz.awaittree import WaitIndex, WaitState, await_tree
from loopviz.model import Timeline
from loopviz.painter import Theme
from loopviz.sourcecode import Focus, Source, SourceFiles, file_near, focus_at, paused_at
from loopviz.ui.awaittree import AwaitTreePanel
from loopviz.ui.colours import style
from loopviz.viewstate import ViewState

WIDE = 140  # columns from which the code column is shown unless ``c`` hid it
HIGHLIGHT_ALL_UP_TO = 3_000  # lines: a bigger file is highlighted a window at a time
SHOWN_NAMES = 4  # names listed beside a line before "+N"

Marks = tuple[list[tuple[str, str]], int]  # (lane glyph, label) of the first tasks, and the rest


@dataclass(frozen=True)
class PaneLook:
    """How the pane marks things, per theme: the ASCII theme uses ASCII only."""

    here: str
    rule: str
    up: str
    syntax: str
    current: Style
    blocked: Style
    names: Style
    notice: Style
    title: Style


def look_for(theme: Theme) -> PaneLook:
    ascii_only = theme.name == "ascii"
    bright = theme.name == "classroom"
    return PaneLook(
        here=">" if ascii_only else "▶",
        rule="|" if ascii_only else "│",
        up="^" if ascii_only else "↑",
        syntax="monokai",
        current=style("bold on $lv-here-bright" if bright else "not bold on $lv-here"),
        blocked=style("bold on $lv-held-bright" if bright else "not bold on $lv-held"),
        names=theme.label,
        notice=style("bold $lv-ready"),
        title=style("bold $lv-accent"),
    )


def ascii_safe(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")


@dataclass
class PaneContent:
    """What the pane shows: a focus in a source, and the paused tasks' labels by line."""

    focus: Focus | None = None
    source: Source | None = None
    file: str = ""  # the file shown: the focus's, or the one named nearest the cursor


class SourcePane(Widget):
    """A window of one source file around the focus line; clicking a line asks for the next
    event at that line."""

    DEFAULT_CSS = """
    SourcePane {
        height: 1fr;
        background: $lv-ink;
        padding: 0 1;
    }
    """

    class LineClicked(Message):
        """The user clicked line ``line`` of ``file``."""

        def __init__(self, file: str, line: int) -> None:
            super().__init__()
            self.file = file
            self.line = line

    def __init__(
        self, theme: Theme, marks_for: Callable[[str, int, int], dict[int, Marks]], **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.theme_shown = theme
        self.marks_for = marks_for  # (file, first line, last line) -> the paused tasks by line
        self.look = look_for(theme)
        self.content = PaneContent()
        self.window: tuple[int, int] = (1, 0)  # first and last line shown
        self._row_lines: list[int] = []  # screen row -> line number (0: not a line)
        self._highlighted: dict[tuple[str, int], list[Text]] = {}

    def show(self, content: PaneContent) -> None:
        self.content = content
        self.refresh()

    def notice_rows(self) -> list[str]:
        """The source's notice, wrapped to the pane's width."""
        source = self.content.source
        if source is None or not source.notice:
            return []
        return textwrap.wrap(source.notice, max(self.size.width - 2, 10), break_on_hyphens=False)

    def code_rows(self) -> int:
        return max(self.size.height - 1 - len(self.notice_rows()), 1)

    def window_for(self, total: int, paused: list[int]) -> tuple[int, int]:
        """The lines to show: the focus line and as many of the ``paused`` lines around it as
        fit, else the focus line a third of the way down; clipped to the file."""
        rows = self.code_rows()
        focus = self.content.focus
        centre = focus.line if focus is not None and focus.file == self.content.file else None
        top = bottom = centre if centre is not None else (paused[0] if paused else 1)

        def needed(top: int, bottom: int) -> int:  # a marked line may take a second row
            return bottom - top + 1 + sum(top <= line <= bottom for line in paused)

        for line in sorted(paused, key=lambda line: abs(line - top)):
            if needed(min(top, line), max(bottom, line)) <= rows:
                top, bottom = min(top, line), max(bottom, line)
        spare = rows - needed(top, bottom)
        first = max(min(top - max(spare // 3, min(spare, 2)), total - rows + 1), 1)
        rows -= sum(first <= line < first + rows for line in paused)
        return first, min(first + max(rows, 1) - 1, total)

    def render(self) -> Text:
        content, look = self.content, self.look
        text = Text(no_wrap=True, overflow="crop", end="")
        self._row_lines = [0]
        focus, source = content.focus, content.source
        room = max(self.size.width - 2, 10)  # the padding
        if source is None:
            words = "No line at the cursor yet: step to an event (← →)."
            text.append(words, style=style("$lv-dim"))
            return self._safe(text)
        here = focus is not None and focus.file == content.file
        title = content.file
        if focus is not None and here:
            title = f"{content.file}:{focus.line}  {focus.words}"
            if len(title) > room:
                title = f"{content.file.rsplit('/', 1)[-1]}:{focus.line}  {focus.words}"
        text.append(self._fit(title, room), style=look.title)
        for notice in self.notice_rows():
            text.append("\n" + notice, style=look.notice)
            self._row_lines.append(0)
        if source.lines is None:
            return self._safe(text)
        marks = self.marks_for(content.file, 1, len(source.lines))
        first, last = self.window = self.window_for(len(source.lines), list(marks))
        width = len(str(last))
        rows_left = self.size.height - len(self._row_lines)
        for number, code in zip(range(first, last + 1), self._lines(source, first, last),
                                strict=False):  # fmt: skip
            current = here and focus is not None and focus.line == number
            gutter = f"{look.here if current else ' '} {number:>{width}} {look.rule} "
            row = Text(gutter, style=look.title if current else style("$lv-faint"))
            row.append_text(code[: room - len(gutter)])
            if current:
                blocked = focus is not None and focus.why in ("block", "held")
                row.stylize(look.blocked if blocked else look.current)
            rows = [row]
            names = self._names(*marks.get(number, ([], 0)))
            if names and len(row) + 2 + len(names) <= room:
                row.append("  " + names, style=look.names)
            elif names:  # no room beside the code: on a row of its own under the line
                indent = len(code.plain) - len(code.plain.lstrip())
                under = f"{' ' * (width + 2)} {look.rule} {' ' * indent}{look.up} {names}"
                rows.append(Text(self._fit(under, room), style=look.names))
            for row in rows:
                if rows_left <= 0:
                    break
                text.append("\n")
                text.append_text(row)
                self._row_lines.append(number)
                rows_left -= 1
        return self._safe(text)

    @staticmethod
    def _names(named: list[tuple[str, str]], more: int) -> str:
        """``◷ fast, medium ● slow +3``: the paused tasks, grouped by their lane glyph."""
        by_glyph: dict[str, list[str]] = {}
        for glyph, name in named:
            by_glyph.setdefault(glyph, []).append(name)
        text = " ".join(f"{glyph} {', '.join(names)}" for glyph, names in by_glyph.items())
        return f"{text} +{more:,}" if more else text

    def _fit(self, words: str, room: int) -> str:
        """One row: cut to ``room`` columns, with an ellipsis where cut."""
        if len(words) <= room:
            return words
        ellipsis = "..." if self.theme_shown.name == "ascii" else "…"
        return words[: room - len(ellipsis)] + ellipsis

    def _safe(self, text: Text) -> Text:
        if self.theme_shown.name == "ascii":  # every character on screen ASCII, the code too
            text.plain = ascii_safe(text.plain)
        return text

    def _lines(self, source: Source, first: int, last: int) -> list[Text]:
        """Highlighted lines ``first``..``last``: a small file highlighted whole, once; a big
        one a window at a time (a string opened above the window may then be misread)."""
        lines = source.lines or []
        if len(lines) <= HIGHLIGHT_ALL_UP_TO:
            key = (source.file, 0)
            if key not in self._highlighted:
                self._highlighted[key] = self._highlight(lines)
            return self._highlighted[key][first - 1 : last]
        return self._highlight(lines[first - 1 : last])

    def _highlight(self, lines: list[str]) -> list[Text]:
        code = "\n".join(lines)
        highlighted = Syntax(code, "python", theme=self.look.syntax).highlight(code)
        plain = Text(highlighted.plain)
        for span in highlighted.spans:  # the theme's colours, on the pane's own background
            style = span.style
            if isinstance(style, Style) and style.color is not None:
                plain.stylize(Style(color=style.color, bold=style.bold, italic=style.italic),
                              span.start, span.end)  # fmt: skip
        return list(plain.split("\n", allow_blank=True))[: len(lines)]

    def on_click(self, event: events.Click) -> None:
        if 0 <= event.y < len(self._row_lines) and self._row_lines[event.y]:
            self.post_message(self.LineClicked(self.content.file, self._row_lines[event.y]))


class CodeColumn(Vertical):
    """The source pane above the await tree, both as of the event at the cursor."""

    DEFAULT_CSS = """
    CodeColumn {
        width: 36%;
        min-width: 48;
        border-left: tall $lv-rule;
    }
    CodeColumn > AwaitTreePanel {
        height: 35%;
        border-top: dashed $lv-rule;
    }
    Screen.-compact CodeColumn {
        width: 40%;
        min-width: 30;
    }
    CodeColumn.-ascii {
        border-left: ascii $lv-rule;
    }
    CodeColumn.-ascii > AwaitTreePanel {
        border-top: ascii $lv-rule;
    }
    """

    def __init__(self, timeline: Timeline, theme: Theme, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.timeline = timeline
        self.theme_shown = theme
        self.waits = WaitIndex(timeline)
        self.files = SourceFiles(timeline)
        self.wanted: bool | None = None  # None: shown when the terminal is WIDE
        self._moment: tuple[int, int | None, int, int | None, int] | None = None
        self._state = WaitState()
        self._at = ViewState.at_end(timeline)  # where the viewer stood at the last show_at

    def compose(self) -> ComposeResult:
        self.set_class(self.theme_shown.name == "ascii", "-ascii")
        yield SourcePane(self.theme_shown, self._marks)
        yield AwaitTreePanel(self.theme_shown)

    def fit(self, width: int) -> None:
        """The terminal is ``width`` columns: show the column there unless ``c`` said."""
        if self.wanted is None:
            self.display = width >= WIDE

    def toggle(self) -> bool:
        self.wanted = not self.display
        self.display = self.wanted
        self._moment = None
        return self.wanted

    def show_at(self, index: int, at: ViewState, selected: int | None) -> None:
        """Show the event ``index`` (the view's horizon being its moment)."""
        if not self.display:
            return
        timeline = self.timeline
        moment = (index, at.cursor, at.horizon if at.live else 0, selected, len(timeline.events))
        if moment == self._moment:
            return
        self._moment, self._at = moment, at
        self._state = state = self.waits.at(index)
        focus = focus_at(timeline, index, state, at)
        file = focus.file if focus is not None else file_near(timeline, index)
        source = self.files.get(file) if file else None
        self.query_one(SourcePane).show(PaneContent(focus, source, file))
        tree_panel = self.query_one(AwaitTreePanel)
        limit = max(tree_panel.rows(), 4)
        tree = await_tree(timeline, state, at.horizon, limit=limit, live=at.live)
        tree_panel.show(tree, at.horizon, selected)

    def _marks(self, file: str, first: int, last: int) -> dict[int, Marks]:
        """The paused tasks on lines ``first``..``last``: by line, the first few as (lane glyph,
        label), and how many more."""
        timeline = self.timeline
        glyphs = self.theme_shown.lane_glyphs
        horizon, threshold = self._at.horizon, timeline.block_threshold_ns
        marks: dict[int, Marks] = {}
        for line, (tasks, count) in paused_at(self._state, file, first, last, SHOWN_NAMES).items():
            named = []
            for task in tasks:
                lane = timeline.tasks.get(task)
                state = lane.state_as_of(horizon, threshold) if lane is not None else None
                named.append((glyphs.get(state or model.WAITING, " "), timeline.display_name(task)))
            marks[line] = (named, count - len(named))
        return marks
