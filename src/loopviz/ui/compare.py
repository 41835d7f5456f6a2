"""``loopviz compare``: two runs stacked on one time axis, each with how long it took and how long
its loop was blocked. Both timelines use the same scale, so the eye compares lengths directly.

The axis stays shared whatever the keys do: zooming, panning and fitting act on both panes at
once, and one cursor (← → step through the events of either run, [ ] jump, Home End, a click on
an axis) stands at the same instant in both, drawn in each.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Footer, Static

from loopviz.compare import describe
from loopviz.model import Timeline
from loopviz.painter import Painter, Theme
from loopviz.replay import Moment, Replay, moment_at
from loopviz.ui.colours import ColouredApp, style
from loopviz.ui.timeline import TimelineView
from loopviz.units import clock
from loopviz.viewstate import ViewState


class CompareApp(ColouredApp[None]):
    TITLE = "loopviz compare"
    CSS = """
    Screen { background: $lv-ink; }
    .run-title { height: 1; background: $lv-bar; padding: 0 1; }
    .run { height: 1fr; }
    #compare-cursor { height: 1; background: $lv-bar; padding: 0 1; }
    """
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        # on both panes at once, before a pane's own keys (which would move only that pane)
        Binding("plus,equals", "zoom(0.5)", "Zoom in", priority=True),
        Binding("minus", "zoom(2)", "Zoom out", priority=True),
        Binding("0", "fit", "Fit", priority=True),
        Binding("pageup", "pan(-0.5)", "Pan left", show=False, priority=True),
        Binding("pagedown", "pan(0.5)", "Pan right", show=False, priority=True),
    ]

    def __init__(self, runs: list[tuple[str, Timeline]], theme: Theme) -> None:
        super().__init__()
        self.runs = runs
        self.lane_theme = theme
        self.replays = [Replay(timeline) for _name, timeline in runs]
        self.cursor = 0
        for replay in self.replays:
            replay.seek_time(0)

    def compose(self) -> ComposeResult:
        longest = max(timeline.end_t for _name, timeline in self.runs)
        for name, timeline in self.runs:
            with Vertical(classes="run"):
                colour = "$lv-error" if timeline.blocks else "$lv-good"
                yield Static(Text(describe(name, timeline), style=style(f"bold {colour}")),
                             classes="run-title")  # fmt: skip
                view = TimelineView(timeline, Painter(self.lane_theme))
                view.fit_span_ns = longest  # one scale for both: lengths compare by eye
                yield view
        yield Static(id="compare-cursor")
        yield Footer()

    def on_mount(self) -> None:
        self._show()

    @property
    def views(self) -> list[TimelineView]:
        return list(self.query(TimelineView))

    def _moment(self, replay: Replay) -> Moment:
        """A run at the shared cursor: past a shorter run's end, drawn there too."""
        timeline = replay.timeline
        at = ViewState.at_end(timeline).at(self.cursor)
        return moment_at(timeline, at, replay.index, replay.queues)

    def _show(self) -> None:
        views = self.views
        for view, replay in zip(views, self.replays, strict=True):
            view.refresh_model(self._moment(replay))
        gutter = max(view.painter.gutter for view in views)
        for view in views:
            view.painter.gutter = gutter  # one gutter: the two tracks line up cell for cell
        views[0].show_cursor()  # a zoomed view follows the cursor; the other pane with it
        self._sync(views[0])
        views[0].refresh()
        line = Text(f"cursor {clock(self.cursor)}  ", style=style("bold $lv-accent"))
        line.append("← → events of either run, [ ] jump, Home End, + - 0 zoom both",
                    style=style("$lv-dim"))  # fmt: skip
        self.query_one("#compare-cursor", Static).update(line)

    def _sync(self, source: TimelineView) -> None:
        """Give every pane the view of ``source``: one axis for both."""
        for view in self.views:
            if view is not source:
                view.fit_all, view.following = source.fit_all, source.following
                view._t_start, view._ns_per_cell = source._t_start, source._ns_per_cell
                view.refresh()

    def action_zoom(self, factor: float) -> None:
        first = self.views[0]
        first.action_zoom(factor)
        self._sync(first)

    def action_pan(self, screens: float) -> None:
        first = self.views[0]
        first.action_pan(screens)
        self._sync(first)

    def action_fit(self) -> None:
        first = self.views[0]
        first.action_fit()
        self._sync(first)

    # the pane's replay keys call these (app.step, app.jump, app.seek_edge...)

    def _seek(self, t: int) -> None:
        end = max(timeline.end_t for _name, timeline in self.runs)
        self.cursor = min(max(t, 0), end)
        for replay in self.replays:
            replay.seek_time(self.cursor)
        self._show()

    def action_step(self, delta: int) -> None:
        """To the next (or previous) event of either run."""
        found = []
        for _name, timeline in self.runs:
            times = timeline.times
            if delta > 0:
                i = bisect_right(times, self.cursor)
                if i < len(times):
                    found.append(times[i])
            else:
                i = bisect_left(times, self.cursor) - 1
                if i >= 0:
                    found.append(times[i])
        if found:
            self._seek(min(found) if delta > 0 else max(found))

    def action_step_task(self, delta: int) -> None:
        self.action_step(delta)

    def action_jump(self, cells: int) -> None:
        view = self.views[0].viewport()
        self._seek(self.cursor + int(cells * view.ns_per_cell))

    def action_seek_edge(self, end: int) -> None:
        self._seek(max(timeline.end_t for _name, timeline in self.runs) if end else 0)

    def on_timeline_view_seek(self, message: TimelineView.Seek) -> None:
        self._seek(message.t)
