"""The loopviz Textual app: a run as a timeline, live while it records, then as a replay.

Live, a timer polls the session 60 times a second, feeds new events to the model and redraws
(30 times a second when nothing new came: the clock still moves). The scenario runs in its own
process, so its blocking calls never freeze this loop: the clock keeps moving and the block band
grows while the scenario is stuck.

In a replay (a trace file, a finished run, or a live run paused with space) a cursor moves through
the events: every lane shows its state at the cursor, and panels say what the event means and what
the loop holds at that instant. Nothing shown then depends on the wall clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import threading
from dataclasses import replace
from pathlib import Path

from rich.text import Text
from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Input, RichLog, Static

from loopviz import model
from loopviz.catalogue import Scenario
from loopviz.model import Timeline
from loopviz.painter import DEFAULT_THEME, Painter, Theme
from loopviz.replay import Bookmarks, Moment, Queues, Replay, explain_event, moment_at
from loopviz.session import Session
from loopviz.sourcecode import next_event_at
from loopviz.trace import TraceLoader
from loopviz.ui.ascii import AsciiFilter
from loopviz.ui.awaittree import AwaitTreePanel
from loopviz.ui.help import HelpScreen
from loopviz.ui.source import CodeColumn, SourcePane
from loopviz.ui.timeline import TimelineView
from loopviz.units import clock, duration

REFRESH_HZ = 30  # replay playback, and the live clock when no events arrive
LIVE_POLL_HZ = 60  # live: new events reach the screen within one of these frames
OUTPUT_LINES = 300  # lines of output kept on screen in a replay
EVENT_LOG_LINES = 300  # events kept in the event log pane
LOAD_BATCH = 50_000  # events taken in between two frames while a big trace loads
MIN_SIZE = (60, 16)  # below this the layout cannot show a lane; say so instead
END_GRACE = 3.0  # seconds to quit in good order after SIGTERM (or losing the server) before exiting


class LoopvizApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "loopviz"

    BINDINGS = [
        Binding("q", "quit_session", "Quit"),
        Binding("ctrl+c", "quit_session", "Quit", show=False, priority=True),
        Binding("question_mark", "help", "Help"),
        Binding("k", "key_moment", "Key moment"),
        Binding("w", "toggle_watch", "Watch for", show=False),
        Binding("slash", "filter", "Filter", show=False),
        Binding("h", "toggle_finished", "Hide done", show=False),
        Binding("g", "toggle_group", "Group", show=False),
        Binding("e", "toggle_log", "Events/Output", show=False),
        Binding("space", "play_pause", "Play/Pause"),
        Binding("b", "next_block", "Next block"),
        Binding("m", "mark", "Mark"),
        Binding("n", "jump_mark(1)", "Next mark", show=False),
        Binding("N", "jump_mark(-1)", "Prev mark", show=False),
        Binding("less_than_sign", "speed(0)", "Slower", show=False),
        Binding("greater_than_sign", "speed(1)", "Faster", show=False),
        Binding("l", "go_live", "Live"),
        Binding("c", "toggle_code", "Code", show=False),
    ]

    @classmethod
    def key_bindings(cls) -> list[Binding]:
        """Every key of the app, its own and the timeline's: the help and the README list these."""
        return [b for b in (*cls.BINDINGS, *TimelineView.BINDINGS) if isinstance(b, Binding)]

    def __init__(
        self,
        session: Session | None = None,
        timeline: Timeline | None = None,
        title: str = "",
        python: str = "",
        trace_path: Path | None = None,
        truncated: bool = False,
        theme: Theme = DEFAULT_THEME,
        loader: TraceLoader | None = None,
        scenario: Scenario | None = None,
    ) -> None:
        super().__init__()
        self.lane_theme = theme
        self.scenario = scenario  # a catalogue scenario: its "Watch for" is shown (lesson mode)
        self._ascii_filter = AsciiFilter() if theme.ascii else None
        self.session = session
        self.loader = loader  # a big trace still loading: the rest comes in while it is shown
        if loader is not None:
            timeline = loader.timeline
        self.timeline = session.timeline if session is not None else timeline
        self.run_title = title or (session.target.name if session else "")
        self.python = python
        self.trace_path = trace_path or (session.trace_path if session else None)
        self.truncated = truncated
        self.selected_task: int | None = None
        self.replay: Replay | None = None if session is not None else Replay(self.timeline)
        self.bookmarks = Bookmarks(self.trace_path)
        self.playing = False
        self._outputs_shown = 0
        self._announced_end = False
        self._quitting = False
        self._bindings_mode: tuple | None = None
        self._warned_trace = False
        self._warned_full = False
        self._events_shown = 0
        self._shown: dict[str, Text | str] = {}  # what each Static shows (see _show)
        self._quiet_ticks = 0  # live polls in a row that brought no event
        self._live_queues = Queues(self.timeline)
        self.moment: Moment | None = None  # what every panel shows, computed once per frame
        self._revealed: int | None = None  # the block whose holder lane was last brought in sight
        self._notice_timer = None
        self.notices: list[str] = []  # every notice shown, in order

    def notify(self, message: str, *, title: str = "", severity: str = "information",
               timeout: float | None = None, markup: bool = True) -> None:  # fmt: skip
        """Notices go at the foot of the side panel, never over what the class must read (the
        explanation, the banner, the output), as Textual's toasts would."""
        self.notices.append(message)
        notice = self.query("#notice")
        if not notice:
            return
        colour = {"error": "#ff5f5f", "warning": "#ffaf00"}.get(severity, "#ffd700")
        text = Text(f"{title}\n" if title else "", style=f"bold {colour}")
        text.append(message, style="#e4e4e4")
        widget = notice.first()
        widget.update(text)
        widget.add_class("visible")
        if self._notice_timer is not None:
            self._notice_timer.stop()
        self._notice_timer = self.set_timer(timeout or 4, lambda: widget.remove_class("visible"))

    def get_line_filters(self):
        """--ascii: after our own ASCII glyphs, a last filter so that Textual's borders,
        scrollbars and footer are ASCII too: every character on screen is."""
        filters = list(super().get_line_filters())
        if self._ascii_filter is not None:
            filters.append(self._ascii_filter)
        return filters

    def compose(self) -> ComposeResult:
        yield Static(id="too-small")
        yield Static(id="status")
        yield Static(id="banner")
        yield Static(id="watch")
        with Horizontal(id="middle"):
            yield TimelineView(self.timeline, Painter(self.lane_theme), id="timeline")
            with Vertical(id="side"):
                yield Static(id="task-panel")
                yield Static(id="loop-panel")
                yield Static(id="notice")
            yield CodeColumn(self.timeline, self.lane_theme, id="code")
        yield Static(id="explain")
        yield RichLog(id="output", markup=False, wrap=False, max_lines=5000)
        yield RichLog(id="events", markup=False, wrap=False, max_lines=5000)
        yield Input(placeholder="show lanes whose name contains… (Enter keeps it, Esc clears)",
                    id="filter")  # fmt: skip
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(TimelineView).focus()
        self.query_one(TimelineView).marks = tuple(self.bookmarks.times)
        self._end_for_sure()
        if self.lane_theme.ascii:
            self.screen.add_class("-ascii")
        if self.scenario is not None and self.scenario.watch:
            watch = Text()
            watch.append(" WATCH FOR ", style="bold #000000 on #ffd700")
            watch.append(" (w hides) ", style="#bcbcbc")
            watch.append(self.scenario.watch, style="bold")
            self.query_one("#watch", Static).update(watch)
            self.query_one("#watch").add_class("visible")
        if self.session is not None:
            # Start the scenario once the first frame is up: its first events then reach the
            # screen at once, instead of waiting for the app to finish starting.
            self.call_after_refresh(self._start_live)
        elif self.loader is not None and not self.loader.done:
            # after the first frame: what is loaded already is on screen while the rest comes
            self.call_after_refresh(self.run_worker, self._load_rest(), exclusive=True)
        else:
            self._opened()
        self._play_timer = self.set_interval(1 / REFRESH_HZ, self._play_tick, pause=True)
        self._redraw()

    def _end_for_sure(self) -> None:
        """SIGTERM, or the server of a web page going away, always ends this process: first in
        good order (the script stopped, the trace closed), and if the loop cannot do that within
        END_GRACE seconds (stuck writing to a page nobody reads), at once, killing the script.
        Textual's own SIGTERM handler needs a free loop, which is what might be missing."""
        if self.is_headless or os.name != "posix":
            return
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()

        def end(*_args) -> None:
            loop.call_soon_threadsafe(self.action_quit_session)
            timer = threading.Timer(END_GRACE, self._end_now)
            timer.daemon = True
            timer.start()

        with contextlib.suppress(ValueError, RuntimeError):
            loop.remove_signal_handler(signal.SIGTERM)
        signal.signal(signal.SIGTERM, end)
        if os.environ.get("TEXTUAL_DRIVER"):  # served: the server is our parent
            parent = os.getppid()

            def watch_parent() -> None:
                while os.getppid() == parent:
                    threading.Event().wait(1.0)
                end()

            threading.Thread(target=watch_parent, daemon=True, name="loopviz-lifeline").start()

    def _end_now(self) -> None:
        """The last resort of _end_for_sure: the script's process group killed, then this one."""
        process = self.session.process if self.session is not None else None
        if process is not None and process.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(process.pid, signal.SIGKILL)
        os._exit(1)

    async def _load_rest(self) -> None:
        """Load a big trace a batch at a time, showing it as it grows (the cursor follows)."""
        while self.loader.load(LOAD_BATCH):
            self.replay.seek_index(len(self.timeline.events) - 1)
            self._redraw()
            await asyncio.sleep(1 / REFRESH_HZ)  # let the frame be drawn and keys be read
        self._opened()
        self.query_one(TimelineView).action_fit()
        self._redraw()

    def _opened(self) -> None:
        """The whole trace is in: show its end, and say if it is not whole."""
        self.replay.seek_index(len(self.timeline.events) - 1)
        loader = self.loader
        if loader is not None:
            self.truncated = loader.trace.truncated
        if loader is not None and loader.error:
            self.notify(f"{loader.error} It replays up to that line.", title="Damaged trace",
                        severity="error", timeout=15)  # fmt: skip
        elif self.truncated:
            self.notify(
                "This trace ends mid-run (the recording was cut short): it replays up to the cut.",
                title="Truncated trace",
                severity="warning",
                timeout=10,
            )

    def on_resize(self, event: events.Resize) -> None:
        width, height = event.size
        small = width < MIN_SIZE[0] or height < MIN_SIZE[1]
        self.screen.set_class(small, "-too-small")
        self.screen.set_class(width < 100 or height < 30, "-compact")
        self.query_one(CodeColumn).fit(width)
        if small:
            self.query_one("#too-small", Static).update(
                f"The terminal is {width}×{height}: loopviz needs at least "
                f"{MIN_SIZE[0]}×{MIN_SIZE[1]}. Enlarge the window or make the font smaller. "
                "The recording goes on; q quits."
            )

    # -- live updates -----------------------------------------------------------------------

    def _start_live(self) -> None:
        # What the app made to start up lives as long as it does: keep the cyclic GC from
        # walking it on every full collection (pauses of 20-60 ms that held up live frames).
        gc.freeze()
        if self.session.process is None:
            self.session.start()
        self._live_timer = self.set_interval(1 / LIVE_POLL_HZ, self._tick)

    def _tick(self) -> None:
        session = self.session
        arrived = session.poll()
        self._quiet_ticks = 0 if arrived else self._quiet_ticks + 1
        if self._quiet_ticks % (LIVE_POLL_HZ // REFRESH_HZ) == 1 and not session.finished:
            return  # nothing new: the clock alone moves on at REFRESH_HZ, which costs half
        if session.model_full and not self._warned_full:
            self._warned_full = True
            self.notify(f"The lanes show the first {session.max_model_events:,} events; from "
                        "here on the view shows blocks only. Every event still goes to the trace "
                        "file.", title="View full", severity="warning", timeout=15)  # fmt: skip
        if session.trace_error and not self._warned_trace:
            self._warned_trace = True
            self.notify(f"{session.trace_error}. Recording goes on in memory only.",
                        title="Trace not saved", severity="error", timeout=15)  # fmt: skip
        self.python = self.python or session.header()["python"]
        if session.finished and self._quitting:
            self.exit()
            return
        if session.finished and not self._announced_end:
            self._announced_end = True
            self._live_timer.stop()  # nothing more will come: redraw only when the user acts
            self.query_one(TimelineView).frozen_end = None
            self.query_one(TimelineView).action_fit()
            if self.replay is None:
                self._enter_replay()
            self.notify(f"The scenario finished (exit status {session.exit_code}). Step through "
                        "it with ← →.", title="Finished", timeout=6)  # fmt: skip
        self._redraw()

    def _redraw(self) -> None:
        views = self.query(TimelineView)
        if not views:
            return  # a timer firing while the app shuts down: nothing left to draw on
        self.moment = moment = self._compute_moment()
        view = views.first()
        view.refresh_model(moment)
        block = moment.block
        if block is not None and block.task is not None and block.start != self._revealed:
            self._revealed = block.start  # once per block: then the user scrolls as they like
            starved = tuple(lane.id for lane in moment.starved)
            self.call_after_refresh(view.reveal, block.task, starved)  # after the banner's layout
        self._update_status()
        self._update_task_panel()
        self._update_replay_panels()
        self._update_output()
        self._update_event_log()
        self._update_code()
        mode = (self.replay is None, self.playing, self.timeline.live)
        if mode != self._bindings_mode:  # the footer rebuilds itself: only when keys change
            self._bindings_mode = mode
            self.refresh_bindings()

    def _compute_moment(self) -> Moment:
        """The one state at the cursor (live: now) that the header, banner, explanation, loop
        panel and lane icons all show."""
        if self.replay is not None:
            return self.replay.moment()
        return moment_at(self.timeline, len(self.timeline.events) - 1, self._live_queues)

    def _update_status(self) -> None:
        timeline = self.timeline
        moment = self.moment
        line = Text()
        line.append("loopviz ", style="bold #ffd700")
        line.append(f" {self.run_title} ", style="bold")
        if not self.screen.has_class("-compact"):  # at 80 columns the block's words come first
            line.append(f" Py {self.python or '?'} ", style="#bcbcbc")
            line.append(f" {timeline.loop_impl or 'no loop yet'} ", style="#bcbcbc")
        if self.replay is not None:
            mode = "PLAYING" if self.playing else "REPLAY"
            line.append(f" {mode} {self.replay.speed:g}x ", style="bold #000000 on #ffd700")
            total = len(timeline.events)
            line.append(f" {self.replay.index + 1}/{total} ", style="#bcbcbc")
        if self.loader is not None and not self.loader.done:
            line.append(f" LOADING {len(timeline.events):,} events ",
                        style="bold #000000 on #87afff")  # fmt: skip
        line.append(f" t = {clock(moment.t)} ", style="bold #ffffff")
        lanes = len(self.query_one(TimelineView).lane_ids())
        line.append(f" {lanes:,} task{'s' if lanes != 1 else ''} ", style="#bcbcbc")
        if self.truncated:
            line.append(" TRUNCATED ", style="bold #000000 on #ff8700")
        block = moment.block
        if block is not None:  # the banner under it gives the culprit: here only the length
            line.append(f" {moment.headline.split(':')[0]} ", style="bold #ffffff on #d70000")
        else:
            status = moment.status
            if status == "finished" and timeline.exit_code:
                failure = f" ({timeline.error})" if timeline.error else ""
                line.append(f" ended with exit status {timeline.exit_code}{failure} ",
                            style="bold #ffffff on #d70000")  # fmt: skip
            else:
                colour = {"running": "#00ff5f", "idle": "#5f87ff"}.get(status, "#ffd700")
                line.append(f" {status} ", style=f"bold {colour}")
        self._show("#status", line)
        banner = self.query_one("#banner", Static)
        if block is not None:
            text = Text(f"THE EVENT LOOP IS {moment.headline}\n", style="bold")
            text.append(f"{moment.holder} holds the loop; no other task can run")
            starved = moment.starved_labels
            if starved:
                more = f" and {len(starved) - 6} more" if len(starved) > 6 else ""
                text.append(" | starved: " + ", ".join(starved[:6]) + more)
            self._show("#banner", text)
            banner.add_class("visible")
        else:
            banner.remove_class("visible")

    def _show(self, selector: str, content: Text | str) -> None:
        """Update a Static only when what it shows has changed: each update lays the screen out
        again, and most panels stay the same from one live frame to the next."""
        if self._shown.get(selector) != content:
            self._shown[selector] = content
            self.query_one(selector, Static).update(content)

    def _update_task_panel(self) -> None:
        timeline = self.timeline
        lane = timeline.tasks.get(self.selected_task) if self.selected_task else None
        if lane is None:
            self._show(
                "#task-panel", Text("No task selected.\n↑/↓ or click a lane.", style="#bcbcbc")
            )
            return
        horizon = timeline.horizon
        moment = self.moment or self._compute_moment()
        state = moment.lane_state(lane)
        done = state == model.DONE
        state = lane.outcome if done else state
        text = Text()
        text.append(f"{lane.label}\n", style="bold #ffd700")
        rows = [("state", state or "not yet created")]
        span = lane.span_at(horizon)
        if span is not None and not done and span.state in (model.WAITING, model.READY):
            rows.append(("waiting on", span.label))
        if done and lane.detail:
            rows.append(("result", lane.detail))
        rows += [
            ("name", lane.name),
            ("coroutine", lane.coro),
            ("spawned", lane.where.rsplit("/", 1)[-1] or "?"),
            ("parent", timeline.display_name(lane.parent) if lane.parent else "none"),
            *([("arguments", lane.args)] if lane.args else []),
        ]
        waited, ready = (
            lane.time_in((model.WAITING,), horizon),
            lane.time_in((model.READY,), horizon),
        )
        rows += [
            ("steps", str(lane.steps)),
            ("busy", duration(lane.busy_ns)),
            ("waiting", duration(waited)),
            ("ready", duration(ready)),
            ("longest", duration(lane.longest_step_ns)),
        ]
        for key, value in rows:
            text.append(f"{key:>10} ", style="#8a8a8a")
            text.append(f"{value}\n")
        self._show("#task-panel", text)

    def _update_replay_panels(self) -> None:
        moment = self.moment
        text = Text()
        text.append("THE LOOP NOW\n", style="bold #ffd700")
        text.append(f"{moment.doing}\n", style="bold")
        text.append("ready queue: ", style="#8a8a8a")
        text.append((", ".join(moment.ready) or "empty") + "\n", style="#ffaf00")
        text.append("timers: ", style="#8a8a8a")
        text.append(", ".join(moment.timers[:4]) or "none", style="#87afff")
        unseen = sum(int(e.get("count") or 0) for e in self.timeline.unseen)
        if self.timeline.unseen:
            detail = self.timeline.unseen[-1].get("detail", "")
            text.append(f"\nNot shown: {unseen or 'some'} task(s) the recorder could not see "
                        f"({detail})", style="#ff8700")  # fmt: skip
        self._show("#loop-panel", text)
        if self.replay is None:
            live = "LIVE · space pauses to step through what is recorded so far"
            self._show("#explain", Text(live, style="#8a8a8a"))
            return
        line = Text(f"{clock(moment.t)}  ", style="bold #ffd700")
        line.append(moment.explanation, style="bold #ffffff")
        key = self.replay.key_moment_here()
        if key is not None:
            line.append(f"\nKEY MOMENT ({key.kind}). {key.why}", style="bold #000000 on #ffd700")
        elif self.session is not None and self.session.finished and self.trace_path:
            line.append(f"\ntrace saved in {self.trace_path}", style="#8a8a8a")
        self._show("#explain", line)

    def _update_output(self) -> None:
        log = self.query_one("#output", RichLog)
        timeline = self.timeline
        if self.replay is None:
            outputs = timeline.outputs
            for output in outputs[self._outputs_shown :]:
                self._write_output(log, output, latest=False)
            self._outputs_shown = len(outputs)
            return
        shown = timeline.outputs_until(timeline.horizon)
        if len(shown) == self._outputs_shown and log.lines:
            return
        log.clear()
        recent = shown[-OUTPUT_LINES:]
        for i, output in enumerate(recent):
            self._write_output(log, output, latest=i == len(recent) - 1)
        self._outputs_shown = len(shown)

    def _update_event_log(self) -> None:
        """The event log: every event in plain words; in a replay, those up to the cursor."""
        log = self.query_one("#events", RichLog)
        if not log.display:
            return
        timeline = self.timeline
        end = self.replay.index + 1 if self.replay is not None else len(timeline.events)
        if end == self._events_shown:
            return
        if end < self._events_shown or self._events_shown < end - EVENT_LOG_LINES:
            log.clear()
            self._events_shown = max(end - EVENT_LOG_LINES, 0)
        for i in range(self._events_shown, end):
            event = timeline.events[i]
            latest = self.replay is not None and i == end - 1
            text = Text(f"{clock(event['t']):>10}  ", style="#8a8a8a")
            text.append(f"{event['ev']:<12} ", style="bold #87afff")
            words = explain_event(timeline, event)
            text.append(words, style="bold #000000 on #ffd700" if latest else "#e4e4e4")
            log.write(text)
        self._events_shown = end

    @staticmethod
    def _write_output(log: RichLog, output: model.Output, latest: bool) -> None:
        style = "#ff8787" if output.stream == "stderr" else "#e4e4e4"
        if latest:
            style = "bold #000000 on #ffd700"
        for line in output.text.splitlines():
            text = Text(f"{clock(output.t):>10}  ", style="#8a8a8a")
            text.append(line, style=style)
            log.write(text)

    # -- replay -------------------------------------------------------------------------------

    def _enter_replay(self) -> None:
        self.replay = Replay(self.timeline)
        self.replay.seek_index(len(self.timeline.events) - 1)
        self._outputs_shown = -1
        view = self.query_one(TimelineView)
        if self.session is not None and not self.session.finished:
            view.frozen_end = max(self.timeline.now, self.timeline.end_t)  # no rescaling
        else:
            view.frozen_end = None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        replay_only = {"step", "step_task", "jump", "seek_edge", "next_block", "mark",
                       "jump_mark", "speed"}  # fmt: skip
        if action in replay_only and self.replay is None:
            return None  # shown dimmed: space pauses the live view and makes them work
        if action == "go_live":
            if self.session is None or self.session.finished:
                return False  # nothing live to go back to: not shown at all
            return True if self.replay is not None else None
        return True

    def refresh_screen(self) -> None:
        """Redraw everything from the model (after moving the cursor from outside)."""
        self._redraw()

    def _moved(self) -> None:
        self.query_one(TimelineView).show_cursor()  # a zoomed view follows the cursor
        self._redraw()

    def action_step(self, delta: int) -> None:
        self.replay.step(delta)
        self._moved()

    def action_step_task(self, delta: int) -> None:
        if self.selected_task is None or not self.replay.step_task(self.selected_task, delta):
            self.bell()
        self._moved()

    def action_jump(self, cells: int) -> None:
        view = self.query_one(TimelineView).viewport()
        self.replay.seek_time(self.replay.time + int(cells * view.ns_per_cell))
        self._moved()

    def action_seek_edge(self, end: int) -> None:
        self.replay.seek_index(len(self.timeline.events) - 1 if end else 0)
        self._moved()

    def action_next_block(self) -> None:
        if not self.replay.next_block():
            self.notify("No block after the cursor.", timeout=3)
        self._moved()

    def action_play_pause(self) -> None:
        if self.replay is None:  # live: pause here, and step through what is recorded so far
            self._enter_replay()
        elif self.playing:
            self.playing = False
            self._play_timer.pause()
        else:
            if self.replay.time >= self.timeline.end_t:
                self.replay.seek_index(0)
            self.playing = True
            self._play_timer.resume()
        self._redraw()

    def _play_tick(self) -> None:
        if self.replay is None or not self.replay.play_tick(1 / REFRESH_HZ):
            self.playing = False
            self._play_timer.pause()
        self._moved()

    def action_key_moment(self) -> None:
        """Lesson mode: the next key moment (a block, the first starvation, an exception, the
        end), with why it matters under the explanation."""
        if self.replay is None:
            self._enter_replay()
        if self.replay.next_key_moment() is None:
            self.notify("Nothing to stop at in this run yet.", timeout=3)
        self._moved()

    def action_toggle_watch(self) -> None:
        watch = self.query_one("#watch", Static)
        if self.scenario is not None and self.scenario.watch:
            watch.toggle_class("visible")

    def action_speed(self, faster: int) -> None:
        speed = self.replay.change_speed(bool(faster))
        self.notify(f"Playback speed {speed:g}×", timeout=2)
        self._redraw()

    def action_mark(self) -> None:
        marked = self.bookmarks.toggle(self.replay.time)
        self.query_one(TimelineView).marks = tuple(self.bookmarks.times)
        self.notify(f"{'Marked' if marked else 'Unmarked'} {clock(self.replay.time)}", timeout=2)
        self._redraw()

    def action_jump_mark(self, direction: int) -> None:
        t = self.replay.time
        found = self.bookmarks.next_after(t) if direction > 0 else self.bookmarks.previous_before(t)
        if found is None:
            self.notify("No mark that way. m marks the cursor.", timeout=3)
            return
        self.replay.seek_time(found)
        self._moved()

    def action_go_live(self) -> None:
        self.replay = None
        self.playing = False
        self._play_timer.pause()
        self.timeline.cursor = None
        self._outputs_shown = 0
        self.query_one("#output", RichLog).clear()
        self.query_one(TimelineView).frozen_end = None
        self.query_one(TimelineView).action_follow()
        self._redraw()

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.lane_theme, self.key_bindings()))

    def action_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.add_class("visible")
        field.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        view = self.query_one(TimelineView)
        view.set_filter(replace(view.lane_filter, text=event.value))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one(TimelineView).focus()
        if not event.value:
            event.input.remove_class("visible")

    def on_key(self, event: events.Key) -> None:
        field = self.query_one("#filter", Input)
        if event.key == "escape" and field.has_focus:
            field.value = ""
            field.remove_class("visible")
            self.query_one(TimelineView).focus()

    def action_toggle_finished(self) -> None:
        view = self.query_one(TimelineView)
        hide = not view.lane_filter.hide_finished
        view.set_filter(replace(view.lane_filter, hide_finished=hide))
        self.notify("Finished tasks hidden" if hide else "Finished tasks shown", timeout=2)

    def action_toggle_group(self) -> None:
        view = self.query_one(TimelineView)
        group = not view.lane_filter.by_parent
        view.set_filter(replace(view.lane_filter, by_parent=group))
        self.notify("Lanes grouped under their parent" if group else "Lanes in creation order",
                    timeout=2)  # fmt: skip

    def action_toggle_log(self) -> None:
        output, log = self.query_one("#output", RichLog), self.query_one("#events", RichLog)
        output.display, log.display = log.display, output.display
        self._events_shown = 0
        log.clear()
        self._update_event_log()

    def on_timeline_view_seek(self, message: TimelineView.Seek) -> None:
        if self.replay is None:
            self._enter_replay()
        self.replay.seek_time(message.t)
        self._moved()

    # -- events and actions -----------------------------------------------------------------

    def on_timeline_view_task_selected(self, message: TimelineView.TaskSelected) -> None:
        self.selected_task = message.task_id
        self._update_task_panel()
        self._update_code()

    # -- the source pane and the await tree (issue 16) ------------------------------------------

    def _update_code(self) -> None:
        """The source pane and the await tree at the cursor's event (live: the newest)."""
        index = self.replay.index if self.replay is not None else len(self.timeline.events) - 1
        self.query_one(CodeColumn).show_at(index, self.selected_task)

    def action_toggle_code(self) -> None:
        shown = self.query_one(CodeColumn).toggle()
        self.notify("Source pane shown" if shown else "Source pane hidden", timeout=2)
        self._update_code()

    def on_source_pane_line_clicked(self, message: SourcePane.LineClicked) -> None:
        if self.replay is None:
            self._enter_replay()
        found = next_event_at(self.timeline, message.file, message.line, self.replay.index)
        if found is None:
            self.notify(f"No event at line {message.line} of {message.file}.", timeout=3)
            return
        if found <= self.replay.index:
            self.notify("Back to the first event at that line.", timeout=3)
        self.replay.seek_index(found)
        self._moved()

    def on_await_tree_panel_task_chosen(self, message: AwaitTreePanel.TaskChosen) -> None:
        self.query_one(TimelineView).select_task(message.task_id)

    def action_quit_session(self) -> None:
        if self.session is None or self.session.finished:
            self.exit()
            return
        self.notify("Stopping the scenario; the trace is kept.", title="Quitting")
        self._quitting = True
        # Stopping may take a few seconds (SIGINT, then SIGTERM): wait in a thread. The tick keeps
        # draining the streams and exits once the session has finished.
        self.run_worker(self.session.stop, thread=True, exclusive=True)
