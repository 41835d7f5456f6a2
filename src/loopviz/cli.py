"""Command line: ``loopviz SCRIPT`` (live app), ``loopviz record SCRIPT -o TRACE`` (headless).

Every problem a user can cause (a missing script, an unwritable trace path) ends here as one
clear sentence on stderr and a non-zero exit status, never as a traceback from loopviz.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from loopviz import __version__
from loopviz.events import AnyEvent, Output

if TYPE_CHECKING:  # (the commands import what they use when run: loopviz starts fast)
    from loopviz.model import Timeline
    from loopviz.painter import Theme
    from loopviz.session import Session, Target
    from loopviz.trace import Trace, TraceLoader
    from loopviz.ui.app import LoopvizApp

COMMANDS = ("record", "replay", "list", "export", "compare", "serve")


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
    parser.add_argument("-m", dest="module", metavar="MODULE",
                        help="run a module as python -m does, instead of a script")  # fmt: skip
    parser.add_argument("script", nargs="?", help="the asyncio program to run (any Python script)")
    parser.epilog = (parser.epilog or "") + " Arguments after -- go to the script."


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse loopviz's own options anywhere before ``--``; what follows ``--`` is the script's."""
    if "--" in argv:
        split = argv.index("--")
        own, script_args = argv[:split], argv[split + 1 :]
    else:
        own, script_args = argv, []
    options, unknown = parser.parse_known_args(own)
    if unknown:  # most often the script's own options, given without the -- before them
        parser.error(f"unrecognized arguments: {' '.join(unknown)} (the script's own arguments "
                     f"go after --: {parser.prog} [options] script.py -- {' '.join(unknown)})")
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


def _theme(options: argparse.Namespace) -> Theme:
    from loopviz.painter import ASCII_THEME, CLASSROOM_THEME, DEFAULT_THEME

    if options.classroom:
        return CLASSROOM_THEME
    if options.ascii or os.environ.get("NO_COLOR"):
        return ASCII_THEME
    return DEFAULT_THEME


def _run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loopviz",
        description="Run an asyncio program and watch its event loop live.",
        epilog="Other commands: record SCRIPT -o TRACE (headless), replay TRACE, "
        "export TRACE --format FORMAT -o OUT, compare A B, serve SCRIPT_OR_TRACE, "
        "list (the scenarios); loopviz COMMAND --help for each. With no arguments, loopviz "
        "offers the scenarios to choose from.",
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


def _default_trace_path(target: Target) -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = cache / "loopviz" / "traces"
    folder.mkdir(parents=True, exist_ok=True)
    stem = str(target.script) if target.module else target.script.stem
    return folder / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"


def _target(options: argparse.Namespace) -> Target:
    from loopviz.session import Target

    if options.module and options.script:
        raise UsageError("give a script or -m MODULE, not both (arguments for it go after --).")
    if options.module:
        return Target(Path(options.module), options.args, module=True)
    if not options.script:
        raise UsageError("give a script to run, or -m MODULE.")
    return Target(_check_script(options.script), options.args)


def _session(
    options: argparse.Namespace, trace: Path, target: Target | None = None, live: bool = True
) -> Session:
    from loopviz.session import Session

    target = target or _target(options)
    return Session(target, trace, block_threshold=options.block_threshold, live_model=live)


def cmd_record(argv: list[str]) -> int:
    from loopviz.summary import summarize

    options = _parse(_record_parser(), argv)
    session = _session(options, _check_output(options.output), live=False)
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


def _echo_output(events: list[AnyEvent]) -> None:
    """Pass the scenario's own output through, as if it ran without loopviz."""
    for event in events:
        if isinstance(event, Output):
            stream = sys.stderr if event.stream == "stderr" else sys.stdout
            stream.write(event.text)
            stream.flush()


def cmd_run(argv: list[str]) -> int:
    options = _parse(_run_parser(), argv)
    target = _target(options)
    _require_terminal(f"loopviz record {target.label} -o trace.jsonl")
    trace = _check_output(options.output) if options.output else _default_trace_path(target)
    session = _session(options, trace, target)

    from loopviz.catalogue import find
    from loopviz.runs import LiveRecording
    from loopviz.ui.app import LoopvizApp

    scenario = None if target.module else find(target.script)
    app = LoopvizApp(LiveRecording(session), theme=_theme(options), scenario=scenario)
    return run_live(app, session, target.label)


def run_live(app: LoopvizApp, session: Session, label: str, headless: bool = False) -> int:
    """Run the live app; whatever happens to it, stop the script and keep what was recorded.

    A crash of the viewer exits 1 (never 0) and the trace keeps every event recorded before it:
    the session is drained to the end after the script is stopped."""
    try:
        app.run(headless=headless)
    finally:
        if session.process is not None:
            session.stop()
            session.wait()  # take in (and write) what the script sent before it stopped
    trace = session.trace_path
    saved = trace is not None and trace.exists() and not session.trace_error
    crashed = app.return_code not in (0, None)
    if crashed:
        kept = f"what was recorded is saved in {trace}" if saved else "nothing was recorded"
        print(f"loopviz: the viewer crashed (the error is above); the script was stopped and "
              f"{kept}.", file=sys.stderr)  # fmt: skip
        return app.return_code or 1
    if session.trace_error:
        print(f"loopviz: {session.trace_error}; the trace is incomplete.", file=sys.stderr)
        return 1
    if saved:
        again = f"{_as_typed()} replay {shlex.quote(str(trace))}"
        print(f"loopviz: trace saved to {trace}\n  replay it with: {again}", file=sys.stderr)
    timeline = session.timeline
    if timeline.exit_code:
        error = f" ({timeline.error})" if timeline.error else ""
        print(f"loopviz: {label} ended with exit status {timeline.exit_code}{error}",
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
    print(f"\nRun one with: {_own_command()} {scenarios[0].path}")
    return 0


def _own_command() -> str:
    """How to run loopviz again from here: ``.venv/bin/loopviz`` if that is the one running,
    so that the hint works without an activated virtual environment."""
    here = Path(sys.executable).parent / "loopviz"
    try:
        relative = here.relative_to(Path.cwd())
    except ValueError:
        return "loopviz" if os.environ.get("VIRTUAL_ENV") else str(here)
    return str(relative) if str(relative).startswith(".") else f"./{relative}"


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
    options = _replay_parser().parse_args(argv)
    loader = _start_loading(options.trace)
    _require_terminal("run the same command in a terminal window")

    from loopviz.catalogue import find
    from loopviz.runs import TraceFile
    from loopviz.ui.app import LoopvizApp

    trace = loader.trace
    title = Path(trace.header.get("scenario") or options.trace).name
    app = LoopvizApp(
        TraceFile.loading(loader, title, Path(options.trace)),
        scenario=find(trace.header.get("scenario")),
        theme=_theme(options),
    )
    app.run()
    return app.return_code or 0


def _require_terminal(instead: str) -> None:
    if not sys.stdout.isatty() and not os.environ.get("TEXTUAL_DRIVER"):  # (serve sets a driver)
        raise UsageError(f"the viewer needs a terminal (stdout is not one). Instead: {instead}")


def _start_loading(trace_path: str) -> TraceLoader:
    """Open a trace and load its first events here, so that a file that is not a trace is refused
    before the viewer starts; a big trace loads the rest while it is shown. A damaged line stops
    the loading there, and what came before it is replayed (the viewer says so), as for a trace
    cut short; damage before any event refuses the trace."""
    from loopviz.runs import LOAD_BATCH
    from loopviz.trace import TraceError, TraceLoader

    try:
        loader = TraceLoader(trace_path)
    except TraceError as exc:
        raise UsageError(str(exc)) from None
    loader.load(LOAD_BATCH)
    if loader.error and not loader.timeline.events:
        raise UsageError(loader.error)
    return loader


def _load(trace_path: str) -> tuple[Trace, Timeline]:
    from loopviz.trace import TraceError, load_timeline

    try:
        return load_timeline(trace_path)
    except TraceError as exc:
        raise UsageError(str(exc)) from None


def cmd_export(argv: list[str]) -> int:
    from loopviz import export

    parser = argparse.ArgumentParser(
        prog="loopviz export",
        description="Write a trace in another format: "
        + "; ".join(f"{name}: {what}" for name, (_, what) in export.FORMATS.items()) + ".",
    )
    parser.add_argument("trace", help="a trace written by loopviz")
    parser.add_argument("--format", choices=tuple(export.FORMATS), required=True)
    parser.add_argument("-o", "--output", required=True, metavar="FILE")
    parser.add_argument("--width", type=int, default=160, help="picture width in cells")
    parser.add_argument("--theme", choices=("default", "classroom", "ascii"), default="default")
    options = parser.parse_args(argv)
    trace, timeline = _load(options.trace)
    output = _check_output(options.output)
    title = Path(trace.header.get("scenario") or options.trace).name
    write, _ = export.FORMATS[options.format]
    try:
        write(timeline, output, export.Request(title, options.width, options.theme))
    except RuntimeError as exc:
        raise UsageError(str(exc)) from None
    print(f"loopviz: wrote {output}", file=sys.stderr)
    return 0


def _run_or_trace(path: str, threshold: float, scratch: Path) -> tuple[Trace, Timeline]:
    """A trace as it is, or a script recorded first (headless, its output passed through)."""
    if path.endswith((".jsonl", ".jsonl.gz", ".json")):
        return _load(path)
    from loopviz.session import Session, Target

    target = Target(_check_script(path), [])
    trace_path = scratch / f"{target.script.stem}-{len(list(scratch.iterdir()))}.jsonl"
    print(f"loopviz: recording {path}...", file=sys.stderr)
    session = Session(target, trace_path, block_threshold=threshold)
    session.start()
    session.wait()
    return _load(str(trace_path))


def cmd_compare(argv: list[str]) -> int:
    import tempfile

    from loopviz.compare import comparison_lines

    parser = argparse.ArgumentParser(
        prog="loopviz compare",
        description="Two runs stacked on one time axis, e.g. a blocking script and its fix. "
        "Each of A and B is a script (recorded first) or a trace.",
    )
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--block-threshold", type=float, default=0.1, metavar="SECONDS")
    _view_options(parser)
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        runs = [
            (Path(name).name, *_run_or_trace(name, options.block_threshold, Path(scratch)))
            for name in (options.a, options.b)
        ]
    print("\n".join(comparison_lines([(name, timeline) for name, _trace, timeline in runs])))
    if not sys.stdout.isatty():
        return 0
    from loopviz.ui.compare import CompareApp

    CompareApp([(name, timeline) for name, _trace, timeline in runs], _theme(options)).run()
    return 0


def cmd_serve(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="loopviz serve",
        description="Serve the app in a web browser (for a class that shares a browser tab). "
        "WARNING: whoever can reach the address can open the app, and with a script, run it "
        "on this machine. It listens on 127.0.0.1 (this machine only) unless --host says "
        "otherwise.",
    )
    parser.add_argument("target", help="a script to run live, or a trace to replay")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; 0.0.0.0 opens it to the "
                        "network: anyone who reaches it can run the script)")  # fmt: skip
    parser.add_argument("--port", type=int, default=8000)
    _view_options(parser)
    options = parser.parse_args(argv)
    try:
        from textual_serve.server import Server
    except ImportError:
        raise UsageError("serve needs textual-serve: pip install 'loopviz[serve]'") from None
    is_trace = options.target.endswith((".jsonl", ".jsonl.gz"))
    if is_trace:
        _load(options.target)  # refuse a bad trace here, not in every browser tab
        command = ["replay", options.target]
    else:
        _check_script(options.target)
        command = [options.target]
    flags = ["--classroom"] if options.classroom else ["--ascii"] if options.ascii else []
    # exec: the process the server holds (and signals) is the app itself, not a shell around it
    shell = "exec " + " ".join(shlex.quote(part) for part in [sys.executable, "-m", "loopviz",
                                                                *flags, *command])  # fmt: skip
    _end_pages_for_sure()
    server = Server(shell, host=options.host, port=options.port, title="loopviz")
    print(f"loopviz: serving {options.target} at http://{options.host}:{options.port} "
          "(Ctrl-C stops)", file=sys.stderr)  # fmt: skip
    server.serve()
    return 0


PAGE_GRACE = 3.0  # seconds a page's app has to quit when its page goes, before it is ended


def _end_pages_for_sure() -> None:
    """A page that closes or is abandoned must always end its app process (and so its script).

    textual-serve asks the app to quit and then waits for it without a limit: an app that does
    not answer (its loop stuck, or the quit lost) would run on, unseen. Here its stop() waits
    PAGE_GRACE seconds, then terminates the app, then kills it. Only this server process is
    changed (the one ``loopviz serve`` runs)."""
    import asyncio
    import contextlib

    from textual_serve import app_service, server

    class EndingAppService(app_service.AppService):
        async def stop(self) -> None:
            process = self._process
            with contextlib.suppress(TimeoutError, OSError):  # (ConnectionError is an OSError)
                await asyncio.wait_for(super().stop(), PAGE_GRACE)
            if process is None or process.returncode is not None:
                return
            for end in (process.terminate, process.kill):
                try:
                    end()
                    await asyncio.wait_for(process.wait(), PAGE_GRACE)
                    return
                except ProcessLookupError:
                    return
                except TimeoutError:
                    continue

    # server looks AppService up by name when a page opens, without exporting it: patch that name
    server.AppService = EndingAppService  # type: ignore[attr-defined]


def _as_typed() -> str:
    """loopviz as the user called it (``.venv/bin/loopviz``), so a command we suggest runs when
    pasted; ``loopviz`` when it was started some other way (``python -m loopviz``)."""
    called = sys.argv[0] if sys.argv else ""
    return shlex.quote(called) if Path(called).name == "loopviz" else "loopviz"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv.pop(0) if argv and argv[0] in COMMANDS else "run"
    handler = {
        "record": cmd_record, "replay": cmd_replay, "list": cmd_list, "export": cmd_export,
        "compare": cmd_compare, "serve": cmd_serve, "run": cmd_run,
    }[command]  # fmt: skip
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
