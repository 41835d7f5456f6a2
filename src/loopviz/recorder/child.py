"""Entry point of the child process: record one scenario, run as ``__main__``, report its end.

The parent starts ``python -m loopviz.recorder --events-fd N [--block-threshold S] SCRIPT ARGS...``.
The scenario must not notice: ``sys.argv`` is its own, its folder is first on ``sys.path``, stdin is
empty, and its own exceptions are printed as Python would print them, minus loopviz's frames.
"""

from __future__ import annotations

import argparse
import builtins
import importlib.machinery
import io
import os
import runpy
import sys
import traceback
import types
import zipfile
from collections.abc import Iterator
from typing import NoReturn

from loopviz.recorder import core
from loopviz.recorder.failures import report_internal_error
from loopviz.recorder.loops import LoopInstaller
from loopviz.recorder.streams import RecordedStream
from loopviz.recorder.writer import Recorder


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="loopviz.recorder")
    parser.add_argument("--events-fd", type=int, required=True)
    parser.add_argument("--block-threshold", type=float, default=0.1)
    parser.add_argument("--module", action="store_true", help="the target is a module name")
    parser.add_argument("script")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    return parser.parse_args(argv)


def _user_traceback(exc: BaseException) -> str:
    """The scenario's traceback as Python would print it, without loopviz's and runpy's frames."""
    report = traceback.TracebackException.from_exception(exc)
    for part in _chain(report):
        kept = [frame for frame in part.stack if not _is_ours(frame.filename)]
        part.stack = traceback.StackSummary.from_list(kept)
    return "".join(report.format())


def _chain(report: traceback.TracebackException) -> Iterator[traceback.TracebackException]:
    seen = set()
    pending = [report]
    while pending:
        part = pending.pop()
        if id(part) in seen:
            continue
        seen.add(id(part))
        yield part
        pending.extend(p for p in (part.__cause__, part.__context__) if p is not None)
        pending.extend(getattr(part, "exceptions", None) or ())


def _is_ours(filename: str) -> bool:
    return filename.startswith(_LOOPVIZ_DIR) or filename in ("<frozen runpy>", runpy.__file__)


_LOOPVIZ_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def run_script(script: str, args: list[str], module: bool = False) -> tuple[int, str | None]:
    """Run the scenario as ``__main__`` (a file, or a module as ``python -m`` does); return
    (exit code, error summary or None)."""
    sys.argv = [script, *args]
    # As plain Python: the script's folder (its links resolved) or the cwd first on the path,
    # and ``__file__`` absolute (3.9+), while ``sys.argv[0]`` stays as it was typed.
    sys.path[0] = os.getcwd() if module else os.path.dirname(os.path.realpath(script))
    try:
        if module:
            runpy.run_module(script, run_name="__main__", alter_sys=True)
        elif os.path.isfile(script) and not zipfile.is_zipfile(script):
            _run_file_as_main(os.path.abspath(script))
        else:  # a folder or zip with a __main__.py, as python runs them
            runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0, None
        if isinstance(code, int):
            return int(code), None  # sys.exit(False) exits 0, as a plain run does
        print(code, file=sys.stderr)
        return 1, None
    except BaseException as exc:  # the scenario's own failure, reported as Python would
        sys.stderr.write(_user_traceback(exc))
        return 1, f"{type(exc).__name__}: {exc}"
    return 0, None


def _run_file_as_main(path: str) -> None:
    """Run a script as ``python path`` does: a ``__main__`` module that stays in sys.modules,
    with an absolute ``__file__``. (``runpy.run_path`` would also rewrite ``sys.argv[0]``.)"""
    with io.open_code(path) as file:
        source = file.read()
    code = compile(source, path, "exec", dont_inherit=True)
    main_module = types.ModuleType("__main__")
    main_module.__dict__.update(
        __file__=path,
        __cached__=None,
        __loader__=importlib.machinery.SourceFileLoader("__main__", path),
        __spec__=None,
        __package__=None,
        __builtins__=builtins,
    )
    sys.modules["__main__"] = main_module
    exec(code, main_module.__dict__)


def main(argv: list[str] | None = None) -> int:
    options = _parse(sys.argv[1:] if argv is None else argv)
    refusal = core.refusal()
    if refusal:
        os.write(2, refusal.encode())
        return 2
    notice = core.notice()
    if notice:
        os.write(2, notice.encode())
    recorder = Recorder(options.events_fd, int(options.block_threshold * 1e9))
    recorder.start()
    LoopInstaller(recorder).patch_asyncio()

    original_stdout, original_stderr = sys.stdout, sys.stderr
    sys.stdout = RecordedStream(recorder, "stdout", original_stdout)
    sys.stderr = RecordedStream(recorder, "stderr", original_stderr)

    def restore_streams_in_forked_child() -> None:
        # A forked worker (ProcessPoolExecutor) has no writer thread: let it write to the fds.
        sys.stdout, sys.stderr = original_stdout, original_stderr
        recorder.events.clear()

    os.register_at_fork(after_in_child=restore_streams_in_forked_child)

    real_exit = os._exit

    def recorded_exit(status: int) -> NoReturn:
        if os.getpid() == recorder_pid:
            recorder.finish(status, None)
        real_exit(status)

    recorder_pid = os.getpid()
    os._exit = recorded_exit

    exit_code, error = run_script(options.script, options.args, options.module)
    sys.stdout, sys.stderr = original_stdout, original_stderr
    try:
        recorder.finish(exit_code, error)
    except Exception:
        report_internal_error()
    return exit_code
