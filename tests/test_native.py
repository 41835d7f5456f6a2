"""The recorder's two cores: the native one (C) and the pure-Python fallback.

Every other recorder test runs on the core in use (the native one by default; CI runs them again
with ``LOOPVIZ_RECORDER=python``). These check the choice itself, the one-line notice, the
native event buffer's frames against the pure-Python ones, and that the proxy leaks nothing.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import os
import subprocess
import sys
import tracemalloc

import msgspec

from conftest import recorded_loop
from loopviz import wire
from loopviz.recorder import core, loops, proxy, writer

WANTS_PYTHON = os.environ.get(core.SWITCH, "").strip().lower() == "python"


def test_the_native_core_is_built_and_used_unless_python_is_asked_for(record):
    """``pip install -e .`` builds it here (CI too); the recorded task's coroutine is the proxy
    of the core in use."""
    rec = record(
        """
        import asyncio, collections.abc, inspect

        async def main():
            proxy = asyncio.current_task().get_coro()
            print(type(proxy).__module__)
            print(isinstance(proxy, collections.abc.Coroutine), asyncio.iscoroutine(proxy))
            print(proxy.__qualname__, inspect.getcoroutinestate(proxy), proxy.cr_code.co_name)

        asyncio.run(main())
        """
    )
    output = "".join(e["text"] for e in rec.events if e["ev"] == "output")
    facts = "True True\nmain CORO_RUNNING main\n"
    if WANTS_PYTHON:
        assert output == "loopviz.recorder.proxy\n" + facts
    else:
        assert core.native is not None, core.why_not_native
        assert output == "loopviz.recorder._native\n" + facts


FREE_THREADED = (
    "import sysconfig\n"
    "real = sysconfig.get_config_var\n"
    "sysconfig.get_config_var = lambda name: 1 if name == 'Py_GIL_DISABLED' else real(name)\n"
)


def _choice(
    env_value: str | None, block_native: bool = False, free_threaded: bool = False
) -> subprocess.CompletedProcess:
    """What a fresh interpreter's core.py decides, as (native used, notice, refusal) lines."""
    probe = (
        "import sys\n"
        + ("sys.modules['loopviz.recorder._native'] = None\n" if block_native else "")
        + (FREE_THREADED if free_threaded else "")
        + "from loopviz.recorder import core\n"
        "print(core.native is not None)\n"
        "print(repr(core.notice()))\n"
        "print(repr(core.refusal()))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != core.SWITCH}
    if env_value is not None:
        env[core.SWITCH] = env_value
    return subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
    )


def test_without_the_extension_the_python_recorder_is_chosen_with_a_one_line_notice():
    native, notice, refusal = _choice(None, block_native=True).stdout.splitlines()
    assert native == "False"
    assert notice == repr(
        "loopviz: recording with the pure-Python recorder (the native core is not built for "
        "this Python); it slows the program down more. LOOPVIZ_RECORDER=python chooses it "
        "without this notice.\n"
    )
    assert refusal == "''"


def test_a_free_threaded_python_records_with_the_python_recorder_and_says_why():
    native, notice, _refusal = _choice(None, free_threaded=True).stdout.splitlines()
    assert native == "False"
    assert "(this Python is free-threaded, which the native core does not support)" in notice


def test_the_switch_forces_the_python_recorder_without_a_notice():
    assert _choice("python").stdout.splitlines() == ["False", "''", "''"]


def test_requiring_the_native_core_where_it_is_missing_is_refused_in_one_line():
    native, _notice, refusal = _choice("native", block_native=True).stdout.splitlines()
    assert native == "False"
    assert refusal == repr(
        "loopviz: LOOPVIZ_RECORDER=native, but the native core is not built for this Python.\n"
    )
    _n, _notice, refusal = _choice("fast").stdout.splitlines()
    assert refusal == repr("loopviz: LOOPVIZ_RECORDER is 'fast'; it can be 'native' or 'python'.\n")


def test_a_refused_recording_ends_the_child_with_that_line_and_no_traceback(tmp_path):
    script = tmp_path / "hello.py"
    script.write_text("print('never runs')\n")
    env = {**os.environ, core.SWITCH: "fast"}
    read_end, write_end = os.pipe()
    child = subprocess.run(
        [sys.executable, "-m", "loopviz.recorder", "--events-fd", str(write_end), str(script)],
        capture_output=True, text=True, env=env, pass_fds=(write_end,),
    )  # fmt: skip
    os.close(read_end)
    os.close(write_end)
    assert child.returncode == 2
    assert child.stdout == ""
    assert child.stderr == "loopviz: LOOPVIZ_RECORDER is 'fast'; it can be 'native' or 'python'.\n"


# Every kind of value an event holds, at the edges of each msgpack form.
EDGE_VALUES = [
    0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, 2**64 - 1,
    -1, -32, -33, -128, -129, -32768, -32769, -2**31, -2**31 - 1, -2**63,
    None, True, False, 1.5, "", "x" * 31, "x" * 32, "é" * 200, "y" * 70_000,
    [], [1, 2, 3], list(range(70_000)), [-1, "mixed", None],
]  # fmt: skip


def test_the_native_buffer_writes_the_frames_the_python_buffer_writes():
    native_core = importlib.import_module("loopviz.recorder._native")  # whichever core is used
    native_core.configure(
        record_suspend=proxy.record_suspend,
        record_return=proxy.record_return,
        record_raise=proxy.record_raise,
        record_block=proxy.record_block,
        wakeup=loops.record_wakeup,
        encode=msgspec.msgpack.encode,  # floats and ints past int64, as the recorder sets it
        asyncio=asyncio,
        asyncio_dir=os.path.dirname(asyncio.__file__) + os.sep,
    )
    native, python = native_core.EventBuffer(), core.ListBuffer()
    events = [(wire.RESUME, 10, 1), (wire.OUTPUT, 11, "stdout", "hi\n"), tuple(EDGE_VALUES)]
    for buffer in (native, python):
        for event in events:
            buffer.extend(event)
    assert len(native) == len(python) == 3 + 4 + len(EDGE_VALUES)
    frames = [buffer.frame([12345, "head"]) for buffer in (native, python)]
    assert len(native) == len(python) == 0
    decoded = [msgspec.msgpack.decode(frame[wire.FRAME_HEADER.size :]) for frame in frames]
    assert decoded[0] == decoded[1] == [12345, "head", *(item for e in events for item in e)]
    for frame in frames:
        assert wire.FRAME_HEADER.unpack(frame[: wire.FRAME_HEADER.size])[0] == len(frame) - 4


def memory_held() -> int:
    """The bytes tracemalloc sees held, but for the hash table of asyncio's registry of tasks (a
    WeakSet): it keeps the size the peak of live tasks and dead references gave it, so one run in
    a few ends with it a size larger, which is no leak (its entries are the count checked)."""
    weak_sets = tracemalloc.Filter(False, "*/_weakrefset.py")
    held = tracemalloc.take_snapshot().filter_traces([weak_sets])
    return sum(trace.size for trace in held.traces)


def test_hundreds_of_thousands_of_tasks_leave_memory_and_objects_flat():
    """Each task's proxy, its coroutine and its events are freed once the writer sent them: the
    process's Python objects and traced memory do not grow with the number of tasks."""
    sink = os.open(os.devnull, os.O_WRONLY)
    recorder = writer.Recorder(sink, 100_000_000, flush_interval=0.001)
    recorder.start()
    loop = recorded_loop(recorder)

    async def step(i: int) -> int:
        await asyncio.sleep(0)
        return i

    async def batch() -> None:
        await asyncio.gather(*(step(i) for i in range(10_000)))

    def run_batches(n: int) -> None:
        for _ in range(n):
            loop.run_until_complete(batch())
            recorder.drain()

    try:
        run_batches(3)  # caches and buffers reach their size
        gc.collect()
        tracemalloc.start()
        objects_before = len(gc.get_objects())
        memory_before = memory_held()
        run_batches(20)  # 200,000 tasks
        gc.collect()
        objects_after = len(gc.get_objects())
        memory_after = memory_held()
    finally:
        tracemalloc.stop()
        recorder.finish(0, None)
        loop.close()
        os.close(sink)
    assert objects_after - objects_before < 200
    assert memory_after - memory_before < 200_000  # under a byte a task
