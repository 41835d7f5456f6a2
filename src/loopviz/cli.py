"""Command line: ``loopviz SCRIPT`` (live app), ``loopviz record SCRIPT -o TRACE`` (headless).

Every problem a user can cause (a missing script, an unwritable trace path) ends here as one
clear sentence on stderr and a non-zero exit status, never as a traceback from loopviz.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from loopviz import __version__

COMMANDS = ("record", "replay", "list")


class UsageError(Exception):
    """Something the user can fix; the message says what."""


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--block-threshold",
        type=float,
        default=0.1,
        metavar="SECONDS",
        help="a step or callback that runs longer than this blocks the loop (default: 0.1)",
    )
    parser.add_argument("script", help="the asyncio program to run (any Python script)")
    parser.epilog = (parser.epilog or "") + " Arguments after -- go to the script."


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse loopviz's own options anywhere before ``--``; what follows ``--`` is the script's."""
    if "--" in argv:
        split = argv.index("--")
        own, script_args = argv[:split], argv[split + 1 :]
    else:
        own, script_args = argv, []
    options = parser.parse_args(own)
    options.args = script_args
    return options


def _view_options(parser: argparse.ArgumentParser) -> None:
    looks = parser.add_mutually_exclusive_group()
    looks.add_argument("--classroom", action="store_true",
                       help="high contrast and lanes two rows high, for a projector")  # fmt: skip
    looks.add_argument(
        "--ascii", action="store_true",
        help="each state its own character, never colour alone (as NO_COLOR does)",
    )  # fmt: skip


def _theme(options: argparse.Namespace):
    from loopviz.ui.painter import ASCII_THEME, CLASSROOM_THEME, DEFAULT_THEME

    if options.classroom:
        return CLASSROOM_THEME
    if options.ascii or os.environ.get("NO_COLOR"):
        return ASCII_THEME
    return DEFAULT_THEME


def _run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loopviz",
        description="Run an asyncio program and watch its event loop live.",
        epilog="Other commands: loopviz record SCRIPT -o TRACE (headless recording), "
        "loopviz replay TRACE (step through a recording), loopviz list (the scenarios). "
        "With no arguments, loopviz offers the scenarios to choose from.",
    )
    parser.add_argument("--version", action="version", version=f"loopviz {__version__}")
    parser.add_argument(
        "-o", "--output", metavar="TRACE",
        help="where to save the trace (default: a new file under ~/.cache/loopviz/traces)",
    )  # fmt: skip
    _common_options(parser)
    _view_options(parser)
    return parser


def _record_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loopviz record",
        description="Run an asyncio program headless, write its trace and print a summary. "
        "Exits with the program's own exit status.",
    )
    parser.add_argument("-o", "--output", metavar="TRACE", required=True,
                        help="trace file to write (.jsonl, or .jsonl.gz to compress)")  # fmt: skip
    _common_options(parser)
    return parser


def _replay_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loopviz replay",
        description="Open a recorded trace (.jsonl or .jsonl.gz) and step through it.",
    )
    parser.add_argument("trace", help="a trace written by loopviz record or loopviz SCRIPT")
    _view_options(parser)
    return parser


def _check_script(path: str) -> Path:
    script = Path(path)
    if not script.exists():
        raise UsageError(f"{path}: no such file. Give the path of a Python script to run.")
    if script.is_dir():
        raise UsageError(f"{path} is a directory. Give the path of a Python script inside it.")
    if not os.access(script, os.R_OK):
        raise UsageError(f"{path} cannot be read (permission denied).")
    with open(script, "rb") as file:
        start = file.read(8192)
    if b"\0" in start:
        raise UsageError(f"{path} is not a Python script (it holds binary data).")
    return script


def _check_output(path: str) -> Path:
    output = Path(path)
    folder = output.parent
    if not folder.is_dir():
        raise UsageError(f"cannot write {path}: the folder {folder} does not exist.")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"cannot write {path}: the folder {folder} is not writable.")
    existed = output.exists()
    try:  # a folder can look writable and still refuse (read-only or special file systems)
        with open(output, "ab"):
            pass
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}.") from None
    if not existed and output.is_file():
        output.unlink()
    return output


def _default_trace_path(script: Path) -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = cache / "loopviz" / "traces"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{script.stem}-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"


def _session(options: argparse.Namespace, trace: Path):
    from loopviz.session import Session, Target

    target = Target(_check_script(options.script), options.args)
    return Session(target, trace, block_threshold=options.block_threshold)


def cmd_record(argv: list[str]) -> int:
    from loopviz.summary import summarize

    options = _parse(_record_parser(), argv)
    session = _session(options, _check_output(options.output))
    session.start()
    try:
        while not session.finished:
            _echo_output(session.poll(timeout=0.05))
    except KeyboardInterrupt:
        print("loopviz: stopping the scenario (Ctrl-C); the trace is kept.", file=sys.stderr)
        session.stop()
        session.wait()
    saved = None if session.trace_error else str(options.output)
    print(summarize(session.timeline, saved), file=sys.stderr)
    if session.trace_error:
        print(f"loopviz: {session.trace_error}; the trace is incomplete.", file=sys.stderr)
        return session.exit_code or 1
    return session.exit_code or 0


def _echo_output(events: list[dict]) -> None:
    """Pass the scenario's own output through, as if it ran without loopviz."""
    for event in events:
        if event["ev"] == "output":
            stream = sys.stderr if event["stream"] == "stderr" else sys.stdout
            stream.write(event["text"])
            stream.flush()


def cmd_run(argv: list[str]) -> int:
    options = _parse(_run_parser(), argv)
    script = _check_script(options.script)
    _require_terminal(f"loopviz record {options.script} -o trace.jsonl")
    trace = _check_output(options.output) if options.output else _default_trace_path(script)
    session = _session(options, trace)

    from loopviz.ui.app import LoopvizApp

    app = LoopvizApp(session, theme=_theme(options))
    try:
        app.run()
    finally:
        session.stop()
    if session.trace_error:
        print(f"loopviz: {session.trace_error}; the trace is incomplete.", file=sys.stderr)
        return 1
    print(f"loopviz: trace saved to {trace}", file=sys.stderr)
    timeline = session.timeline
    if timeline.exit_code:
        error = f" ({timeline.error})" if timeline.error else ""
        print(f"loopviz: {options.script} ended with exit status {timeline.exit_code}{error}",
              file=sys.stderr)  # fmt: skip
    return session.exit_code or 0


def cmd_list(argv: list[str]) -> int:
    import shutil
    import textwrap

    from loopviz.catalogue import catalogue

    argparse.ArgumentParser(
        prog="loopviz list", description="List the scenarios that ship with loopviz."
    ).parse_args(argv)
    scenarios = catalogue()
    if not scenarios:
        raise UsageError("no scenarios folder found: run from the loopviz checkout, or set "
                         "LOOPVIZ_SCENARIOS to the folder.")  # fmt: skip
    width = max(len(s.name) for s in scenarios)
    columns = max(shutil.get_terminal_size().columns, 60)
    indent = " " * (width + 2)
    for scenario in scenarios:
        print(f"{scenario.name:<{width}}  {scenario.concept}")
        if scenario.watch:
            watch = textwrap.fill(f"watch: {scenario.watch}", columns, initial_indent=indent,
                                  subsequent_indent=indent + "       ")  # fmt: skip
            print(watch)
    print(f"\nRun one with: loopviz {scenarios[0].path}")
    return 0


def cmd_pick() -> int:
    """``loopviz`` alone: choose a scenario from the catalogue, then run it live."""
    from loopviz.catalogue import catalogue

    scenarios = catalogue()
    if not scenarios:
        raise UsageError("give a script to run: loopviz SCRIPT (no scenarios folder found here).")
    _require_terminal("loopviz list, then loopviz record SCENARIO -o trace.jsonl")

    from loopviz.ui.picker import PickerApp

    chosen = PickerApp(scenarios).run()
    if chosen is None:
        return 0
    return cmd_run([str(chosen)])


def cmd_replay(argv: list[str]) -> int:
    from loopviz.trace import TraceError, load_timeline

    options = _replay_parser().parse_args(argv)
    try:
        trace, timeline = load_timeline(options.trace)
    except TraceError as exc:
        raise UsageError(str(exc)) from None
    _require_terminal("run the same command in a terminal window")

    from loopviz.ui.app import LoopvizApp

    app = LoopvizApp(
        timeline=timeline,
        title=Path(trace.header.get("scenario") or options.trace).name,
        python=trace.header.get("python", ""),
        trace_path=Path(options.trace),
        truncated=trace.truncated,
        theme=_theme(options),
    )
    app.run()
    return 0


def _require_terminal(instead: str) -> None:
    if not sys.stdout.isatty():
        raise UsageError(f"the viewer needs a terminal (stdout is not one). Instead: {instead}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv.pop(0) if argv and argv[0] in COMMANDS else "run"
    handler = {"record": cmd_record, "replay": cmd_replay, "list": cmd_list, "run": cmd_run}[
        command
    ]
    try:
        if command == "run" and not argv:
            return cmd_pick()
        return handler(argv)
    except UsageError as exc:
        print(f"loopviz: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `loopviz list | head`: the reader has all it wanted
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so the exit-time flush stays quiet
        return 0
    except OSError as exc:
        print(f"loopviz: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1
