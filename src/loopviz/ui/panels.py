"""The app's panels around the timeline, each a widget that shows one ``Frame``.

A frame is made once per redraw around the one ``Moment`` at the cursor (live: now), and the app
hands the same frame to every panel through its ``frame`` reactive: the header, the banner, the
explanation, the loop panel and the task panel all read that one object, so they cannot disagree
(tests/test_classroom.py checks it at every event). A panel lays the screen out again only when
what it says has changed.

Colours are not written here: each style is a component class (``ink--...``), given its colour
in app.tcss from the theme's variables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import RichLog, Static

from loopviz import model
from loopviz.model import Output, TaskLane
from loopviz.replay import KeyMoment, Moment
from loopviz.runs import Notice
from loopviz.ui.colours import ink
from loopviz.units import clock, duration

# The styles panels and logs write with; app.tcss gives each its colour.
INK = {
    "ink--heading",  # a panel's title, the brand, the clock at the cursor
    "ink--strong",  # what matters most in a line
    "ink--bright",  # the explanation, the time in the header
    "ink--soft",  # the header's secondary words
    "ink--label",  # the name of a value
    "ink--text",  # plain words: output, the event log, a notice's message
    "ink--badge",  # a mode, a key moment, the latest line of a log: dark on the accent
    "ink--loading",
    "ink--truncated",
    "ink--alarm",  # the block's length, a failed exit: white on red
    "ink--running",
    "ink--idle",
    "ink--ready",
    "ink--timers",
    "ink--unseen",
    "ink--kind",  # an event's kind in the event log
    "ink--stderr",
    "ink--warning",
    "ink--error",
}


@dataclass(frozen=True, eq=False)
class Frame:
    """Everything the panels show at once, around the one moment at the cursor."""

    moment: Moment
    title: str  # the run's name
    python: str
    progress: str  # "LOADING 1,234 events" while a trace loads
    truncated: bool
    kept: str  # "trace saved in ..." once a live run is over
    lanes: int  # task lanes shown
    replay: ReplayMode | None  # None while following a live run
    selected: TaskLane | None


@dataclass(frozen=True)
class ReplayMode:
    """The replay cursor as the header and the explanation tell it."""

    index: int
    playing: bool
    speed: float
    key: KeyMoment | None  # the key moment the cursor is on


class Panel(Static):
    """A Static that shows the app's frame (bound to ``LoopvizApp.frame``)."""

    COMPONENT_CLASSES = INK
    frame: reactive[Frame | None] = reactive(None, repaint=False)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._said: Text | None = None

    def watch_frame(self, frame: Frame | None) -> None:
        if frame is None:
            return
        said = self.words(frame)
        if said != self._said:  # an update lays the screen out again: only on a change of size
            layout = not self._same_room(self._said, said)
            self._said = said
            self.update(said, layout=layout)

    def _same_room(self, old: Text | None, new: Text) -> bool:
        """The new words take the room the old ones took: the panel's size is set (Textual
        fills the space where none is), or only its height is ``auto`` and both hold as many
        lines, none wider than the panel (so none wraps)."""
        width, height = self.styles.width, self.styles.height
        if width is not None and width.is_auto:
            return False
        if height is None or not height.is_auto:
            return True
        if old is None:
            return False
        room = self.content_size.width
        old_lines, new_lines = old.split(allow_blank=True), new.split(allow_blank=True)
        return len(old_lines) == len(new_lines) and all(
            line.cell_len <= room for line in (*old_lines, *new_lines)
        )

    def words(self, frame: Frame) -> Text:
        """What the panel says in this frame."""
        raise NotImplementedError


class StatusLine(Panel):
    """The header: the run, the mode, the time at the cursor, and the loop's state in a word."""

    def words(self, frame: Frame) -> Text:
        moment, timeline = frame.moment, frame.moment.timeline
        line = Text()
        line.append("loopviz ", style=ink(self, "heading"))
        line.append(f" {frame.title} ", style=ink(self, "strong"))
        if not self.screen.has_class("-compact"):  # at 80 columns the block's words come first
            line.append(f" Py {frame.python or '?'} ", style=ink(self, "soft"))
            line.append(f" {timeline.loop_impl or 'no loop yet'} ", style=ink(self, "soft"))
        replay = frame.replay
        if replay is not None:
            mode = "PLAYING" if replay.playing else "REPLAY"
            line.append(f" {mode} {replay.speed:g}x ", style=ink(self, "badge"))
            line.append(f" {replay.index + 1}/{len(timeline.events)} ", style=ink(self, "soft"))
        if frame.progress:
            line.append(f" {frame.progress} ", style=ink(self, "loading"))
        line.append(f" t = {clock(moment.t)} ", style=ink(self, "bright"))
        lanes = frame.lanes
        line.append(f" {lanes:,} task{'s' if lanes != 1 else ''} ", style=ink(self, "soft"))
        if frame.truncated:
            line.append(" TRUNCATED ", style=ink(self, "truncated"))
        if moment.block is not None:  # the banner under it gives the culprit: here the length
            line.append(f" {moment.headline.split(':')[0]} ", style=ink(self, "alarm"))
        elif moment.status == "finished" and timeline.exit_code:
            failure = f" ({timeline.error})" if timeline.error else ""
            line.append(f" ended with exit status {timeline.exit_code}{failure} ",
                        style=ink(self, "alarm"))  # fmt: skip
        else:
            colour = {"running": "running", "idle": "idle"}.get(moment.status, "heading")
            line.append(f" {moment.status} ", style=ink(self, colour))
        return line


class Banner(Panel):
    """During a block: who holds the loop, and who starves. Hidden otherwise."""

    def watch_frame(self, frame: Frame | None) -> None:
        super().watch_frame(frame)
        if frame is not None:
            self.set_class(frame.moment.block is not None, "visible")

    def words(self, frame: Frame) -> Text:
        moment = frame.moment
        if moment.block is None:
            return self._said or Text()  # hidden: what it said last can stay
        text = Text(f"THE EVENT LOOP IS {moment.headline}\n", style=ink(self, "strong"))
        text.append(f"{moment.holder} holds the loop; no other task can run")
        starved = moment.starved_labels
        if starved:
            more = f" and {len(starved) - 6} more" if len(starved) > 6 else ""
            text.append(" | starved: " + ", ".join(starved[:6]) + more)
        return text


class TaskPanel(Panel):
    """The selected task: its state at the cursor, where it came from, and its times."""

    def words(self, frame: Frame) -> Text:
        lane = frame.selected
        if lane is None:
            return Text("No task selected.\n↑/↓ or click a lane.", style=ink(self, "soft"))
        moment = frame.moment
        timeline, horizon = moment.timeline, moment.t
        state = moment.lane_state(lane)
        done = state == model.DONE
        state = lane.outcome if done else state
        text = Text()
        text.append(f"{lane.label}\n", style=ink(self, "heading"))
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
        waited = lane.time_in((model.WAITING,), horizon)
        ready = lane.time_in((model.READY,), horizon)
        rows += [
            ("steps", str(lane.steps)),
            ("busy", duration(lane.busy_ns)),
            ("waiting", duration(waited)),
            ("ready", duration(ready)),
            ("longest", duration(lane.longest_step_ns)),
        ]
        label = ink(self, "label")
        for key, value in rows:
            text.append(f"{key:>10} ", style=label)
            text.append(f"{value}\n")
        return text


class LoopPanel(Panel):
    """The loop at the cursor, as drawn on a whiteboard: what it does, its ready queue, its
    timers."""

    def words(self, frame: Frame) -> Text:
        moment, timeline = frame.moment, frame.moment.timeline
        label = ink(self, "label")
        text = Text()
        text.append("THE LOOP NOW\n", style=ink(self, "heading"))
        text.append(f"{moment.doing}\n", style=ink(self, "strong"))
        text.append("ready queue: ", style=label)
        text.append((", ".join(moment.ready) or "empty") + "\n", style=ink(self, "ready"))
        text.append("timers: ", style=label)
        text.append(", ".join(moment.timers[:4]) or "none", style=ink(self, "timers"))
        if timeline.unseen:
            unseen = sum(notice.count for notice in timeline.unseen)
            detail = timeline.unseen[-1].detail
            text.append(f"\nNot shown: {unseen or 'some'} task(s) the recorder could not see "
                        f"({detail})", style=ink(self, "unseen"))  # fmt: skip
        return text


class Explanation(Panel):
    """Under the timeline: the event at the cursor in plain words, and why a key moment
    matters."""

    def words(self, frame: Frame) -> Text:
        replay = frame.replay
        if replay is None:
            live = "LIVE · space pauses to step through what is recorded so far"
            return Text(live, style=ink(self, "label"))
        moment = frame.moment
        line = Text(f"{clock(moment.t)}  ", style=ink(self, "heading"))
        line.append(moment.explanation, style=ink(self, "bright"))
        if replay.key is not None:
            line.append(f"\nKEY MOMENT ({replay.key.kind}). {replay.key.why}",
                        style=ink(self, "badge"))  # fmt: skip
        elif frame.kept:
            line.append(f"\n{frame.kept}", style=ink(self, "label"))
        return line


class WatchFor(Static):
    """Lesson mode: the scenario's "Watch for", on screen until ``w`` hides it."""

    COMPONENT_CLASSES = INK

    def __init__(self, instruction: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.instruction = instruction  # "" when not a lesson: then never shown

    def on_mount(self) -> None:
        if not self.instruction:
            return
        text = Text()
        text.append(" WATCH FOR ", style=ink(self, "badge"))
        text.append(" (w hides) ", style=ink(self, "soft"))
        text.append(self.instruction, style=ink(self, "strong"))
        self.update(text)
        self.add_class("visible")

    def toggle(self) -> None:
        if self.instruction:
            self.toggle_class("visible")


class NoticePanel(Static):
    """Notices, at the foot of the side panel: never over what the class must read. Each one
    set (the same words again too) shows for its timeout."""

    COMPONENT_CLASSES = INK
    notice: reactive[Notice | None] = reactive(None, always_update=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._timer: Timer | None = None

    def watch_notice(self, notice: Notice | None) -> None:
        if notice is None:
            return
        heading = {"error": "error", "warning": "warning"}.get(notice.severity, "heading")
        text = Text(f"{notice.title}\n" if notice.title else "", style=ink(self, heading))
        text.append(notice.message, style=ink(self, "text"))
        self.update(text)
        self.add_class("visible")
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(notice.timeout, lambda: self.remove_class("visible"))


class RunLog(RichLog):
    """The bottom pane's logs: the program's output, and the event log."""

    COMPONENT_CLASSES = INK

    def write_line(self, t: int, words: str, style: str, kind: str = "") -> None:
        """One line: the time, the event's kind (event log), and the words in ``style`` (one
        of INK's names)."""
        text = Text(f"{clock(t):>10}  ", style=ink(self, "label"))
        if kind:
            text.append(f"{kind:<12} ", style=ink(self, "kind"))
        text.append(words, style=ink(self, style))
        self.write(text)

    def write_output(self, output: Output, latest: bool) -> None:
        style = "badge" if latest else ("stderr" if output.stream == "stderr" else "text")
        for line in output.text.splitlines():
            self.write_line(output.t, line, style)
