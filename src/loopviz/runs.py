"""Where the run the app shows comes from: a recording made as it is watched, or a trace file.

The app is built on ``RunSource`` alone. Two kinds serve it: ``LiveRecording`` (a session whose
script runs now; its events arrive as it records) and ``TraceFile`` (a trace, loaded already or
still loading a batch at a time). What differs between them (how events come in, what "now" is,
what is worth a notice, how quitting stops them) is answered here, so the app never asks which
kind it has. No UI import: these are tested without a screen.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from loopviz.model import Timeline
from loopviz.session import Session
from loopviz.trace import TraceLoader

LOAD_BATCH = 50_000  # events taken in one go while a big trace loads (one frame's worth)


@dataclass(frozen=True)
class Notice:
    """Something the viewer should be told once, at the foot of the side panel."""

    title: str
    message: str
    severity: str = "information"  # information | warning | error
    timeout: float = 4


class RunSource(Protocol):
    """A run for the app: its timeline and what comes into it."""

    timeline: Timeline
    title: str  # the run's name in the header
    python: str  # the Python version that ran it, once known
    trace_path: Path | None  # where its trace is (bookmarks go beside it)
    truncated: bool  # the trace ends mid-run

    @property
    def live(self) -> bool:
        """A recording made as it is watched: the view can follow its "now"."""
        ...

    @property
    def done(self) -> bool:
        """Nothing more will come in."""
        ...

    def start(self) -> None:
        """Begin taking events in (the script starts, the trace loads on), after the first
        frame is up."""
        ...

    def take(self) -> int:
        """Take in what has come since; how many events came."""
        ...

    def now(self) -> int:
        """How far the recording had got at the last ``take``."""
        ...

    def news(self) -> list[Notice]:
        """What has become worth a notice since the last call (each said once)."""
        ...

    def progress(self) -> str:
        """Words for the header while it is still coming in ("" when there is nothing to say)."""
        ...

    def kept(self) -> str:
        """Where the run was kept, once it is over ("" if nothing to say)."""
        ...

    def stop(self) -> None:
        """Stop what is running (blocking: the app calls it in a thread)."""
        ...

    def kill(self) -> None:
        """The last resort when the viewer must exit at once: kill what it started."""
        ...


class LiveRecording:
    """A session's script, recorded as it runs."""

    live = True

    def __init__(self, session: Session) -> None:
        self.session = session
        self.timeline = session.timeline
        self.title = session.target.name
        self.python = ""
        self.trace_path = session.trace_path
        self.truncated = False
        self._now = 0
        self._said: set[str] = set()  # the notices given already

    @property
    def done(self) -> bool:
        return self.session.finished

    def start(self) -> None:
        if self.session.process is None:
            self.session.start()

    def take(self) -> int:
        arrived = len(self.session.poll())
        self._now = max(self.session.now(), self.timeline.end_t)
        self.python = self.python or str(self.session.header()["python"])
        return arrived

    def now(self) -> int:
        return self._now

    def news(self) -> list[Notice]:
        session = self.session
        found = []
        if session.model_full:
            found.append(Notice("View full", f"The lanes show the first "
                                f"{session.max_model_events:,} events; from here on the view "
                                "shows blocks only. Every event still goes to the trace file.",
                                "warning", 15))  # fmt: skip
        if session.trace_error:
            found.append(Notice("Trace not saved", f"{session.trace_error}. Recording goes on "
                                "in memory only.", "error", 15))  # fmt: skip
        if session.finished:
            found.append(Notice("Finished", f"The scenario finished (exit status "
                                f"{session.exit_code}). Step through it with ← →.",
                                timeout=6))  # fmt: skip
        new = [notice for notice in found if notice.title not in self._said]
        self._said.update(notice.title for notice in new)
        return new

    def progress(self) -> str:
        return ""

    def kept(self) -> str:
        if self.session.finished and self.trace_path:
            return f"trace saved in {self.trace_path}"
        return ""

    def stop(self) -> None:
        self.session.stop()

    def kill(self) -> None:
        process = self.session.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(process.pid, signal.SIGKILL)


class TraceFile:
    """A recorded trace: loaded already, or (with a ``TraceLoader``) loading the rest a batch
    at a time while what came first is shown."""

    live = False

    def __init__(
        self,
        timeline: Timeline,
        title: str = "",
        python: str = "",
        trace_path: Path | None = None,
        truncated: bool = False,
        loader: TraceLoader | None = None,
    ) -> None:
        self.timeline = timeline
        self.title = title
        self.python = python
        self.trace_path = trace_path
        self.truncated = truncated
        self.loader = loader
        self._told = False

    @classmethod
    def loading(cls, loader: TraceLoader, title: str = "", trace_path: Path | None = None
                ) -> TraceFile:  # fmt: skip
        """A trace still loading: ``loader`` has taken in its first batch."""
        python = str(loader.trace.header.get("python", ""))
        return cls(loader.timeline, title, python, trace_path, loader=loader)

    @property
    def done(self) -> bool:
        return self.loader is None or self.loader.done

    def start(self) -> None:
        """A trace has nothing to start: ``take`` loads it on."""

    def take(self) -> int:
        if self.loader is None or self.loader.done:
            return 0
        before = len(self.timeline.events)
        self.loader.load(LOAD_BATCH)
        if self.loader.done:
            self.truncated = self.loader.trace.truncated
        return len(self.timeline.events) - before

    def now(self) -> int:
        return self.timeline.end_t

    def news(self) -> list[Notice]:
        """Once it is all in: is it whole?"""
        if self._told or not self.done:
            return []
        self._told = True
        error = self.loader.error if self.loader is not None else None
        if error:
            return [Notice("Damaged trace", f"{error} It replays up to that line.", "error", 15)]
        if self.truncated:
            return [Notice("Truncated trace", "This trace ends mid-run (the recording was cut "
                           "short): it replays up to the cut.", "warning", 10)]  # fmt: skip
        return []

    def progress(self) -> str:
        return "" if self.done else f"LOADING {len(self.timeline.events):,} events"

    def kept(self) -> str:
        return ""

    def stop(self) -> None:
        """Nothing runs: there is nothing to stop."""

    def kill(self) -> None:
        """Nothing was started: there is nothing to kill."""
