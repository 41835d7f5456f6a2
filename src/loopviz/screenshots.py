"""Regenerate ``screenshots/`` from the scenarios: ``python -m loopviz.screenshots``.

Every picture in the README comes from here, never from a hand-made capture: each scenario is
recorded headless, opened in the real app at a fixed terminal size, and exported as SVG (and PNG
when cairosvg is installed: ``pip install -e '.[docs]'``). A picture can show the run as it stood
at a given moment, e.g. mid-block, by feeding the model only the events up to that moment.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from loopviz.export import svg_to_png
from loopviz.model import Timeline
from loopviz.painter import THEMES
from loopviz.runs import TraceFile
from loopviz.session import Session, Target
from loopviz.trace import Trace, load_timeline
from loopviz.ui.app import LoopvizApp

SIZE = (120, 36)


@dataclass(frozen=True)
class Shot:
    name: str
    scenario: str
    at_seconds: float | None = None  # None: the finished run
    theme: str = "default"
    size: tuple[int, int] = SIZE


SHOTS = [
    Shot("blocking-mid-block", "blocking.py", at_seconds=2.6),
    Shot("blocking", "blocking.py"),
    Shot("blocking-classroom", "blocking.py", at_seconds=2.6, theme="classroom"),
    Shot("blocking-source-pane", "blocking.py", at_seconds=2.6, size=(160, 45)),
    Shot("gather", "gather.py", at_seconds=5.0),
    Shot("create_task", "create_task.py", at_seconds=0.45),
    Shot("gather_order", "gather_order.py"),
    Shot("offload", "offload.py", at_seconds=2.6),
    Shot("executors", "executors.py"),
    Shot("cpu_bound", "cpu_bound.py", at_seconds=1.1),
    Shot("semaphore", "semaphore.py", at_seconds=0.9),
    Shot("lock", "lock.py", at_seconds=0.45),
    Shot("producer_consumer", "producer_consumer.py", at_seconds=0.6),
    Shot("event_release", "event_release.py", at_seconds=1.02),
    Shot("context_managers", "context_managers.py"),
    Shot("async_iterators", "async_iterators.py", at_seconds=1.2),
    Shot("timeouts", "timeouts.py"),
    Shot("taskgroup", "taskgroup.py"),
    Shot("gather_exceptions", "gather_exceptions.py"),
    Shot("web_server", "web_server.py", at_seconds=0.8),
    Shot("ten_thousand", "ten_thousand.py", at_seconds=0.3),
    Shot("uvloop_compare", "uvloop_compare.py"),
]


async def _capture(
    app: LoopvizApp, path: Path, at_ns: int | None, size: tuple[int, int] = SIZE
) -> None:
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        if at_ns is not None:  # the replay cursor at that moment: the screen as it was then
            app.seek_time(at_ns)
            await pilot.pause()
        path.write_text(app.export_screenshot(title=f"loopviz: {path.stem}"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loopviz.screenshots")
    parser.add_argument(
        "--out", default="screenshots", help="folder to write (default: screenshots)"
    )
    parser.add_argument("--scenarios", default="scenarios", help="folder of scenarios")
    parser.add_argument("--only", nargs="*", help="names of the shots to make (default: all)")
    options = parser.parse_args(argv)
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    recorded: dict[str, Path] = {}  # scenario -> its trace, recorded once for all its shots
    timelines: dict[str, tuple[Trace, Timeline]] = {}  # scenario -> its trace, read once
    with tempfile.TemporaryDirectory() as scratch:
        for shot in SHOTS:
            if options.only and shot.name not in options.only:
                continue
            if shot.scenario not in recorded:
                script = Path(options.scenarios) / shot.scenario
                trace_path = recorded[shot.scenario] = Path(scratch) / f"{script.stem}.jsonl"
                session = Session(Target(script, []), trace_path)
                session.start()
                session.wait()
            if shot.scenario not in timelines:  # one per scenario: each app has its own cursor
                timelines[shot.scenario] = load_timeline(recorded[shot.scenario])
            trace, timeline = timelines[shot.scenario]
            at = None if shot.at_seconds is None else int(shot.at_seconds * 1e9)
            python = trace.header.get("python", "")
            app = LoopvizApp(TraceFile(timeline, shot.scenario, python),
                             theme=THEMES[shot.theme])  # fmt: skip
            svg = out / f"{shot.name}.svg"
            asyncio.run(_capture(app, svg, at, shot.size))
            made = [svg.name]
            if svg_to_png(svg.read_text(), svg.with_suffix(".png"), 1600):
                made.append(svg.with_suffix(".png").name)
            print(f"{shot.name}: {', '.join(made)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
