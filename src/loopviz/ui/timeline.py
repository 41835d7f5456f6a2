"""The timeline widget: one Line-API ScrollView for every lane, however many tasks there are.

The time axis and the loop lane stay pinned at the top; task and thread lanes scroll beneath
them. The widget owns only the view (which stretch of time, which lanes, which one is selected);
the data comes from the model, and the look from ``painter``. Rendered rows are cached by
everything that changes them, so scrolling and redrawing an unchanged view cost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from loopviz.model import TaskLane, ThreadLane, Timeline
from loopviz.painter import Painter, Viewport
from loopviz.replay import Moment
from loopviz.viewstate import ViewState

PINNED_ROWS = 2  # axis and loop lane
MIN_SPAN_NS = 4_000_000_000  # a live run starts by showing 4 s, so early steps are not huge
MIN_NS_PER_CELL = 1_000  # 1 µs per cell at the closest zoom


@dataclass(frozen=True)
class LaneFilter:
    """Which task lanes to show, and in what order."""

    text: str = ""  # only lanes whose name contains this (any case)
    hide_finished: bool = False
    by_parent: bool = False  # children under their parent, indented


class TimelineView(ScrollView, can_focus=True):
    DEFAULT_CSS = """
    TimelineView {
        background: $lv-ink;
        scrollbar-size-horizontal: 0;
    }
    """

    BINDINGS = [
        Binding("up", "select(-1)", "Prev lane", show=False),
        Binding("down", "select(1)", "Next lane", show=False),
        # Replay keys live here so that ScrollView's own left/right/home/end never take them.
        Binding("left", "app.step(-1)", "Step back"),
        Binding("right", "app.step(1)", "Step on"),
        Binding("shift+left", "app.step_task(-1)", "Task step", show=False),
        Binding("shift+right", "app.step_task(1)", "Task step", show=False),
        Binding("left_square_bracket", "app.jump(-5)", "Back", show=False),
        Binding("right_square_bracket", "app.jump(5)", "Forward", show=False),
        Binding("home", "app.seek_edge(0)", "Start", show=False),
        Binding("end", "app.seek_edge(1)", "End", show=False),
        Binding("plus,equals", "zoom(0.5)", "Zoom in"),
        Binding("minus", "zoom(2)", "Zoom out"),
        Binding("0", "fit", "Fit all", show=False),
        Binding("pageup", "pan(-0.5)", "Pan left", show=False),
        Binding("pagedown", "pan(0.5)", "Pan right", show=False),
        Binding("f", "follow", "Follow now"),
    ]

    class Seek(Message):
        """The user clicked the time axis at ``t``."""

        def __init__(self, t: int) -> None:
            super().__init__()
            self.t = t

    class TaskSelected(Message):
        def __init__(self, task_id: int | None) -> None:
            super().__init__()
            self.task_id = task_id

    def __init__(self, timeline: Timeline, painter: Painter | None = None, **kwargs: Any
                 ) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self.timeline = timeline
        self.painter = painter or Painter()
        self.selected_task: int | None = None  # a task id: rows move as lanes come and go
        self.lane_filter = LaneFilter()
        self.following = True
        self.fit_all = True
        self._t_start = 0
        self._ns_per_cell = MIN_SPAN_NS / 80
        self._rows: list[tuple[TaskLane, int]] = []  # (lane, indent) in display order
        self._threads: list[ThreadLane] = []  # thread lanes begun by the horizon, in order
        self.fit_span_ns: int | None = None  # "fit all" to this span instead (compare: one scale)
        self.frozen_end: int | None = None  # a paused live run: fit to this, not the growing now
        self.moment: Moment | None = None  # what the app's panels show (see refresh_model)
        self.marks: tuple[int, ...] = ()  # moments marked with m, drawn on the axis
        self._cache: LRUCache[tuple[object, ...], Strip] = LRUCache(2048)

    # -- geometry -----------------------------------------------------------------------------

    @property
    def track_cells(self) -> int:
        return max(self.size.width - self.painter.gutter, 1)

    @property
    def lane_height(self) -> int:
        return self.painter.theme.lane_height

    @property
    def view_state(self) -> ViewState:
        """Where the viewer stands: the moment's, else the whole recording at its end."""
        return self._moment().view

    def lane_ids(self) -> list[int]:
        return [lane.id for lane, _indent in self._rows]

    def _visible_rows(self) -> list[tuple[TaskLane, int]]:
        timeline = self.timeline
        wanted = self.lane_filter
        horizon = self.view_state.horizon
        lanes = timeline.visible_tasks(horizon)
        if wanted.hide_finished:
            lanes = [lane for lane in lanes if lane.done_at is None or lane.done_at > horizon]
        if wanted.text:
            needle = wanted.text.lower()
            lanes = [lane for lane in lanes if needle in lane.label.lower()]
        if not wanted.by_parent:
            return [(lane, 0) for lane in lanes]
        shown = {lane.id for lane in lanes}
        children: dict[int | None, list[TaskLane]] = {}
        for lane in lanes:
            parent = lane.parent if lane.parent in shown else None
            children.setdefault(parent, []).append(lane)
        rows: list[tuple[TaskLane, int]] = []

        def visit(parent: int | None, depth: int) -> None:
            for lane in children.get(parent, []):
                rows.append((lane, depth))
                visit(lane.id, depth + 1)

        visit(None, 0)
        return rows

    def viewport(self) -> Viewport:
        cells = self.track_cells
        at = self.view_state
        now = at.now
        if self.fit_all:
            floor = MIN_SPAN_NS if at.live else 1
            end = max(now, self.timeline.end_t) if self.frozen_end is None else self.frozen_end
            span = max(end, floor, self.fit_span_ns or 0) * 1.02
            return Viewport(0, max(span / cells, MIN_NS_PER_CELL), cells)
        if self.following:
            self._t_start = int(now - self._ns_per_cell * cells * 0.98)
        return Viewport(self._t_start, self._ns_per_cell, cells)

    def refresh_model(self, moment: Moment | None = None) -> None:
        """The model changed or the cursor moved: work out the lanes again, resize, and redraw.
        ``moment`` is the one the app's panels show, at the instant they show: the rows are drawn
        as of it and lane icons read it (None: the one before; without any, the painter's
        whole recording at its end)."""
        if moment is not None:
            self.moment = moment
        self._rows = self._visible_rows()
        labels = [lane.label for lane, _indent in self._rows]
        horizon = self.view_state.horizon
        self._threads = [lane for lane in self.timeline.threads.values()
                         if lane.starts and lane.starts[0] <= horizon]  # fmt: skip
        labels += [lane.label for lane in self._threads]
        self.painter.gutter = self.painter.gutter_for(labels, self.size.width)
        threads = len(self._threads)
        rows = PINNED_ROWS + (len(self._rows) + threads) * self.lane_height
        # scrolled to the end, the top lane must start on its first row (two-row lanes)
        rows += (-(rows - self.size.height)) % self.lane_height if rows > self.size.height else 0
        self.virtual_size = Size(self.size.width, rows)
        ids = self.lane_ids()
        if self.selected_task is None and ids:
            self._select(ids[0])
        self.refresh()

    def set_filter(self, lane_filter: LaneFilter) -> None:
        self.lane_filter = lane_filter
        self.scroll_to(y=0, animate=False)
        self.refresh_model()

    # -- rendering ----------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        view = self.viewport()
        # Everything the row's look depends on: the view, the moment, the data, the selection.
        moment = (view, self.view_state, len(self.timeline.events), self.selected_task,
                  self.lane_filter, self.painter.theme.name, self.painter.gutter,
                  id(self.moment), self.marks)  # fmt: skip
        row = y if y < PINNED_ROWS else y + self._top_row()
        key = (row, *moment)
        strip = self._cache.get(key)
        if strip is None:
            # a real (empty) style for the padding: Textual's NO_COLOR filter reads every style
            strip = Strip(self._render_row(y, view)).crop_extend(0, self.size.width, Style())
            self._cache[key] = strip
        return strip

    def _render_row(self, y: int, view: Viewport) -> list[Segment]:
        timeline = self.timeline
        if y == 0:
            return self.painter.axis_row(timeline, view, self.marks, self._moment())
        if y == 1:
            return self.painter.loop_row(timeline, view, self._moment())
        row, sub_row = divmod(y - PINNED_ROWS + self._top_row(), self.lane_height)
        if row < len(self._rows):
            lane, indent = self._rows[row]
            selected = lane.id == self.selected_task
            return self.painter.task_row(timeline, lane, view, selected=selected, indent=indent,
                                         continuation=sub_row > 0,
                                         moment=self._moment())  # fmt: skip
        row -= len(self._rows)
        threads = self._threads  # those started by the horizon
        if row < len(threads):
            thread = threads[row]
            return self.painter.thread_row(timeline, thread, thread.label if sub_row == 0 else "",
                                           view, self._moment())  # fmt: skip
        return []

    def _moment(self) -> Moment:
        """The app's moment, else the painter's: the whole recording at its end."""
        return self.moment if self.moment is not None else self.painter.moment(self.timeline)

    def show_cursor(self) -> None:
        """Bring the replay cursor into view when it has left it (a zoomed view follows it):
        moving on past the right edge puts it near the left, moving back near the right."""
        t = self.view_state.cursor
        if t is None or self.fit_all:
            return
        view = self.viewport()
        width = view.t_end - view.t_start
        if view.t_start <= t < view.t_end - view.ns_per_cell:
            return
        self.following = False
        self._ns_per_cell = view.ns_per_cell
        ahead = t >= view.t_end - view.ns_per_cell
        self._t_start = max(int(t - width * (0.1 if ahead else 0.9)), 0)
        self.refresh()

    # -- actions ------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "follow":
            if not self.view_state.live:
                return False  # a replay has no "now" to follow
            return True if not (self.following or self.fit_all) else None
        return True

    def action_select(self, delta: int) -> None:
        ids = self.lane_ids()
        if not ids:
            return
        current = ids.index(self.selected_task) if self.selected_task in ids else -1
        row = min(max(current + delta, 0), len(ids) - 1)
        visible = (self.size.height - PINNED_ROWS) // self.lane_height
        top = self._top_row() // self.lane_height
        if row < top:
            self.scroll_to(y=row * self.lane_height, animate=False)
        elif row >= top + visible:
            self.scroll_to(y=(row - visible + 1) * self.lane_height, animate=False)
        self._select(ids[row])

    def select_task(self, task_id: int) -> None:
        """Select the lane of ``task_id`` (if shown) and scroll it into view."""
        ids = self.lane_ids()
        if task_id in ids:
            current = ids.index(self.selected_task) if self.selected_task in ids else -1
            self.action_select(ids.index(task_id) - current)

    def _top_row(self) -> int:
        """The first scrolled row shown: always a lane's first row (two-row lanes stay whole
        whatever the scroll, e.g. after the layout around the view changed its height)."""
        y = int(self.scroll_offset.y)
        return y - y % self.lane_height

    def reveal(self, task_id: int, also: tuple[int, ...] = ()) -> None:
        """Scroll the lanes so that this task's lane is in sight (the one holding the loop),
        with as many of ``also`` (the tasks it starves) as the view has room for."""
        ids = self.lane_ids()
        if task_id not in ids:
            return
        row = ids.index(task_id)
        wanted = {ids.index(t) for t in also if t in ids}
        visible = max((self.size.height - PINNED_ROWS) // self.lane_height, 1)
        top = self._top_row() // self.lane_height
        shown = range(top, top + visible)
        if row in shown and wanted <= set(shown):
            return
        last_top = max(len(ids) - visible, 0)
        candidates = range(max(row - visible + 1, 0), min(row, last_top) + 1)
        best = max(candidates, key=lambda t: (sum(t <= w < t + visible for w in wanted), -t),
                   default=top)  # fmt: skip
        y = min(best * self.lane_height, self.max_scroll_y)
        self.scroll_to(y=y - y % self.lane_height, animate=False, immediate=True)

    def _select(self, task_id: int) -> None:
        self.selected_task = task_id
        self.post_message(self.TaskSelected(task_id))
        self.refresh()

    def action_zoom(self, factor: float) -> None:
        view = self.viewport()
        at = self.view_state
        centre = (
            at.horizon
            if at.cursor is not None or self.following
            else view.t_start + (view.t_end - view.t_start) / 2
        )
        self.fit_all = False
        self.following = False  # zooming away from "now" stops following it; f resumes
        self._ns_per_cell = max(view.ns_per_cell * factor, MIN_NS_PER_CELL)
        self._t_start = max(int(centre - self._ns_per_cell * view.cells / 2), 0)
        self.refresh()

    def action_pan(self, screens: float) -> None:
        view = self.viewport()
        self.fit_all = False
        self.following = False
        self._ns_per_cell = view.ns_per_cell
        self._t_start = max(int(view.t_start + screens * view.cells * view.ns_per_cell), 0)
        self.refresh()

    def action_fit(self) -> None:
        self.fit_all = True
        self.following = True
        self.refresh()

    def action_follow(self) -> None:
        self.following = True
        self.refresh()

    def on_click(self, event: events.Click) -> None:
        gutter = self.painter.gutter
        if event.y == 0 and event.x >= gutter:
            view = self.viewport()
            cell = event.x - gutter + 0.5  # the middle of the clicked cell
            self.post_message(self.Seek(int(view.t_start + cell * view.ns_per_cell)))
            return
        if event.y < PINNED_ROWS:
            return
        row = (event.y - PINNED_ROWS + self._top_row()) // self.lane_height
        ids = self.lane_ids()
        if row < len(ids):
            self._select(ids[row])
