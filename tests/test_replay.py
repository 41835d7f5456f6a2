"""Replay: seeking and stepping through a timeline, and what the panels say at the cursor."""

from __future__ import annotations

import pytest

from conftest import REPO, typed, wait_until
from loopviz import model
from loopviz.model import Timeline
from loopviz.replay import Bookmarks, Replay
from loopviz.runs import LOAD_BATCH, TraceFile
from loopviz.trace import TraceLoader, TraceWriter, load_timeline, read_trace
from loopviz.ui.app import LoopvizApp
from loopviz.ui.timeline import TimelineView

MS = 1_000_000


def tiny() -> Timeline:
    """Two tasks; events 2 and 3 share a timestamp; b sleeps past a block by a."""
    timeline = Timeline()
    events = [
        {"t": 0, "ev": "create", "task": 1, "name": "a", "coro": "a", "parent": None,
         "where": "x.py:1"},
        {"t": 0, "ev": "create", "task": 2, "name": "b", "coro": "b", "parent": None,
         "where": "x.py:2"},
        {"t": 1 * MS, "ev": "resume", "task": 2},
        {"t": 2 * MS, "ev": "suspend", "task": 2,
         "waiting_on": {"kind": "sleep", "label": "sleep 0.01s", "deadline": 12 * MS,
                        "delay_ns": 10 * MS}},
        {"t": 2 * MS, "ev": "resume", "task": 1},
        {"t": 112 * MS, "ev": "block_begin", "task": 1, "start": 2 * MS, "where": "x.py:5",
         "code": "time.sleep(0.5)", "stack": []},
        {"t": 12 * MS, "ev": "ready", "task": 2, "cause": "sleep ended"},
        {"t": 502 * MS, "ev": "block", "task": 1, "start": 2 * MS, "end": 502 * MS,
         "where": "x.py:5", "code": "time.sleep(0.5)", "stack": []},
        {"t": 502 * MS, "ev": "done", "task": 1, "outcome": "returned", "detail": "None"},
        {"t": 503 * MS, "ev": "resume", "task": 2},
        {"t": 504 * MS, "ev": "done", "task": 2, "outcome": "returned", "detail": "None"},
        {"t": 505 * MS, "ev": "end", "exit_code": 0, "error": None},
    ]  # fmt: skip
    timeline.add_events(typed(sorted(events, key=lambda e: e["t"])))  # in time order, as traces are
    timeline.ended = True
    return timeline


def test_seek_lands_on_the_last_event_at_or_before_a_time_including_ties():
    replay = Replay(tiny())
    replay.seek_time(2 * MS)
    assert replay.index == 4 and replay.event.ev == "resume"  # the later of the two at 2 ms
    replay.seek_time(2 * MS - 1)
    assert replay.index == 2 and replay.time == 2 * MS - 1
    replay.seek_time(-5)
    assert (replay.index, replay.time) == (1, 0)  # both creates are at t=0
    replay.seek_time(10**12)
    assert replay.event.ev == "end" and replay.time == 505 * MS


def test_step_back_then_forward_returns_to_the_same_state():
    timeline = tiny()
    replay = Replay(timeline)
    replay.seek_index(0)
    assert replay.event.ev == "create"
    replay.step(-1)
    assert replay.index == -1 and replay.explain() == "Nothing has happened yet."
    seen = []
    for _ in range(len(timeline.events)):
        replay.step(1)
        seen.append((replay.index, replay.time, timeline.states_at(replay.time), replay.explain()))
    replay.step(1)
    assert replay.index == len(timeline.events) - 1  # the last event is as far as it goes
    for index, t, states, words in reversed(seen):
        replay.seek_index(index)
        now = (replay.time, timeline.states_at(replay.time), replay.explain())
        assert now == (t, states, words)


def test_task_steps_blocks_and_loop_state_at_the_cursor():
    timeline = tiny()
    replay = Replay(timeline)
    replay.seek_index(0)
    assert replay.step_task(2, 1) and replay.event == typed([{"t": 0, "ev": "create", "task": 2,
        "name": "b", "coro": "b", "parent": None, "where": "x.py:2"}])[0]  # fmt: skip
    assert replay.step_task(2, 1) and replay.event.ev == "resume"
    assert replay.explain() == "b runs for the first time"
    # where a viewer first saw the block: the watchdog's word, past the threshold
    assert replay.next_block() and replay.event.ev == "block_begin"
    assert replay.time == 112 * MS
    replay.seek_time(300 * MS)
    assert timeline.tasks[2].state_at(300 * MS) == model.READY
    state = replay.loop_state()
    assert state.doing == "blocked by a: time.sleep(0.5)"
    assert state.ready == ["b"] and state.timers == []
    replay.seek_index(5)  # 10 ms into a's step: not a block yet, as the lanes show it
    assert replay.explain() == "b is ready (its sleep ended); it runs when the loop gets to it"
    replay.seek_index(6)
    assert replay.explain() == ("a blocks the loop: time.sleep(0.5) at x.py:5; it has held it for "
                                "110 ms; 1 task is starved: b")  # fmt: skip
    replay.seek_time(503 * MS)
    assert replay.explain() == "b resumes: its 0.01s sleep ended at 0.012 s, 491 ms late"
    assert not replay.next_block()


def test_bookmarks_are_saved_beside_the_trace(tmp_path):
    trace = tmp_path / "run.jsonl"
    marks = Bookmarks(trace)
    assert marks.toggle(5 * MS) and marks.toggle(2 * MS)
    again = Bookmarks(trace)
    assert again.times == [2 * MS, 5 * MS]
    assert again.next_after(2 * MS) == 5 * MS and again.previous_before(2 * MS) is None
    assert not again.toggle(5 * MS) and Bookmarks(trace).times == [2 * MS]


def panel(app, selector: str) -> str:
    return str(app.query_one(selector).content)


async def test_stepping_back_and_forth_changes_the_panels_and_returns_to_the_same_screen():
    trace, timeline = load_timeline(REPO / "tests" / "data" / "blocking.jsonl")
    app = LoopvizApp(TraceFile(timeline, title="blocking.py", python="3.11.7"))
    async with app.run_test(size=(120, 36)) as pilot:
        view = app.query_one(TimelineView)
        assert "the program ends with exit status 0" in panel(app, "#explain")
        await pilot.press("home")
        assert "the event loop starts (asyncio)" in panel(app, "#explain")
        assert [view.render_line(y).text.strip() for y in range(2, 4)] == ["", ""]  # no task yet
        await pilot.press("right")
        assert "asyncio.run creates main (main() at blocking.py:39)" in panel(app, "#explain")
        assert view.render_line(2).text.startswith("● main")
        await pilot.press("b")  # to where the block is first seen
        assert "BLOCKED 117 ms" in panel(app, "#status")  # the watchdog spoke 17 ms late
        assert "reporter blocks the loop: time.sleep(2) at blocking.py:25" in panel(app, "#explain")
        first = [view.render_line(y).text for y in range(8)]
        words = panel(app, "#explain")
        await pilot.press("right")
        assert panel(app, "#explain") != words
        await pilot.press("left")
        assert panel(app, "#explain") == words
        assert [view.render_line(y).text for y in range(8)] == first
        await pilot.press("right")
        assert "slow is ready (its sleep ended), but the loop is blocked" in panel(app, "#explain")
        assert "starved: fast, medium, slow" in panel(app, "#banner")
        assert "blocked by reporter: time.sleep(2)" in panel(app, "#loop-panel")
        await pilot.press("end")
        assert "finished" in panel(app, "#loop-panel")
        await pilot.press("q")


async def test_shift_arrows_follow_the_selected_task_only():
    _trace, timeline = load_timeline(REPO / "tests" / "data" / "blocking.jsonl")
    app = LoopvizApp(TraceFile(timeline, title="blocking.py", python="3.11.7"))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("down", "down", "down", "down", "home")  # reporter, from the start
        assert panel(app, "#task-panel").startswith("reporter")
        reporter = app.selected_task
        visited = []
        for _ in range(4):
            await pilot.press("shift+right")
            visited.append(app.replay.event)
        assert all(event.task == reporter for event in visited)
        assert [event.ev for event in visited] == ["create", "resume", "suspend", "ready"]
        await pilot.press("q")


def test_loop_state_is_the_same_however_the_cursor_got_there(monkeypatch):
    import loopviz.replay

    monkeypatch.setattr(loopviz.replay, "CHECKPOINT_EVERY", 7)  # checkpoints, on a small trace
    _trace, timeline = load_timeline(REPO / "tests" / "data" / "blocking.jsonl")
    walker = Replay(timeline)
    walker.seek_index(0)
    forward = []
    for index in range(len(timeline.events)):
        walker.seek_index(index)
        forward.append(walker.loop_state())
    for index in reversed(range(len(timeline.events))):
        walker.seek_index(index)
        assert walker.loop_state() == forward[index]
        fresh = Replay(timeline)
        fresh.seek_index(index)
        assert fresh.loop_state() == forward[index]


async def test_a_truncated_trace_replays_up_to_the_cut_with_a_notice(tmp_path):
    lines = (REPO / "tests" / "data" / "blocking.jsonl").read_text().splitlines()
    cut = tmp_path / "killed.jsonl"
    cut.write_text("\n".join(lines[:60]) + "\n" + lines[60][:25])  # killed mid-line
    trace, timeline = load_timeline(cut)
    assert trace.truncated and len(timeline.events) == 59
    app = LoopvizApp(TraceFile(timeline, title="killed", trace_path=cut, truncated=True))
    async with app.run_test(size=(120, 36)) as pilot:
        assert "TRUNCATED" in panel(app, "#status")
        assert any("cut short" in notice for notice in app.notices)
        assert app.replay.event == read_trace(cut).events[-1]
        await pilot.press("q")


def test_replay_command_refuses_what_is_not_a_trace(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "notes.txt"
    bad.write_text("hello\n")
    result = subprocess.run(
        [sys.executable, "-m", "loopviz", "replay", str(bad)], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr == f"loopviz: {bad} is not a loopviz trace (its first line is not JSON).\n"


async def test_clicking_the_axis_seeks_and_space_plays_at_the_chosen_speed():
    _trace, timeline = load_timeline(REPO / "tests" / "data" / "blocking.jsonl")
    app = LoopvizApp(TraceFile(timeline, title="blocking.py"))
    async with app.run_test(size=(120, 36)) as pilot:
        view = app.query_one(TimelineView)
        target = view.viewport()
        await pilot.click(TimelineView, offset=(18 + 20, 0))
        assert app.replay.time == int(target.t_start + 20.5 * target.ns_per_cell)
        assert view.render_line(0).text[18 + 20] == "▼"
        await pilot.press("less_than_sign", "less_than_sign")  # 1× → 0.5× → 0.25×
        assert app.replay.speed == 0.25
        before = app.replay.time
        await pilot.press("space")
        assert app.playing and "PLAYING 0.25x" in panel(app, "#status")
        await wait_until(pilot, lambda: app.replay.time > before)
        await pilot.press("space")
        assert not app.playing and "REPLAY 0.25x" in panel(app, "#status")
        await pilot.press("q")


def write_big_trace(path, tasks: int, steps: int, damage_at: int | None = None) -> int:
    """A trace of ``tasks`` tasks stepping ``steps`` times (2 events a step); returns its length.
    With ``damage_at``, the line of that event is replaced by one that is not JSON."""
    events = [{"t": task, "ev": "create", "task": task, "name": f"w{task}", "coro": "w",
               "parent": None, "where": "w.py:1"} for task in range(1, tasks + 1)]  # fmt: skip
    for step in range(steps):
        for task in range(1, tasks + 1):
            t = (step + 1) * MS + task * 100
            events += [{"t": t, "ev": "resume", "task": task},
                       {"t": t + 50, "ev": "suspend", "task": task,
                        "waiting_on": {"kind": "sleep", "label": "sleep 0"}}]  # fmt: skip
    events.append({"t": (steps + 2) * MS, "ev": "end", "exit_code": 0, "error": None})
    writer = TraceWriter(path, {"python": "3.11.7", "pid": 1, "loop": "asyncio"})
    writer.write(events)
    writer.close()
    if damage_at is not None:
        lines = path.read_bytes().split(b"\n")
        lines[damage_at + 1] = b"{not json"
        path.write_bytes(b"\n".join(lines))
    return len(events)


async def test_a_big_trace_is_shown_while_it_loads_and_ends_at_its_last_event(tmp_path):
    path = tmp_path / "big.jsonl"
    total = write_big_trace(path, tasks=50, steps=3 * LOAD_BATCH // 100 + 10)  # 4 batches
    loader = TraceLoader(path)
    assert loader.load(LOAD_BATCH) and len(loader.timeline.events) == LOAD_BATCH
    app = LoopvizApp(TraceFile.loading(loader, title="big", trace_path=path))
    shown_while_loading = []  # (events in, the header) each time the app asks for a batch
    load = loader.load

    def load_and_look(count: int | None = None) -> bool:
        shown_while_loading.append((len(loader.timeline.events), panel(app, "#status")))
        return load(count)

    loader.load = load_and_look
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: loader.done)
        await pilot.pause()
        # batch by batch, the part loaded so far was on screen; after the first frame the
        # cursor follows its last event
        assert [n for n, _status in shown_while_loading] == list(
            range(LOAD_BATCH, total, LOAD_BATCH)
        )
        for i, (loaded, status) in enumerate(shown_while_loading):
            assert f"LOADING {loaded:,} events" in status and f"/{loaded} " in status
            assert i == 0 or f" {loaded}/{loaded} " in status
        assert len(app.timeline.events) == total
        assert app.replay.index == total - 1 and app.replay.event.ev == "end"
        assert "LOADING" not in panel(app, "#status")
        assert f"{total}/{total}" in panel(app, "#status")
        assert not app.notices


async def test_a_damaged_line_deep_in_a_big_trace_keeps_what_came_before(tmp_path):
    path = tmp_path / "damaged.jsonl"
    write_big_trace(path, tasks=50, steps=LOAD_BATCH // 100 + 10, damage_at=LOAD_BATCH + 500)
    loader = TraceLoader(path)
    loader.load(LOAD_BATCH)
    app = LoopvizApp(TraceFile.loading(loader, title="damaged", trace_path=path))
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: loader.done)
        await pilot.pause()
        assert len(app.timeline.events) == LOAD_BATCH + 500
        assert app.timeline.end_t == app.timeline.times[-1]
        assert "TRUNCATED" in panel(app, "#status")
        assert any("not JSON" in notice for notice in app.notices)


def test_a_damaged_small_trace_replays_up_to_its_damage(tmp_path):
    """The rule of docs/trace-format.md: what came before a damaged line stays replayable, even
    when the damage is among the events read before the viewer opens."""
    from loopviz import cli

    path = tmp_path / "damaged.jsonl"
    write_big_trace(path, tasks=2, steps=3, damage_at=4)
    loader = cli._start_loading(str(path))
    assert len(loader.timeline.events) == 4 and loader.done and loader.trace.truncated
    assert loader.error == f"{path} line 6 is not JSON: b'{{not json'."
    write_big_trace(path, tasks=2, steps=3, damage_at=0)
    with pytest.raises(cli.UsageError, match="line 2 is not JSON"):
        cli._start_loading(str(path))


def test_the_replay_command_suggested_on_quitting_runs_as_the_user_typed_loopviz(monkeypatch):
    from loopviz import cli

    for typed_as, suggested in [(".venv/bin/loopviz", ".venv/bin/loopviz"),
                                ("/my venv/bin/loopviz", "'/my venv/bin/loopviz'"),
                                ("/src/loopviz/__main__.py", "loopviz")]:  # fmt: skip
        monkeypatch.setattr("sys.argv", [typed_as, "scenarios/blocking.py"])
        assert cli._as_typed() == suggested
