"""Painting timeline rows as Rich segments: one place that decides how each state looks.

The Textual widget turns these rows into Strips; exports (SVG, PNG, text) print the same rows
through a Rich console. Keeping the painting here, apart from any widget, is what makes a picture
of a trace look exactly like the app.

A row is a gutter (state glyph and lane name) and a track of cells, each cell covering
``ns_per_cell`` nanoseconds from ``t_start``. Within a cell the most telling state wins
(blocked > running > ready > waiting), so a step far shorter than a cell still shows.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style

from loopviz import model
from loopviz.model import Lane, Span, TaskLane, Timeline
from loopviz.replay import Moment, block_headline, moment_at
from loopviz.units import duration
from loopviz.viewstate import ViewState

GUTTER = 18  # the narrowest gutter (state glyph and lane label); wider for longer labels
MAX_GUTTER = 32

__all__ = ["block_headline"]  # re-exported: the header's words live with the Moment
DENSE_LANE = 4  # spans per cell in view past which a lane is summarised cell by cell
DENSE_CELL = 16  # spans in one cell past which it is drawn as solid busy
_SOLID = frozenset({model.RUNNING, model.BLOCKED, model.BUSY})

# Within one cell the state with the highest priority is drawn.
_PRIORITY = {
    None: 0,
    model.IDLE: 1,
    model.WAITING: 2,
    model.READY: 3,
    model.BUSY: 4,
    model.RUNNING: 4,
    model.BLOCKED: 5,
}


@dataclass(frozen=True)
class Theme:
    name: str
    cells: dict[str | None, tuple[str, Style]]
    lane_glyphs: dict[str, str]
    label: Style
    band: Style
    band_label: Style
    axis: Style
    gutter: Style
    selected: Style
    outcomes: dict[str, tuple[str, Style]]
    cursor: Style
    tick: str = "╵"
    cursor_glyph: str = "▼"
    mark_glyph: str = "◆"  # a moment marked with m, on the time axis
    # Left-aligned eighth blocks for a cell a step only partly covers ("" = always whole cells),
    # and the fewest eighths drawn, so that a step far shorter than a cell still shows.
    partials: str = " ▏▎▍▌▋▊▉"
    min_eighths: int = 1
    lane_height: int = 1  # rows per lane: 2 in the classroom theme, for the back row
    thread: Style = Style.parse("bold #d75fff")
    thread_glyph: str = "⚙"
    ascii: bool = False  # every character on screen ASCII (the app adds a filter for the rest)
    arrow: str = "→"  # in labels: "run_asgi → read_item"


def _s(spec: str) -> Style:
    return Style.parse(spec)


DEFAULT_THEME = Theme(
    name="default",
    cells={
        None: (" ", _s("")),
        model.IDLE: ("·", _s("grey42")),
        model.WAITING: ("─", _s("#5f87ff")),
        model.READY: ("▒", _s("bold #ffaf00")),
        model.BUSY: ("█", _s("#00d75f")),
        model.RUNNING: ("█", _s("bold #00ff5f")),
        model.BLOCKED: ("█", _s("bold #ff3030")),
    },
    lane_glyphs={
        model.RUNNING: "▶",
        model.READY: "●",
        model.WAITING: "◷",
        model.BLOCKED: "■",
        model.DONE: "✔",
        model.BUSY: "▶",
        model.IDLE: "◷",
    },
    label=_s("#afd7ff"),
    band=_s("on #5f0000"),
    band_label=_s("bold #ffffff on #af0000"),
    axis=_s("#bcbcbc"),
    gutter=_s("bold #ffffff"),
    selected=_s("bold #000000 on #ffd700"),
    outcomes={
        "returned": ("✔", _s("bold #00ff5f")),
        "raised": ("✘", _s("bold #ff3030")),
        "cancelled": ("⊘", _s("bold #ffaf00")),
    },
    cursor=_s("bold #ffff00 on #5f5f00"),
)

# For a projector: brighter colours, heavier glyphs, whole cells, and every lane two rows high.
CLASSROOM_THEME = Theme(
    name="classroom",
    cells={
        None: (" ", _s("")),
        model.IDLE: ("·", _s("#8a8a8a")),
        model.WAITING: ("━", _s("bold #87afff")),
        model.READY: ("▓", _s("bold #ffd700")),
        model.BUSY: ("█", _s("bold #00ff00")),
        model.RUNNING: ("█", _s("bold #00ff00")),
        model.BLOCKED: ("█", _s("bold #ff0000")),
    },
    lane_glyphs=DEFAULT_THEME.lane_glyphs,
    label=_s("bold #ffffff"),
    band=_s("on #870000"),
    band_label=_s("bold #ffffff on #d70000"),
    axis=_s("bold #ffffff"),
    gutter=_s("bold #ffffff"),
    selected=_s("bold #000000 on #ffff00"),
    outcomes={
        "returned": ("✔", _s("bold #00ff00")),
        "raised": ("✘", _s("bold #ff0000")),
        "cancelled": ("⊘", _s("bold #ffd700")),
    },
    cursor=_s("bold #000000 on #ffff00"),
    partials="",
    min_eighths=8,
    lane_height=2,
    thread=_s("bold #ff5fff"),
)

# Every state keeps its own character, so nothing depends on colour (--ascii, and NO_COLOR).
ASCII_THEME = Theme(
    name="ascii",
    cells={
        None: (" ", _s("")),
        model.IDLE: (".", _s("grey42")),
        model.WAITING: ("-", _s("#5f87ff")),
        model.READY: ("+", _s("bold #ffaf00")),
        model.BUSY: ("=", _s("#00d75f")),
        model.RUNNING: ("#", _s("bold #00ff5f")),
        model.BLOCKED: ("X", _s("bold #ff3030")),
    },
    lane_glyphs={
        model.RUNNING: ">",
        model.READY: "+",
        model.WAITING: "-",
        model.BLOCKED: "X",
        model.DONE: "v",
        model.BUSY: ">",
        model.IDLE: "-",
    },
    label=DEFAULT_THEME.label,
    band=DEFAULT_THEME.band,
    band_label=DEFAULT_THEME.band_label,
    axis=DEFAULT_THEME.axis,
    gutter=DEFAULT_THEME.gutter,
    selected=_s("bold reverse"),
    outcomes={
        "returned": ("v", _s("bold #00ff5f")),
        "raised": ("x", _s("bold #ff3030")),
        "cancelled": ("c", _s("bold #ffaf00")),
    },
    cursor=_s("bold reverse"),
    tick="|",
    cursor_glyph="V",
    mark_glyph="M",
    thread_glyph="T",
    partials="",
    thread=_s("bold #d75fff"),
    ascii=True,
    arrow="->",
)

THEMES = {theme.name: theme for theme in (DEFAULT_THEME, CLASSROOM_THEME, ASCII_THEME)}


@dataclass(frozen=True)
class Viewport:
    """Which stretch of time the track shows, and how many cells it has."""

    t_start: int
    ns_per_cell: float
    cells: int

    @property
    def t_end(self) -> int:
        return int(self.t_start + self.ns_per_cell * self.cells)

    def cell_of(self, t: int) -> int:
        return math.floor((t - self.t_start) / self.ns_per_cell)

    def cell_range(self, start: int, end: int) -> tuple[int, int]:
        """Cells a [start, end) interval touches, at least one, clipped to the track."""
        first = self.cell_of(start)
        last = max(math.ceil((end - self.t_start) / self.ns_per_cell), first + 1)
        return max(first, 0), min(last, self.cells)


class Painter:
    def __init__(self, theme: Theme = DEFAULT_THEME, gutter: int = GUTTER) -> None:
        self.theme = theme
        self.gutter = gutter  # cells before the track: glyph, space, label
        self._moment: tuple[tuple[int, int, bool], Moment] | None = None
        self._cover: list[float] = []  # the last painted cells' cover (see _paint)

    def moment(self, timeline: Timeline) -> Moment:
        """The whole recording at its end, for a row asked for without a moment (a picture of a
        run): the same one the app would compute there, so icons read as the panels do."""
        key = (id(timeline), len(timeline.events), timeline.ended)
        if self._moment is None or self._moment[0] != key:
            at = ViewState.at_end(timeline)
            self._moment = (key, moment_at(timeline, at, len(timeline.events) - 1))
        return self._moment[1]

    def gutter_for(self, labels: Iterable[str], width: int) -> int:
        """A gutter wide enough for the longest label, up to a third of ``width``."""
        longest = max((len(self.lane_text(label)) for label in labels), default=0)
        return max(GUTTER, min(longest + 3, MAX_GUTTER, width // 3))

    def lane_text(self, label: str) -> str:
        return label.replace(" → ", f" {self.theme.arrow} ") if self.theme.ascii else label

    def fit(self, text: str, width: int) -> str:
        """``text`` in ``width`` cells; a label too long keeps its end (the ``#3`` or the
        arguments that tell it apart) and loses the middle."""
        if len(text) <= width:
            return text
        ellipsis = "~" if self.theme.ascii else "…"
        keep_end = min(width // 2, max(len(text) - text.rfind(" #"), 6) if " #" in text else 6)
        head = width - keep_end - len(ellipsis)
        return text[:head] + ellipsis + text[len(text) - keep_end :]
    # -- rows -------------------------------------------------------------------------------

    def axis_row(self, timeline: Timeline, view: Viewport, marks: Iterable[int] = (),
                 moment: Moment | None = None) -> list[Segment]:  # fmt: skip
        """The time axis: tick labels, the band's extent, marks (◆) and the cursor (▼), the
        tick labels giving way to the marks and the cursor rather than being cut by them."""
        at = (moment or self.moment(timeline)).view
        cells = [" "] * view.cells
        marked = {c for c in (view.cell_of(t) for t in marks) if 0 <= c < view.cells}
        step = _tick_step(view.ns_per_cell)
        first = math.ceil(view.t_start / step) * step
        cursor = view.cell_of(at.cursor) if at.cursor is not None else None
        t = first
        while t < view.t_end:
            c = view.cell_of(t)
            tick = self.theme.tick
            label = tick + duration(t) if t else tick + "0"
            clear = cursor is None or not c - 1 <= cursor <= c + len(label)  # the cursor's own
            clear = clear and not any(c - 1 <= m <= c + len(label) for m in marked)
            if c >= 0 and c + len(label) <= view.cells and clear:
                cells[c : c + len(label)] = label
            t += step
        track = self._with_band(timeline, at, view, [(ch, self.theme.axis) for ch in cells])
        for c in marked:
            track[c] = (self.theme.mark_glyph, self.theme.band_label)
        track = self._with_cursor(at, view, track, glyph=self.theme.cursor_glyph)
        return [Segment(" time".ljust(self.gutter), self.theme.gutter), *_merge(track)]

    def loop_row(self, timeline: Timeline, view: Viewport, moment: Moment | None = None
                 ) -> list[Segment]:  # fmt: skip
        moment = moment or self.moment(timeline)
        at = moment.view
        glyphs = self.theme.lane_glyphs
        by_status = {"blocked": model.BLOCKED, "running": model.RUNNING, "idle": model.WAITING,
                     "between steps": model.READY, "starting": model.READY}  # fmt: skip
        glyph = glyphs[by_status.get(moment.status, model.DONE)]
        codes, _spans = self._paint_lane(timeline.loop, view, at.horizon, None, model.BUSY)
        for block in timeline.blocks_until(at.horizon, at.live):
            end = block.end if block.end is not None else at.horizon
            first, last = view.cell_range(block.start, end)
            for c in range(first, last):
                codes[c] = model.BLOCKED
        track = self._cells(codes)
        self._label_blocks(timeline, at, view, track)
        return self._row(f"{glyph} event loop", self.theme.gutter, timeline, at, view, track)

    def task_row(
        self,
        timeline: Timeline,
        lane: TaskLane,
        view: Viewport,
        selected: bool = False,
        indent: int = 0,
        continuation: bool = False,
        moment: Moment | None = None,
    ) -> list[Segment]:
        """One lane. ``indent`` nests it under its parent (grouped view); a ``continuation`` row
        repeats the track without the name or the labels (the classroom theme's second row).
        The glyph before the name is the lane's state in ``moment``, as every panel reads it."""
        moment = moment or self.moment(timeline)
        now = moment.view.horizon
        threshold = timeline.block_threshold_ns
        codes, spans = self._paint_lane(lane, view, now, threshold, model.RUNNING)
        state = moment.lane_state(lane)
        finished = state == model.DONE
        track = self._cells(codes)
        if not continuation:
            self._write_labels(spans, view, codes, track, now)
        if finished and lane.done_at is not None:
            c = view.cell_of(lane.done_at)
            if 0 <= c < view.cells:
                track[c] = self.theme.outcomes.get(lane.outcome, ("■", self.theme.label))
        glyph = self.theme.outcomes[lane.outcome][0] if finished else (
            self.theme.lane_glyphs.get(state or model.READY, " ")
        )  # fmt: skip
        style = self.theme.selected if selected else self.theme.gutter
        room = self.gutter - 3 - 2 * indent
        title = "" if continuation else (
            f"{'  ' * indent}{glyph} {self.fit(self.lane_text(lane.label), room)}"
        )  # fmt: skip
        return self._row(title, style, timeline, moment.view, view, track)

    def thread_row(
        self, timeline: Timeline, lane: Lane, name: str, view: Viewport,
        moment: Moment | None = None,
    ) -> list[Segment]:  # fmt: skip
        """A thread's lane; ``name`` "" is a continuation row (no name, no labels)."""
        at = (moment or self.moment(timeline)).view
        codes, spans = self._paint_lane(lane, view, at.horizon, None, model.RUNNING)
        track = [
            (self.theme.cells[model.RUNNING][0], self.theme.thread) if code else (" ", _s(""))
            for code in codes
        ]
        if name:
            self._write_labels(spans, view, codes, track, at.horizon, state=model.RUNNING)
        title = f"{self.theme.thread_glyph} {self.fit(name, self.gutter - 3)}" if name else ""
        return self._row(title, self.theme.gutter, timeline, at, view, track)

    # -- helpers ----------------------------------------------------------------------------

    def _row(self, title: str, style: Style, timeline: Timeline, at: ViewState, view: Viewport,
             track: list[tuple[str, Style]]) -> list[Segment]:  # fmt: skip
        gutter = (title[: self.gutter - 1]).ljust(self.gutter)
        track = self._with_cursor(at, view, self._with_band(timeline, at, view, track))
        return [Segment(gutter, style), *_merge(track)]

    def _with_cursor(self, at: ViewState, view: Viewport, track: list[tuple[str, Style]],
                     glyph: str | None = None) -> list[tuple[str, Style]]:  # fmt: skip
        """Mark the replay cursor's cell in this row (``glyph`` replaces the character)."""
        if at.cursor is not None:
            c = view.cell_of(at.cursor)
            if 0 <= c < view.cells:
                ch, style = track[c]
                track[c] = (glyph or ch, style + self.theme.cursor)
        return track

    def _paint_lane(
        self, lane: Lane, view: Viewport, horizon: int, threshold: int | None, busy: str
    ) -> tuple[list[str | None], list[Span]]:
        """Cell states for one lane, and the spans drawn (for labels).

        A lane with far more spans in view than cells (the loop lane, a task stepping thousands
        of times, zoomed out) is summarised cell by cell instead: a cell holding more than
        DENSE_CELL spans is a blur of steps and is drawn ``busy``. So a frame costs what the
        screen shows, not what the trace holds."""
        first = max(bisect_right(lane.starts, view.t_start) - 1, 0)
        last = bisect_left(lane.starts, min(view.t_end, horizon + 1))
        if last - first <= DENSE_LANE * view.cells:
            spans = list(lane.spans_between(view.t_start, view.t_end, horizon, threshold))
            return self._paint(spans, view, horizon), spans
        codes: list[str | None] = [None] * view.cells
        cover = [0.0] * view.cells
        width = view.ns_per_cell
        for c in range(view.cells):
            start = int(view.t_start + c * width)
            if start > horizon:
                break
            end = int(start + width)
            i = bisect_right(lane.starts, start)
            j = bisect_left(lane.starts, end)
            if j - i > DENSE_CELL:
                codes[c], cover[c] = busy, 1.0
                continue
            cell_view = Viewport(start, width, 1)
            codes[c] = self._paint(lane.spans_between(start, end, horizon, threshold), cell_view,
                                   horizon)[0]  # fmt: skip
            cover[c] = self._cover[0]
        self._cover = cover
        return codes, []

    def _paint(self, spans: Iterable[Span], view: Viewport, now: int) -> list[str | None]:
        """The winning state of each cell; the solid states' cover of each cell goes to
        ``self._cover`` (a fraction of the cell), for the partial glyphs at their edges."""
        codes: list[str | None] = [None] * view.cells
        cover = [0.0] * view.cells
        width = view.ns_per_cell
        for span in spans:
            end = span.end if span.end is not None else now
            first, last = view.cell_range(span.start, end)
            priority = _PRIORITY[span.state]
            solid = span.state in _SOLID
            for c in range(first, last):
                if priority > _PRIORITY[codes[c]]:
                    codes[c] = span.state
                if solid:
                    cell_start = view.t_start + c * width
                    overlap = min(end, cell_start + width) - max(span.start, cell_start)
                    cover[c] += max(overlap, 0) / width
        self._cover = cover
        return codes

    def _cells(self, codes: list[str | None]) -> list[tuple[str, Style]]:
        theme = self.theme
        cells = theme.cells
        track = [cells[code] for code in codes]
        if theme.partials:
            for c, code in enumerate(codes):
                if code in _SOLID and self._cover[c] < 7 / 8:
                    eighths = max(round(self._cover[c] * 8), theme.min_eighths)
                    track[c] = (theme.partials[eighths], track[c][1])
        return track

    def _write_labels(self, spans: list[Span], view: Viewport, codes: list[str | None],
                      track: list[tuple[str, Style]], now: int, state: str = model.WAITING
                      ) -> None:  # fmt: skip
        """Print a span's label inside it where the span has room and nothing else covers it."""
        for span in spans:
            if span.state != state or not span.label:
                continue
            end = span.end if span.end is not None else now
            first, last = view.cell_range(span.start, end)
            start = first + 1
            label = span.label.replace(" ← ", " <- ") if self.theme.ascii else span.label
            for text in _label_forms(label):
                if last - start >= len(text) and all(
                    codes[c] == state for c in range(start, start + len(text))
                ):
                    for i, ch in enumerate(text):
                        track[start + i] = (ch, self.theme.label)
                    break

    def _with_band(self, timeline: Timeline, at: ViewState, view: Viewport,
                   track: list[tuple[str, Style]]) -> list[tuple[str, Style]]:  # fmt: skip
        for block in timeline.blocks_until(at.horizon, at.live):
            end = block.end if block.end is not None else at.horizon
            first, last = view.cell_range(block.start, end)
            for c in range(first, last):
                ch, style = track[c]
                track[c] = (ch, style + self.theme.band)
        return track

    def _label_blocks(self, timeline: Timeline, at: ViewState, view: Viewport,
                      track: list[tuple[str, Style]]) -> None:  # fmt: skip
        for block in timeline.blocks_until(at.horizon, at.live):
            end = block.end if block.end is not None else at.horizon
            first, last = view.cell_range(block.start, end)
            text = f" BLOCKED {duration(block.duration(at.horizon), 2)} "
            if last - first >= len(text):
                for i, ch in enumerate(text):
                    track[first + i] = (ch, self.theme.band_label)


def _label_forms(label: str) -> list[str]:
    """A wait's label, longest first, as far down as a word: "queue.put (full 3/3)", then
    "queue.put", then "put"; "sleep 0.5s", then "sleep"; "work() ← reporter", then "work()".
    The longest that fits is drawn,
    so a short wait still says what it waits on at the default zoom."""
    head = label.split(" ← ")[0].split(" <- ")[0]
    word = head.split(" (")[0].split(" ")[0]  # "sleep" of "sleep 0.5s"
    forms = [label, head, head.split(" (")[0], word, word.rsplit(".", 1)[-1]]
    unique = list(dict.fromkeys(form for form in forms if form))
    return [f" {form} " for form in unique]


def _tick_step(ns_per_cell: float, min_cells: int = 12) -> int:
    """The smallest 1-2-5 step in ns that keeps tick labels ``min_cells`` apart."""
    target = ns_per_cell * min_cells
    magnitude = 10 ** math.floor(math.log10(max(target, 1)))
    for factor in (1, 2, 5, 10):
        if magnitude * factor >= target:
            return int(magnitude * factor)
    return int(magnitude * 10)


def _merge(cells: list[tuple[str, Style]]) -> list[Segment]:
    """Join neighbouring cells of one style into one Segment."""
    segments: list[Segment] = []
    text, style = "", None
    for ch, cell_style in cells:
        if cell_style == style:
            text += ch
        else:
            if text:
                segments.append(Segment(text, style))
            text, style = ch, cell_style
    if text:
        segments.append(Segment(text, style))
    return segments
