"""Live latency: from an event in the child to the frame that shows it, and from a block to the
first frame that says BLOCKED, measured in the real app (headless, 120×36).

    python bench/live_latency.py [--runs 3]

The scenario keeps 20 tasks ticking every 10 ms for 3 s; one of them calls ``time.sleep(0.5)`` at
1.5 s. Every frame the app composes is stamped on the child's clock (parent and child share
``perf_counter_ns``), with how many events its model held and whether it showed a block. An
event's latency is the stamp of the first frame composed after the model took it in, minus the
event's own time. A block counts as one from the moment its step has run for the threshold
(100 ms): before that nothing, live, can tell it from a long step, so the block's latency is
measured from then, and from the step's start as well. ``tick`` is the app's work per live frame
(poll the session, feed the model, redraw the widgets), which must fit in a 60 Hz frame (16 ms),
and the app's CPU share is its process time over the run's wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import textwrap
import time
from pathlib import Path

from loopviz.runs import LiveRecording
from loopviz.session import Session, Target
from loopviz.ui.app import LoopvizApp

SCENARIO = textwrap.dedent(
    """
    import asyncio, time

    async def ticker(i):
        end = time.monotonic() + 3
        while time.monotonic() < end:
            await asyncio.sleep(0.01)

    async def blocker():
        await asyncio.sleep(1.5)
        time.sleep(0.5)

    async def main():
        await asyncio.gather(blocker(), *(ticker(i) for i in range(20)))

    asyncio.run(main())
    """
)


async def one_run(script: Path) -> dict:
    session = Session(Target(script, []), None)
    app = LoopvizApp(LiveRecording(session))
    timeline = session.timeline
    frames: list[tuple[int, int, bool]] = []  # (child clock, events in the model, block shown)
    ticks: list[float] = []
    compose_frame, tick = app._display, app._tick

    def display(screen, renderable) -> None:
        compose_frame(screen, renderable)
        if renderable is not None and not session.finished:
            shown = app.moment is not None and app.moment.block is not None  # what the frame says
            frames.append((session.now(), len(timeline.events), shown))

    def timed_tick() -> None:
        started = time.perf_counter()
        tick()
        ticks.append(time.perf_counter() - started)

    app._display = display
    app._tick = timed_tick
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    async with app.run_test(size=(120, 36)) as pilot:
        while not session.finished:
            await pilot.pause(0.05)
    cpu_share = (time.process_time() - cpu_before) / (time.perf_counter() - wall_before)
    latencies = []
    frame_index = 0
    for i, event in enumerate(timeline.events):
        while frame_index < len(frames) and frames[frame_index][1] <= i:
            frame_index += 1
        if frame_index == len(frames):
            break  # taken in as the run ended: no live frame after it
        latencies.append((frames[frame_index][0] - event.t) / 1e6)
    block = timeline.blocks[0]
    crossed = block.start + timeline.block_threshold_ns
    shown = next(t for t, _n, blocked in frames if blocked and t >= block.start)
    return {
        "latencies": latencies,
        "block_from_threshold": (shown - crossed) / 1e6,
        "block_from_start": (shown - block.start) / 1e6,
        "ticks": ticks,
        "cpu": cpu_share,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        script = Path(scratch) / "ticking.py"
        script.write_text(SCENARIO)
        runs = [asyncio.run(one_run(script)) for _ in range(options.runs)]
    latencies = sorted(ms for run in runs for ms in run["latencies"])
    ticks = sorted(s * 1e3 for run in runs for s in run["ticks"])

    def percentile(values: list[float], p: float) -> float:
        return values[min(len(values) - 1, int(len(values) * p))]

    print(f"{len(latencies):,} events over {options.runs} runs, app 120×36 headless")
    print(f"event → frame        p50 {percentile(latencies, 0.5):6.1f} ms   "
          f"p99 {percentile(latencies, 0.99):6.1f} ms   max {latencies[-1]:6.1f} ms")  # fmt: skip
    from_threshold = [run["block_from_threshold"] for run in runs]
    from_start = [run["block_from_start"] for run in runs]
    print(f"block → frame        {statistics.median(from_threshold):6.1f} ms after it passed the "
          f"threshold ({statistics.median(from_start):.1f} ms after the step began), median; "
          f"worst {max(from_threshold):.1f} ms")  # fmt: skip
    print(f"live tick            p50 {percentile(ticks, 0.5):6.1f} ms   "
          f"p99 {percentile(ticks, 0.99):6.1f} ms")  # fmt: skip
    cpu = statistics.median(run["cpu"] for run in runs)
    print(f"app CPU while live   {cpu:.0%} of one core (the app's process, scenario excluded)")


if __name__ == "__main__":
    main()
