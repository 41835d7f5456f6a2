"""Bad input, faults and hostile scripts: one clear message, no traceback of ours, nothing lost.

Each case runs the real command line in a subprocess, as a user would, and checks the exit
status, what was said, and what the trace kept.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import wait_until
from loopviz.runs import LiveRecording, TraceFile
from loopviz.session import Session, Target
from loopviz.trace import TraceError, read_trace
from loopviz.ui.app import LoopvizApp


def loopviz(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "loopviz", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout)  # fmt: skip


def script(tmp_path: Path, source: str, name: str = "prog.py") -> str:
    (tmp_path / name).write_text(textwrap.dedent(source))
    return name


def assert_ours_is_clean(result: subprocess.CompletedProcess) -> None:
    assert "loopviz/" not in result.stderr and 'File "<frozen runpy>"' not in result.stderr


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: "missing.py", "missing.py: no such file. Give the path of a Python script"),
        (lambda d: (d / "folder").mkdir() or "folder", "folder is a directory."),
        (lambda d: (d / "x.bin").write_bytes(b"\0\1\2") and "x.bin", "x.bin is not a Python"),
    ],
)
def test_a_path_that_is_not_a_script_gets_one_sentence(tmp_path, make, message):
    result = loopviz("record", make(tmp_path), "-o", "t.jsonl", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"loopviz: {message}") and result.stderr.count("\n") == 1
    assert not (tmp_path / "t.jsonl").exists()


def test_syntax_error_shows_the_scenarios_file_line_and_caret(tmp_path):
    name = script(tmp_path, "x = 1\ndef broken(:\n    pass\n")
    result = loopviz("record", name, "-o", "t.jsonl", cwd=tmp_path)
    assert result.returncode == 1
    plain = subprocess.run(
        [sys.executable, name], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert f'File "{tmp_path / name}", line 2\n    def broken(:\n               ^' in result.stderr
    assert result.stderr.startswith(plain.stderr)  # exactly what plain Python prints
    assert_ours_is_clean(result)
    assert read_trace(tmp_path / "t.jsonl").events[-1].error.startswith("SyntaxError")


def test_import_error_and_exceptions_show_only_the_scenarios_traceback(tmp_path):
    name = script(tmp_path, "import nonexistent_module_for_loopviz\n")
    result = loopviz("record", name, "-o", "t.jsonl", cwd=tmp_path)
    assert result.returncode == 1
    assert "ModuleNotFoundError: No module named 'nonexistent_module_for_loopviz'" in result.stderr
    assert_ours_is_clean(result)


def test_os_exit_keeps_the_status_and_what_came_before(tmp_path):
    name = script(tmp_path, 'import os\nprint("before", flush=True)\nos._exit(7)\n')
    result = loopviz("record", name, "-o", "t.jsonl", cwd=tmp_path)
    assert result.returncode == 7 and result.stdout == "before\n"
    events = read_trace(tmp_path / "t.jsonl").events
    assert [e.ev for e in events] == ["output", "end"] and events[-1].exit_code == 7


@pytest.mark.parametrize(
    ("ending", "status", "reason"),
    [
        ("os.kill(os.getpid(), signal.SIGKILL)", 128 + 9, "killed by SIGKILL"),
        ("ctypes.string_at(0)", 128 + 11, "killed by SIGSEGV"),
    ],
)
def test_a_killed_or_crashed_scenario_keeps_its_recording(tmp_path, ending, status, reason):
    name = script(tmp_path, f"""
        import asyncio, ctypes, os, signal

        async def main():
            for n in range(3):
                await asyncio.sleep(0.02)
                print("tick", n)
            await asyncio.sleep(0.05)  # let the recorder send what it has
            {ending}

        asyncio.run(main())
        """)  # fmt: skip
    result = loopviz("record", name, "-o", "t.jsonl", cwd=tmp_path)
    assert result.returncode == status
    assert f"({'the scenario was ' + reason})" in result.stderr
    trace = read_trace(tmp_path / "t.jsonl")
    assert [e.text for e in trace.events if e.ev == "output"] == [
        "tick 0\n", "tick 1\n", "tick 2\n"]  # fmt: skip
    assert trace.events[-1].error == f"the scenario was {reason}"


def test_ctrl_c_stops_a_scenario_that_never_ends_and_keeps_the_trace(tmp_path):
    name = script(tmp_path, """
        import asyncio

        async def main():
            n = 0
            while True:
                await asyncio.sleep(0.02)
                n += 1
                print("tick", n, flush=True)

        asyncio.run(main())
        """)  # fmt: skip
    process = subprocess.Popen([sys.executable, "-m", "loopviz", "record", name, "-o", "t.jsonl"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)  # fmt: skip
    assert process.stdout.readline() == "tick 1\n"  # it runs: now press Ctrl-C
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=30)
    assert "stopping the scenario (Ctrl-C); the trace is kept" in err
    assert "Traceback" not in err.split("stopping the scenario")[0]
    trace = read_trace(tmp_path / "t.jsonl")
    assert sum(e.ev == "output" for e in trace.events) >= 1
    assert trace.events[-1].ev == "end" and not trace.truncated


async def test_q_stops_a_scenario_blocked_forever_and_the_ui_stays_live(tmp_path):
    name = script(tmp_path, """
        import asyncio, time

        async def main():
            print("blocking forever")
            time.sleep(10**6)

        asyncio.run(main())
        """)  # fmt: skip
    session = Session(Target(tmp_path / name, []), tmp_path / "t.jsonl")
    app = LoopvizApp(LiveRecording(session))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: app.moment.block is not None)
        first = app.source.now()
        await pilot.pause(0.3)
        assert app.source.now() > first  # the clock runs on while the scenario is frozen
        assert "BLOCKED" in str(app.query_one("#status").content)
        await pilot.press("q")
        await wait_until(pilot, lambda: session.finished, limit=20)
    trace = read_trace(tmp_path / "t.jsonl")
    assert any(e.ev == "block_begin" and e.code == "time.sleep(10**6)" for e in trace.events)
    assert trace.events[-1].ev == "end"


def test_stdin_is_empty_and_odd_bytes_are_shown_replaced(tmp_path):
    name = script(tmp_path, """
        import sys
        print("read", repr(sys.stdin.readline()))
        sys.stdout.flush()
        sys.stdout.buffer.write(b"\\xff\\xfe not utf-8\\n")
        """)  # fmt: skip
    result = loopviz("record", name, "-o", "t.jsonl", cwd=tmp_path, timeout=20)
    assert result.returncode == 0
    texts = [e.text for e in read_trace(tmp_path / "t.jsonl").events if e.ev == "output"]
    assert texts == ["read ''\n", "\ufffd\ufffd not utf-8\n"]


def test_a_million_lines_of_output_are_all_kept(tmp_path):
    name = script(tmp_path, "for i in range(1_000_000):\n    print('line', i)\n")
    result = loopviz("record", name, "-o", "t.jsonl", cwd=tmp_path, timeout=120)
    assert result.returncode == 0 and result.stdout.count("\n") == 1_000_000
    trace = read_trace(tmp_path / "t.jsonl")
    output = [e for e in trace.events if e.ev == "output"]
    assert "".join(e.text for e in output).count("\n") == 1_000_000
    assert output[-1].text.endswith("line 999999\n")


def test_a_hundred_thousand_tasks(tmp_path):
    name = script(tmp_path, """
        import asyncio

        async def task():
            await asyncio.sleep(0.01)

        async def main():
            await asyncio.gather(*(task() for _ in range(100_000)))
            print("all done")

        asyncio.run(main())
        """)  # fmt: skip
    result = loopviz("record", name, "-o", "t.jsonl", cwd=tmp_path, timeout=120)
    assert result.returncode == 0 and result.stdout == "all done\n"
    assert "100001 tasks (100001 returned)" in result.stderr


def test_loops_in_threads_are_each_recorded_and_said(tmp_path):
    name = script(tmp_path, """
        import asyncio, threading

        async def work():
            await asyncio.sleep(0.02)

        threads = [threading.Thread(target=asyncio.run, args=(work(),)) for _ in range(2)]
        for thread in threads:
            thread.start()
        asyncio.run(work())
        for thread in threads:
            thread.join()
        """)  # fmt: skip
    result = loopviz("record", name, "-o", "t.jsonl", cwd=tmp_path)
    assert "3 event loops" in result.stderr
    events = read_trace(tmp_path / "t.jsonl").events
    loops = [e for e in events if e.ev == "loop"]
    assert sorted(e.id for e in loops) == [1, 2, 3]
    creates = [e for e in events if e.ev == "create" and not e.internal]
    assert sorted(e.loop for e in creates) == [1, 2, 3]


def test_a_program_without_asyncio_is_recorded_and_said(tmp_path):
    name = script(tmp_path, "print('plain')\n")
    result = loopviz("record", name, "-o", "t.jsonl", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout == "plain\n"
    assert "no asyncio event loop was started" in result.stderr


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("nowhere/t.jsonl", "cannot write nowhere/t.jsonl: the folder nowhere does not exist."),
        ("/proc/t.jsonl", "cannot write /proc/t.jsonl: No such file or directory."),
    ],
)
def test_an_output_folder_that_cannot_take_the_trace(tmp_path, output, message):
    name = script(tmp_path, "print('never runs')\n")
    result = loopviz("record", name, "-o", output, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr == f"loopviz: {message}\n"


def test_a_full_disk_loses_the_trace_not_the_run(tmp_path):
    name = script(tmp_path, "import asyncio\nasyncio.run(asyncio.sleep(0.01))\nprint('ran')\n")
    result = loopviz("record", name, "-o", "/dev/full", cwd=tmp_path)
    assert result.stdout == "ran\n" and result.returncode == 1
    said = "loopviz: could not write /dev/full: No space left on device; the trace is incomplete."
    assert result.stderr.strip().endswith(said)
    assert_ours_is_clean(result)


def test_the_live_view_without_a_terminal_says_what_to_do(tmp_path):
    name = script(tmp_path, "print('x')\n")
    result = loopviz(name, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        "loopviz: the viewer needs a terminal (stdout is not one). "
        "Instead: loopviz record prog.py -o trace.jsonl\n"
    )


async def test_a_terminal_too_small_says_so_instead_of_drawing_garbage():
    from conftest import REPO
    from loopviz.trace import load_timeline

    _trace, timeline = load_timeline(REPO / "tests" / "data" / "blocking.jsonl")
    app = LoopvizApp(TraceFile(timeline, title="blocking.py"))
    async with app.run_test(size=(50, 12)) as pilot:
        notice = app.query_one("#too-small")
        assert notice.display and "The terminal is 50×12" in str(notice.content)
        await pilot.resize_terminal(120, 36)
        await pilot.pause()
        assert not notice.display and app.query_one("#status").display


def test_a_trace_too_large_to_hold_is_refused_clearly(tmp_path):
    path = tmp_path / "huge.jsonl"
    path.write_text('{"format": "loopviz-trace", "version": 1}\n' + "x" * 5000)
    with pytest.raises(TraceError, match=r"too large to replay here \(the limit is"):
        read_trace(path, max_bytes=1000)


def test_an_orphaned_recorder_ends_its_scenario(tmp_path):
    # The script's name is on the recorder's command line: unique, so no other run's counts.
    name = script(tmp_path, """
        import asyncio

        async def main():
            while True:
                await asyncio.sleep(0.01)

        asyncio.run(main())
        """, name=f"orphan-{time.time_ns()}.py")  # fmt: skip
    command = [sys.executable, "-m", "loopviz", "record", name, "-o", "t.jsonl"]
    parent = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while not ((tmp_path / "t.jsonl").exists() and _running(name)):
            assert time.monotonic() < deadline, "the recorder never ran"
            time.sleep(0.05)
        parent.kill()  # the terminal closed, or someone killed loopviz
        parent.wait()
        deadline = time.monotonic() + 10
        while _running(name):
            assert time.monotonic() < deadline, "the recorder outlived loopviz"
            time.sleep(0.1)
    finally:  # pass or fail, nothing of this test is left running
        parent.kill()
        parent.wait()
        subprocess.run(["pkill", "-KILL", "-f", _recorder_of(name)])


def _running(name: str) -> bool:
    """A recorder runs the script ``name`` (a zombie has no command line, so it does not count)."""
    return subprocess.run(["pgrep", "-f", _recorder_of(name)], capture_output=True).returncode == 0


def _recorder_of(name: str) -> str:
    """The command line of a recorder running the script ``name``, as a pattern for pgrep."""
    return f"loopviz.recorder .* {name}$"
