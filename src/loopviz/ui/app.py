"""The loopviz Textual app: a run as a timeline, live while it records, then as a replay.

The app shows a ``RunSource`` (loopviz.runs): a live recording or a trace file, and it never asks
which. While events still come in (a script running, a big trace loading), a timer takes them in
60 times a second and redraws (30 times a second when nothing new came: the clock still moves).
The scenario runs in its own process, so its blocking calls never freeze this loop: the clock
keeps moving and the block band grows while the scenario is stuck.

In a replay (a trace file, a finished run, or a live run paused with space) a cursor moves through
the events: every lane shows its state at the cursor, and panels say what the event means and what
the loop holds at that instant. Nothing shown then depends on the wall clock.

Each redraw makes one ``Frame`` around the one ``Moment`` at the cursor, and every panel shows
that frame (ui/panels.py): the screen never contradicts itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import threading
from dataclasses import replace
from types import FrameType
from typing import Any

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Footer, Input, Static

from loopviz.catalogue import Scenario
from loopviz.painter import DEFAULT_THEME, Painter, Theme
from loopviz.replay import Bookmarks, Moment, Queues, Replay, explain_event, moment_at
from loopviz.runs import Notice, RunSource
from loopviz.sourcecode import next_event_at
from loopviz.ui.ascii import AsciiFilter
from loopviz.ui.awaittree import AwaitTreePanel
from loopviz.ui.colours import ColouredApp
from loopviz.ui.help import HelpScreen
from loopviz.ui.panels import (
    Banner,
    Explanation,
    Frame,
    LoopPanel,
    NoticePanel,
    ReplayMode,
    RunLog,
    StatusLine,
    TaskPanel,
    WatchFor,
)
from loopviz.ui.source import CodeColumn, SourcePane
from loopviz.ui.timeline import TimelineView
from loopviz.units import clock
from loopviz.viewstate import ViewState

REFRESH_HZ = 30  # replay playback, and the live clock when no events arrive
TAKE_HZ = 60  # while events come in, they reach the screen within one of these frames
OUTPUT_LINES = 300  # lines of output kept on screen in a replay
EVENT_LOG_LINES = 300  # events kept in the event log pane
MIN_SIZE = (60, 16)  # below this the layout cannot show a lane; say so instead
END_GRACE = 3.0  # seconds to quit in good order after SIGTERM (or losing the server) before exiting


class LoopvizApp(ColouredApp[None]):
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

    frame: reactive[Frame | None] = reactive(None, repaint=False)  # every panel shows this one

    @classmethod
    def key_bindings(cls) -> list[Binding]:
        """Every key of the app, its own and the timeline's: the help and the README list these."""
        return [b for b in (*cls.BINDINGS, *TimelineView.BINDINGS) if isinstance(b, Binding)]

    def __init__(
        self,
        source: RunSource,
        theme: Theme = DEFAULT_THEME,
        scenario: Scenario | None = None,
    ) -> None:
        super().__init__()
        self.lane_theme = theme
        self.scenario = scenario  # a catalogue scenario: its "Watch for" is shown (lesson mode)
        self._ascii_filter = AsciiFilter() if theme.ascii else None
        self.source = source
        self.timeline = source.timeline
        self.selected_task: int | None = None
        # the replay cursor; None while a live recording is followed as it records
        self.replay: Replay | None = None
        if not source.live:
            self.replay = Replay(self.timeline)
            self.replay.seek_index(len(self.timeline.events) - 1)  # a trace opens at its end
        self.bookmarks = Bookmarks(source.trace_path)
        self.playing = False
        self._outputs_shown = 0
        self._quitting = False
        self._bindings_mode: tuple[bool, bool, bool] | None = None
        self._events_shown = 0
        self._quiet_ticks = 0  # takes in a row that brought no event
        self._live_queues = Queues(self.timeline)
        self.moment: Moment | None = None  # what every panel shows, computed once per frame
        self._revealed: int | None = None  # the block whose holder lane was last brought in sight
        self._take_timer: Timer | None = None
        self.notices: list[str] = []  # every notice shown, in order

    def notify(self, message: str, *, title: str = "", severity: str = "information",
               timeout: float | None = None, markup: bool = True) -> None:  # fmt: skip
        """Notices go at the foot of the side panel, never over what the class must read (the
        explanation, the banner, the output), as Textual's toasts would."""
        self._say(Notice(title, message, severity, timeout or 4))

    def _say(self, notice: Notice) -> None:
        self.notices.append(notice.message)
        for panel in self.query(NoticePanel):
            panel.notice = notice

    def get_line_filters(self) -> list[Any]:
        """--ascii: after our own ASCII glyphs, a last filter so that Textual's borders,
        scrollbars and footer are ASCII too: every character on screen is."""
        filters: list[Any] = list(super().get_line_filters())
        if self._ascii_filter is not None:
            filters.append(self._ascii_filter)
        return filters

    def compose(self) -> ComposeResult:
        yield Static(id="too-small")
        yield StatusLine(id="status").data_bind(LoopvizApp.frame)
        yield Banner(id="banner").data_bind(LoopvizApp.frame)
        yield WatchFor(self.scenario.watch if self.scenario else "", id="watch")
        with Horizontal(id="middle"):
            yield TimelineView(self.timeline, Painter(self.lane_theme), id="timeline")
            with Vertical(id="side"):
                yield TaskPanel(id="task-panel").data_bind(LoopvizApp.frame)
                yield LoopPanel(id="loop-panel").data_bind(LoopvizApp.frame)
                yield NoticePanel(id="notice")
            yield CodeColumn(self.timeline, self.lane_theme, id="code")
        yield Explanation(id="explain").data_bind(LoopvizApp.frame)
        yield RunLog(id="output", markup=False, wrap=False, max_lines=5000)
        yield RunLog(id="events", markup=False, wrap=False, max_lines=5000)
        yield Input(placeholder="show lanes whose name contains… (Enter keeps it, Esc clears)",
                    id="filter")  # fmt: skip
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(TimelineView).focus()
        self.query_one(TimelineView).marks = tuple(self.bookmarks.times)
        self._end_for_sure()
        if self.lane_theme.ascii:
            self.screen.add_class("-ascii")
        if self.source.done:
            self._all_in()
        else:
            # Start once the first frame is up: a script's first events then reach the screen at
            # once, and what a trace has loaded already is on screen while the rest comes.
            self.call_after_refresh(self._start_taking)
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

        def end(_signal: int = 0, _frame: FrameType | None = None) -> None:
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
        """The last resort of _end_for_sure: what the source started killed, then this process."""
        self.source.kill()
        os._exit(1)

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

    # -- taking events in -----------------------------------------------------------------

    def _start_taking(self) -> None:
        # What the app made to start up lives as long as it does: keep the cyclic GC from
        # walking it on every full collection (pauses of 20-60 ms that held up live frames).
        gc.freeze()
        self.source.start()
        self._take_timer = self.set_interval(1 / TAKE_HZ, self._tick)

    def _tick(self) -> None:
        source = self.source
        arrived = source.take()
        self._quiet_ticks = 0 if arrived else self._quiet_ticks + 1
        if self._quiet_ticks % (TAKE_HZ // REFRESH_HZ) == 1 and not source.done:
            return  # nothing new: the clock alone moves on at REFRESH_HZ, which costs half
        if source.done and self._quitting:
            self.exit()
            return
        if arrived and not source.live and self.replay is not None:
            self.replay.seek_index(len(self.timeline.events) - 1)  # a trace opens at its end
        if source.done:
            if self._take_timer is not None:
                self._take_timer.stop()  # nothing more will come: redraw only when the user acts
            view = self.query_one(TimelineView)
            view.frozen_end = None
            view.action_fit()
            self._all_in()
        else:
            self._tell_news()
        self._redraw()

    def _all_in(self) -> None:
        """Everything has come in: step through it from the end, and say if it is not whole."""
        if self.replay is None:
            self._enter_replay()
        self._tell_news()

    def _tell_news(self) -> None:
        for notice in self.source.news():
            self._say(notice)

    # -- drawing ----------------------------------------------------------------------------

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
        self.frame = self._frame(moment)
        self._update_output()
        self._update_event_log()
        self._update_code()
        mode = (self.replay is None, self.playing, moment.view.live)
        if mode != self._bindings_mode:  # the footer rebuilds itself: only when keys change
            self._bindings_mode = mode
            self.refresh_bindings()

    def _view_state(self) -> ViewState:
        """Where the viewer stands: at the replay cursor, or following now."""
        following = ViewState.at_end(self.timeline, self.source.now())
        return following.at(self.replay.time) if self.replay is not None else following

    def _compute_moment(self) -> Moment:
        """The one state at the cursor (live: now) that the header, banner, explanation, loop
        panel and lane icons all show."""
        at = self._view_state()
        if self.replay is not None:
            return moment_at(self.timeline, at, self.replay.index, self.replay.queues)
        return moment_at(self.timeline, at, len(self.timeline.events) - 1, self._live_queues)

    def _frame(self, moment: Moment) -> Frame:
        source, replay = self.source, self.replay
        mode = None if replay is None else ReplayMode(
            replay.index, self.playing, replay.speed, replay.key_moment_here()
        )  # fmt: skip
        selected = self.timeline.tasks.get(self.selected_task) if self.selected_task else None
        return Frame(
            moment=moment, title=source.title, python=source.python, progress=source.progress(),
            truncated=source.truncated, kept=source.kept(),
            lanes=len(self.query_one(TimelineView).lane_ids()), replay=mode, selected=selected,
        )  # fmt: skip

    def _update_output(self) -> None:
        log = self.query_one("#output", RunLog)
        timeline = self.timeline
        if self.replay is None:
            outputs = timeline.outputs
            for output in outputs[self._outputs_shown :]:
                log.write_output(output, latest=False)
            self._outputs_shown = len(outputs)
            return
        shown = timeline.outputs_until(self.replay.time)
        if len(shown) == self._outputs_shown and log.lines:
            return
        log.clear()
        recent = shown[-OUTPUT_LINES:]
        for i, output in enumerate(recent):
            log.write_output(output, latest=i == len(recent) - 1)
        self._outputs_shown = len(shown)

    def _update_event_log(self) -> None:
        """The event log: every event in plain words; in a replay, those up to the cursor."""
        log = self.query_one("#events", RunLog)
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
            log.write_line(event.t, explain_event(timeline, event),
                           "badge" if latest else "text", kind=event.ev)  # fmt: skip
        self._events_shown = end

    # -- replay -------------------------------------------------------------------------------

    def _enter_replay(self) -> Replay:
        self.replay = replay = Replay(self.timeline)
        replay.seek_index(len(self.timeline.events) - 1)
        self._outputs_shown = -1
        view = self.query_one(TimelineView)
        if self.source.live and not self.source.done:
            view.frozen_end = self.source.now()  # (never before the last event): no rescaling
        else:
            view.frozen_end = None
        return replay

    def _replaying(self) -> Replay:
        """The replay cursor, made where the run stands if the view was following it live."""
        return self.replay if self.replay is not None else self._enter_replay()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        replay_only = {"step", "step_task", "jump", "seek_edge", "next_block", "mark",
                       "jump_mark", "speed"}  # fmt: skip
        if action in replay_only and self.replay is None:
            return None  # shown dimmed: space pauses the live view and makes them work
        if action == "go_live":
            if not self.source.live or self.source.done:
                return False  # nothing live to go back to: not shown at all
            return True if self.replay is not None else None
        return True

    def refresh_screen(self) -> None:
        """Redraw everything from the model (after moving the cursor from outside)."""
        self._redraw()

    def seek_time(self, t: int) -> None:
        """Put the replay cursor at ``t`` (a live view pauses there) and show it."""
        self._replaying().seek_time(t)
        self._moved()

    def _moved(self) -> None:
        self._redraw()
        self.query_one(TimelineView).show_cursor()  # a zoomed view follows the cursor

    # The replay keys below work only in a replay (check_action dims them while live).

    def action_step(self, delta: int) -> None:
        self._replaying().step(delta)
        self._moved()

    def action_step_task(self, delta: int) -> None:
        replay = self._replaying()
        if self.selected_task is None or not replay.step_task(self.selected_task, delta):
            self.bell()
        self._moved()

    def action_jump(self, cells: int) -> None:
        view = self.query_one(TimelineView).viewport()
        replay = self._replaying()
        replay.seek_time(replay.time + int(cells * view.ns_per_cell))
        self._moved()

    def action_seek_edge(self, end: int) -> None:
        self._replaying().seek_index(len(self.timeline.events) - 1 if end else 0)
        self._moved()

    def action_next_block(self) -> None:
        if not self._replaying().next_block():
            self.notify("No block after the cursor.", timeout=3)
        self._moved()

    def action_play_pause(self) -> None:
        replay = self.replay
        if replay is None:  # live: pause here, and step through what is recorded so far
            self._enter_replay()
        elif self.playing:
            self.playing = False
            self._play_timer.pause()
        else:
            if replay.time >= self.timeline.end_t:
                replay.seek_index(0)
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
        if self._replaying().next_key_moment() is None:
            self.notify("Nothing to stop at in this run yet.", timeout=3)
        self._moved()

    def action_toggle_watch(self) -> None:
        self.query_one(WatchFor).toggle()

    def action_speed(self, faster: int) -> None:
        speed = self._replaying().change_speed(bool(faster))
        self.notify(f"Playback speed {speed:g}×", timeout=2)
        self._redraw()

    def action_mark(self) -> None:
        t = self._replaying().time
        marked = self.bookmarks.toggle(t)
        self.query_one(TimelineView).marks = tuple(self.bookmarks.times)
        self.notify(f"{'Marked' if marked else 'Unmarked'} {clock(t)}", timeout=2)
        self._redraw()

    def action_jump_mark(self, direction: int) -> None:
        replay = self._replaying()
        t = replay.time
        found = self.bookmarks.next_after(t) if direction > 0 else self.bookmarks.previous_before(t)
        if found is None:
            self.notify("No mark that way. m marks the cursor.", timeout=3)
            return
        replay.seek_time(found)
        self._moved()

    def action_go_live(self) -> None:
        self.replay = None
        self.playing = False
        self._play_timer.pause()
        self._outputs_shown = 0
        self.query_one("#output", RunLog).clear()
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
        output, log = self.query_one("#output", RunLog), self.query_one("#events", RunLog)
        output.display, log.display = log.display, output.display
        self._events_shown = 0
        log.clear()
        self._update_event_log()

    def on_timeline_view_seek(self, message: TimelineView.Seek) -> None:
        self._replaying().seek_time(message.t)
        self._moved()

    # -- events and actions -----------------------------------------------------------------

    def on_timeline_view_task_selected(self, message: TimelineView.TaskSelected) -> None:
        self.selected_task = message.task_id
        if self.frame is not None:
            lane = self.timeline.tasks.get(message.task_id) if message.task_id else None
            self.frame = replace(self.frame, selected=lane)
        self._update_code()

    # -- the source pane and the await tree ------------------------------------------

    def _update_code(self) -> None:
        """The source pane and the await tree at the cursor's event (live: the newest)."""
        moment = self.moment
        if moment is None:
            return  # before the first frame: drawn with it
        index = self.replay.index if self.replay is not None else len(self.timeline.events) - 1
        self.query_one(CodeColumn).show_at(index, moment.view, self.selected_task)

    def action_toggle_code(self) -> None:
        shown = self.query_one(CodeColumn).toggle()
        self.notify("Source pane shown" if shown else "Source pane hidden", timeout=2)
        self._update_code()

    def on_source_pane_line_clicked(self, message: SourcePane.LineClicked) -> None:
        replay = self._replaying()
        found = next_event_at(self.timeline, message.file, message.line, replay.index)
        if found is None:
            self.notify(f"No event at line {message.line} of {message.file}.", timeout=3)
            return
        if found <= replay.index:
            self.notify("Back to the first event at that line.", timeout=3)
        replay.seek_index(found)
        self._moved()

    def on_await_tree_panel_task_chosen(self, message: AwaitTreePanel.TaskChosen) -> None:
        self.query_one(TimelineView).select_task(message.task_id)

    def action_quit_session(self) -> None:
        if not self.source.live or self.source.done:
            self.exit()
            return
        self.notify("Stopping the scenario; the trace is kept.", title="Quitting")
        self._quitting = True
        # Stopping may take a few seconds (SIGINT, then SIGTERM): wait in a thread. The tick keeps
        # draining the streams and exits once the recording has finished.
        self.run_worker(self.source.stop, thread=True, exclusive=True)
