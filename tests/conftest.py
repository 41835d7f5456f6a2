"""Shared helpers: record a small script for real, in a child process, as loopviz does."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest

from loopviz.events import AnyEvent, from_builtins, to_builtins
from loopviz.session import Session, Target
from loopviz.trace import read_trace

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "scenarios"

# Events that carry no task and vary run to run (idle time depends on the machine's timing).
NOISE = {"hello", "loop", "idle"}


class Recording:
    def __init__(self, session: Session, trace_path: Path) -> None:
        self.session = session
        self.timeline = session.timeline
        self.trace_path = trace_path
        self.trace = read_trace(trace_path)
        self.events = [to_builtins(event) for event in self.trace.events]  # as the file has them

    def task_id(self, name: str) -> int:
        return next(lane.id for lane in self.timeline.tasks.values() if lane.name == name)

    def user_tasks(self) -> set[int]:
        return {lane.id for lane in self.timeline.tasks.values() if not lane.internal}

    def sequence(self, *fields: str) -> list[tuple]:
        """Task events of the program's own tasks as (ev, task, *fields) tuples, in file order."""
        mine = self.user_tasks()
        rows = []
        for event in self.events:
            if event["ev"] in NOISE or event.get("task", -1) not in mine:
                continue
            rows.append((event["ev"], event["task"], *(_dig(event, f) for f in fields)))
        return rows


def _dig(event: dict, dotted: str):
    value = event
    for key in dotted.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def recorded_loop(recorder) -> asyncio.AbstractEventLoop:
    """A new event loop recorded in this process by ``recorder`` (already started): its tasks
    are made by the recording Task class, while ``asyncio.Task`` itself stays as it is."""
    from loopviz.recorder.loops import LoopInstaller
    from loopviz.recorder.tasks import make_task_class

    loop = asyncio.new_event_loop()
    installer = LoopInstaller(recorder)
    installer.install(loop)
    task_class = make_task_class(installer)
    loop.set_task_factory(lambda loop, coro, **kwargs: task_class(coro, loop=loop, **kwargs))
    return loop


def typed(events: list[dict]) -> list[AnyEvent]:
    """Hand-written events, in their JSON shape, as the decoders make them (checked)."""
    return [from_builtins(event) for event in events]


def record_file(script: Path, trace_path: Path, threshold: float = 0.1, args=()) -> Recording:
    session = Session(Target(script, list(args)), trace_path, block_threshold=threshold)
    session.start()
    session.wait()
    return Recording(session, trace_path)


async def wait_until(pilot, condition, limit: float = 15.0) -> None:
    """Let the app run until ``condition()`` holds; fail, rather than hang, past ``limit``."""
    waited = 0.0
    while not condition():
        assert waited < limit, "the app never reached the expected state"
        await pilot.pause(0.05)
        waited += 0.05


@pytest.fixture
def record(tmp_path: Path):
    """record(source) runs the given script source under the recorder and returns a Recording."""

    def run(source: str, threshold: float = 0.1, name: str = "scenario.py") -> Recording:
        script = tmp_path / name
        script.write_text(textwrap.dedent(source))
        return record_file(script, tmp_path / (script.stem + ".jsonl"), threshold)

    return run


def live_session(tmp_path: Path, source: str, name: str = "script.py") -> Session:
    """A session, not started, for the given script source (the live app starts it)."""
    script = tmp_path / name
    script.write_text(textwrap.dedent(source))
    return Session(Target(script, []), tmp_path / f"{script.stem}.jsonl")
