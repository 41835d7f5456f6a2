"""``loopviz compare``: two runs stacked on one time axis, each with how long it took and how long
its loop was blocked. Both timelines use the same scale, so the eye compares lengths directly."""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Footer, Static

from loopviz.compare import describe
from loopviz.model import Timeline
from loopviz.ui.painter import Painter, Theme
from loopviz.ui.timeline import TimelineView


class CompareApp(App):
    TITLE = "loopviz compare"
    DEFAULT_CSS = """
    Screen { background: #000000; }
    .run-title { height: 1; background: #1c1c1c; padding: 0 1; }
    .run { height: 1fr; }
    """
    BINDINGS = [Binding("q", "quit", "Quit")]

    def __init__(self, runs: list[tuple[str, Timeline]], theme: Theme) -> None:
        super().__init__()
        self.runs = runs
        self.lane_theme = theme

    def compose(self) -> ComposeResult:
        longest = max(timeline.end_t for _name, timeline in self.runs)
        for name, timeline in self.runs:
            with Vertical(classes="run"):
                colour = "#ff5f5f" if timeline.blocks else "#5fff5f"
                yield Static(Text(describe(name, timeline), style=f"bold {colour}"),
                             classes="run-title")  # fmt: skip
                view = TimelineView(timeline, Painter(self.lane_theme))
                view.fit_span_ns = longest  # one scale for both: lengths compare by eye
                yield view
        yield Footer()

    def on_mount(self) -> None:
        for view in self.query(TimelineView):
            view.refresh_model()
