"""The loopviz Textual app: a live (or finished) run as a timeline, with what a class needs to see.

Live, a timer polls the session about 30 times a second, feeds new events to the model and
redraws. The scenario runs in its own process, so its blocking calls never freeze this loop: the
clock keeps moving and the block band grows while the scenario is stuck.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Footer, RichLog, Static

from loopviz.model import Timeline
from loopviz.session import Session
from loopviz.ui.painter import block_headline
from loopviz.ui.timeline import TimelineView
from loopviz.units import clock, duration

REFRESH_HZ = 30


class LoopvizApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "loopviz"

    BINDINGS = [
        Binding("q", "quit_session", "Quit"),
    ]

    def __init__(self, session: Session | None = None, timeline: Timeline | None = None,
                 title: str = "", python: str = "") -> None:  # fmt: skip
        super().__init__()
        self.session = session
        self.timeline = session.timeline if session is not None else timeline
        self.run_title = title or (session.target.script.name if session else "")
        self.python = python
        self.selected_task: int | None = None
        self._outputs_shown = 0
        self._announced_end = False
        self._quitting = False

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        yield Static(id="banner")
        with Horizontal(id="middle"):
            yield TimelineView(self.timeline, id="timeline")
            yield Static(id="task-panel")
        yield RichLog(id="output", markup=False, wrap=False, max_lines=5000)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(TimelineView).focus()
        if self.session is not None:
            if self.session.process is None:
                self.session.start()
            self.set_interval(1 / REFRESH_HZ, self._tick)
        self._redraw()

    # -- live updates -----------------------------------------------------------------------

    def _tick(self) -> None:
        session = self.session
        if session is None:
            return
        session.poll()
        self.python = self.python or session.header()["python"]
        self._redraw()
        if session.finished and self._quitting:
            self.exit()
        elif session.finished and not self._announced_end:
            self._announced_end = True
            self.query_one(TimelineView).action_fit()
            saved = f" Trace saved to {session.trace_path}." if session.trace_path else ""
            self.notify(f"The scenario finished (exit status {session.exit_code}).{saved}",
                        title="Finished", timeout=8)  # fmt: skip

    def _redraw(self) -> None:
        self.query_one(TimelineView).refresh_model()
        self._update_status()
        self._update_panel()
        self._append_output()

    def _update_status(self) -> None:
        timeline = self.timeline
        status = self.query_one("#status", Static)
        banner = self.query_one("#banner", Static)
        line = Text()
        line.append("loopviz ", style="bold #ffd700")
        line.append(f" {self.run_title} ", style="bold")
        line.append(f" Python {self.python or '?'} ", style="#bcbcbc")
        line.append(f" {timeline.loop_impl or 'no loop yet'} ", style="#bcbcbc")
        line.append(f" ⏱ {clock(timeline.now)} ", style="bold #ffffff")
        loop_status = timeline.loop_status()
        block = timeline.current_block()
        if block is not None:
            line.append(f" {block_headline(timeline, block)} ", style="bold #ffffff on #d70000")
        else:
            colour = {"running": "#00ff5f", "idle": "#5f87ff"}.get(loop_status, "#ffd700")
            line.append(f" {loop_status} ", style=f"bold {colour}")
        status.update(line)
        if block is not None:
            starved = timeline.starved(block)
            text = Text(f"THE EVENT LOOP IS {block_headline(timeline, block)}\n", style="bold")
            who = timeline.display_name(block.task)
            text.append(f"{who} holds the loop; no other task can run")
            if starved:
                names = ", ".join(lane.label for lane in starved[:6])
                text.append(f" · starved: {names}")
            banner.update(text)
            banner.add_class("visible")
        else:
            banner.remove_class("visible")

    def _update_panel(self) -> None:
        panel = self.query_one("#task-panel", Static)
        lane = self.timeline.tasks.get(self.selected_task) if self.selected_task else None
        if lane is None:
            panel.update(Text("No task selected.\n↑/↓ or click a lane.", style="#bcbcbc"))
            return
        timeline = self.timeline
        state = lane.state_now(timeline.now, timeline.block_threshold_ns) or "?"
        text = Text()
        text.append(f"{lane.label}\n", style="bold #ffd700")
        rows = [
            ("name", lane.name),
            ("coroutine", lane.coro),
            ("spawned", lane.where.rsplit("/", 1)[-1] or "?"),
            ("parent", timeline.display_name(lane.parent) if lane.parent else "none"),
            ("state", lane.outcome if lane.done_at is not None else state),
        ]
        if lane.waiting_on and lane.done_at is None:
            rows.append(("waiting on", lane.waiting_on.get("label", "")))
        if lane.detail and lane.done_at is not None:
            rows.append(("result", lane.detail))
        rows += [
            ("steps", str(lane.steps)),
            ("busy", duration(lane.busy_ns)),
            ("longest", duration(lane.longest_step_ns)),
        ]
        for key, value in rows:
            text.append(f"{key:>10} ", style="#8a8a8a")
            text.append(f"{value}\n")
        panel.update(text)

    def _append_output(self) -> None:
        log = self.query_one("#output", RichLog)
        outputs = self.timeline.outputs
        for output in outputs[self._outputs_shown :]:
            style = "#ff8787" if output.stream == "stderr" else "#e4e4e4"
            for line in output.text.splitlines():
                text = Text(f"{clock(output.t):>10}  ", style="#8a8a8a")
                text.append(line, style=style)
                log.write(text)
        self._outputs_shown = len(outputs)

    # -- events and actions -----------------------------------------------------------------

    def on_timeline_view_task_selected(self, message: TimelineView.TaskSelected) -> None:
        self.selected_task = message.task_id
        self._update_panel()

    def action_quit_session(self) -> None:
        if self.session is None or self.session.finished:
            self.exit()
            return
        self.notify("Stopping the scenario; the trace is kept.", title="Quitting")
        self._quitting = True
        # Stopping may take a few seconds (SIGINT, then SIGTERM): wait in a thread. The tick keeps
        # draining the streams and exits once the session has finished.
        self.run_worker(self.session.stop, thread=True, exclusive=True)
