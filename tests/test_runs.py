"""The app's run sources without a screen: a trace file (loaded, or loading a batch at a time)
and a live recording (here a stand-in session, so no child process is started)."""

from __future__ import annotations

from pathlib import Path

from conftest import REPO, typed
from loopviz.events import AnyEvent
from loopviz.model import Timeline
from loopviz.replay import Replay, moment_at
from loopviz.runs import LOAD_BATCH, LiveRecording, TraceFile
from loopviz.trace import TraceLoader, TraceWriter, load_timeline
from loopviz.viewstate import ViewState

BLOCKING = REPO / "tests" / "data" / "blocking.jsonl"


def write_trace(path: Path, events: int) -> None:
    """A trace of one task stepping ``events // 2`` times."""
    rows = [{"t": 0, "ev": "create", "task": 1, "name": "w", "coro": "w", "parent": None,
             "where": "w.py:1"}]  # fmt: skip
    for step in range(1, events // 2):
        rows += [{"t": step * 1000, "ev": "resume", "task": 1},
                 {"t": step * 1000 + 10, "ev": "suspend", "task": 1,
                  "waiting_on": {"kind": "sleep", "label": "sleep 0"}}]  # fmt: skip
    rows.append({"t": events * 1000, "ev": "end", "exit_code": 0, "error": None})
    writer = TraceWriter(path, {"python": "3.12.1", "pid": 1, "loop": "asyncio"})
    writer.write(typed(rows))
    writer.close()


def test_a_loading_trace_comes_in_a_batch_per_take_and_says_so_until_it_is_all_in(tmp_path):
    path = tmp_path / "big.jsonl"
    write_trace(path, 2 * LOAD_BATCH + 100)
    loader = TraceLoader(path)
    loader.load(LOAD_BATCH)
    source = TraceFile.loading(loader, "big", path)
    assert (source.python, source.live, source.done) == ("3.12.1", False, False)
    assert source.progress() == f"LOADING {LOAD_BATCH:,} events"
    assert source.news() == []  # nothing to say before it is all in
    assert source.take() == LOAD_BATCH and not source.done
    assert source.take() == 100 and source.done
    assert source.progress() == "" and source.take() == 0
    assert source.now() == source.timeline.end_t
    assert source.news() == [] and not source.truncated  # whole: nothing to say, ever


def test_a_damaged_trace_says_where_once_it_is_all_in(tmp_path):
    path = tmp_path / "damaged.jsonl"
    write_trace(path, 200)
    lines = path.read_bytes().split(b"\n")
    lines[101] = b"{not json"
    path.write_bytes(b"\n".join(lines))
    source = TraceFile.loading(TraceLoader(path))
    source.take()
    assert source.done and source.truncated
    (notice,) = source.news()
    assert notice.title == "Damaged trace" and notice.severity == "error"
    assert "not JSON" in notice.message and notice.message.endswith("up to that line.")
    assert source.news() == []  # said once


def test_a_truncated_trace_loaded_already_says_so_once():
    _trace, timeline = load_timeline(BLOCKING)
    source = TraceFile(timeline, "blocking.py", truncated=True)
    assert source.done and source.take() == 0
    assert [n.title for n in source.news()] == ["Truncated trace"]
    assert source.news() == []


class StandInSession:
    """What a LiveRecording reads of a Session, set by hand."""

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self.target = Path("blocking.py")
        self.trace_path: Path | None = Path("run.jsonl")
        self.process = None
        self.finished = False
        self.model_full = False
        self.max_model_events = 1000
        self.trace_error: str | None = None
        self.exit_code: int | None = None
        self.clock = 0
        self.arriving: list[AnyEvent] = []
        self.started = 0

    def start(self) -> None:
        self.started += 1

    def poll(self) -> list[AnyEvent]:
        arrived, self.arriving = self.arriving, []
        self.timeline.add_events(arrived)
        return arrived

    def now(self) -> int:
        return self.clock

    def header(self) -> dict:
        return {"python": "3.11.7"}


def test_a_live_recording_follows_the_clock_and_tells_each_news_once():
    session = StandInSession(Timeline())
    source = LiveRecording(session)  # a stand-in: what a LiveRecording reads, nothing more
    source.start()
    assert session.started == 1 and source.live and not source.done
    session.arriving = typed([{"t": 5, "ev": "create", "task": 1, "name": "a", "coro": "a",
                               "parent": None, "where": "x.py:1"}])  # fmt: skip
    session.clock = 2_000
    assert source.take() == 1 and source.now() == 2_000 and source.python == "3.11.7"
    session.clock = 1  # now is never before the last event
    assert source.take() == 0 and source.now() == 5
    assert source.news() == [] and source.kept() == ""
    session.model_full = True
    assert [n.title for n in source.news()] == ["View full"]
    session.trace_error = "disk full"
    session.finished, session.exit_code = True, 3
    news = source.news()
    assert [n.title for n in news] == ["Trace not saved", "Finished"]
    assert "exit status 3" in news[1].message and source.done
    assert source.news() == []
    assert source.kept() == "trace saved in run.jsonl"


def test_two_views_of_one_timeline_never_disturb_each_other():
    """The cursor is the viewer's, not the model's: a replay moving leaves every other view
    (another replay, a picture of the whole run) where it was."""
    _trace, timeline = load_timeline(BLOCKING)
    first, second = Replay(timeline), Replay(timeline)
    block = timeline.blocks[0]
    first.seek_time(block.start + timeline.block_threshold_ns + 1)
    second.seek_index(0)
    assert first.moment().block is not None and second.moment().block is None
    assert second.time == second.view.cursor == timeline.events[0].t
    whole = moment_at(timeline, ViewState.at_end(timeline), len(timeline.events) - 1)
    assert whole.status == "finished" and whole.view.cursor is None
    assert first.moment().t == block.start + timeline.block_threshold_ns + 1
