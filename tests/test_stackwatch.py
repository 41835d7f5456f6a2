"""The native watchdog (``loopviz.recorder._stackwatch``): blocks inside C calls that hold the GIL
name the program's line that made the call, and watching loops never crashes or leaks.

The recorder tests run a script for real; the others drive the extension in-process, as the
recorder does: a slot per loop, attached on the loop's thread, its step start written through
``memoryview(slot)[0]``.
"""

from __future__ import annotations

import os
import platform
import sys
import sysconfig
import threading
import time

import pytest

from loopviz.recorder import watchdog

stackwatch = watchdog._stackwatch

# C code that holds the GIL for about 0.4 s on this machine, whatever its speed: the product of
# two huge ints (Karatsuba, time ~ size ** 1.585), sized from the fastest of seven small ones
# (load only makes the real one longer). An operator, not a call: CPython checks whether another
# thread wants the GIL at calls, not after an operator, so the Python watchdog cannot run between
# the product and the next call, and never sees the product's line by itself.
C_CALL_SCRIPT = """
import asyncio, time, timeit, uvloop

small = 3 ** 400_000
fastest = min(timeit.repeat(lambda: small * small, number=1, repeat=7))
big = 3 ** int(400_000 * (0.4 / fastest) ** (1 / 1.585))

async def ticker():
    for _ in range(20):
        await asyncio.sleep(0.02)

async def crunch():
    await asyncio.sleep(0.05)
    square = big * big
    {after}
    return square > 0

async def main():
    await asyncio.gather(ticker(), crunch())

{run}(main())
"""
C_LINE = 14  # square = big * big


def test_the_native_watchdog_is_built_where_it_can_be():
    """The README's install builds it on CPython 3.11 to 3.13 with a GIL: a failed build falls
    back silently (optional=True), so this is where it would be noticed."""
    can_build = (
        platform.python_implementation() == "CPython"
        and (3, 11) <= sys.version_info[:2] <= (3, 13)
        and not sysconfig.get_config_var("Py_GIL_DISABLED")
    )
    assert (stackwatch is not None) == can_build


needs_native = pytest.mark.skipif(stackwatch is None, reason="the extension cannot be built here")


def block_events(rec, task: int) -> list[dict]:
    return [e for e in rec.events if e.get("task") == task and e["ev"] in ("block_begin", "block")]


def task_named(rec, coro: str) -> int:
    [task] = [e["task"] for e in rec.events if e["ev"] == "create" and e["coro"] == coro]
    return task


@needs_native
@pytest.mark.parametrize("run", ["asyncio.run", "uvloop.run"])
def test_block_inside_a_c_call_names_the_line_that_made_it(record, tmp_path, run):
    """The step goes on after the C code (a sleep), so the Python watchdog's ``block_begin``
    comes while it still runs: both name the line that ran the C code, not the sleep after it
    (the only line the Python watchdog could see by itself)."""
    rec = record(C_CALL_SCRIPT.format(after="time.sleep(0.1)", run=run))
    crunch = task_named(rec, "crunch")
    line = f"{tmp_path / 'scenario.py'}:{C_LINE}"
    steps = [
        (e["ev"], e.get("where"), e.get("gil"))
        for e in rec.events
        if e.get("task") == crunch and e["ev"] not in ("create", "ready")
    ]
    assert steps == [
        ("resume", None, None),
        ("suspend", None, None),
        ("resume", None, None),
        ("block_begin", line, True),
        ("block", line, True),
        ("done", None, None),
    ]
    [block] = [e for e in rec.events if e["ev"] == "block"]
    assert {k: v for k, v in block.items() if k not in ("t", "start", "end")} == {
        "ev": "block",
        "task": crunch,
        "where": line,
        "code": "square = big * big",
        "stack": [f"{line} in crunch: square = big * big"],
        "gil": True,
    }
    assert block["end"] - block["start"] > 0.2e9


@needs_native
def test_a_step_that_ends_with_its_c_call_still_names_the_line(record, tmp_path):
    """The Python watchdog cannot look before the step's end: the block takes the native
    sample. (It may look between the coroutine's return and the Python proxy's step end: its
    ``block_begin`` then takes the native sample too.)"""
    rec = record(C_CALL_SCRIPT.format(after="", run="asyncio.run"))
    crunch = task_named(rec, "crunch")
    line = f"{tmp_path / 'scenario.py'}:{C_LINE}"
    *begins, block = block_events(rec, crunch)
    assert (block["ev"], block["where"], block["code"], block["gil"]) == (
        "block",
        line,
        "square = big * big",
        True,
    )
    assert [(b["ev"], b["where"], b["gil"]) for b in begins] in ([], [("block_begin", line, True)])


def test_without_the_native_watchdog_a_c_call_block_is_named_as_before(
    record, tmp_path, monkeypatch
):
    """The fallback where the extension is not built (hidden here): as before, the Python
    watchdog never saw the product's line, so the block names the function whose step it was."""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import sys\nsys.modules['loopviz.recorder._stackwatch'] = None\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(hide))
    shows_native = "import sys\nprint(sys.modules['loopviz.recorder._stackwatch'])\n"
    rec = record(C_CALL_SCRIPT.format(after="", run="asyncio.run") + shows_native)
    output = [e["text"] for e in rec.events if e["ev"] == "output" and e["stream"] == "stdout"]
    assert output == ["None\n"]
    crunch = task_named(rec, "crunch")
    *begins, block = block_events(rec, crunch)
    function = f"{tmp_path / 'scenario.py'}:{C_LINE - 2}"  # async def crunch():
    assert (block["where"], block["code"], block["stack"], block["gil"]) == (
        function,
        "",
        [f"{function} in crunch"],
        True,
    )
    # (the Python proxy's step may be seen past its coroutine's end: no line then)
    assert [(b["where"], b["gil"]) for b in begins] in ([], [("", True)])


# -- the extension in-process ----------------------------------------------------------------


@pytest.fixture
def native():
    """The native watcher, started with a 50 ms threshold; stopped (and joined) after."""
    origin = time.perf_counter_ns()
    stackwatch.start(
        origin_ns=origin, threshold_ns=50_000_000, stale_ns=30_000_000, interval_ns=2_000_000
    )
    yield origin
    stackwatch.stop()
    assert not stackwatch.stats()["running"]


def crunch_in_c() -> int:
    return sum(range(15_000_000))  # the line the sample must name


def run_step(slot, origin: int, step) -> int:
    """Attach ``slot`` on this thread and run ``step`` as a recorded step; its start."""
    slot.attach()
    start = time.perf_counter_ns() - origin
    memoryview(slot)[0] = start
    try:
        step()
    finally:
        memoryview(slot)[0] = 0
    return start


def in_thread(target) -> None:
    thread = threading.Thread(target=target)
    thread.start()
    thread.join()


@needs_native
def test_a_stack_is_read_while_c_code_holds_the_gil(native):
    slot = stackwatch.Slot()
    starts = []
    in_thread(lambda: starts.append(run_step(slot, native, crunch_in_c)))
    frames = slot.sample_of(starts[0])
    assert frames is not None
    filename, line, function, code_id, coroutine_id = frames[0]
    assert (filename, function, code_id) == (__file__, "crunch_in_c", id(crunch_in_c.__code__))
    assert coroutine_id == 0  # a function's frame, not a coroutine's
    assert line == crunch_in_c.__code__.co_firstlineno + 1
    assert [f[2] for f in frames[1:4]] == ["run_step", "<lambda>", "run"]
    assert slot.sample_of(starts[0] + 1) is None  # another step's start: nothing


@needs_native
def test_no_stack_is_read_while_the_gil_changes_hands(native):
    """A step running Python code lets the Python watchdog answer its bell (``beat``): the
    native one leaves it alone, and never reads a stack that is moving."""
    slot = stackwatch.Slot()
    done = threading.Event()

    def python_watchdog():
        while not done.is_set():
            if stackwatch.wait_bell(stackwatch.WATCHDOG_BELL, 0.01):
                stackwatch.beat()

    def busy_python():
        deadline = time.perf_counter() + 0.2
        while time.perf_counter() < deadline:
            pass

    beating = threading.Thread(target=python_watchdog)
    beating.start()
    before = stackwatch.stats()["samples"]
    starts = []
    in_thread(lambda: starts.append(run_step(slot, native, busy_python)))
    done.set()
    beating.join()
    assert stackwatch.stats()["samples"] == before
    assert slot.sample_of(starts[0]) is None


@needs_native
def test_a_thread_that_ends_while_watched_is_never_read_again(native):
    slots = [stackwatch.Slot() for _ in range(3)]

    def loop_thread():
        for slot in slots:
            slot.attach()
        memoryview(slots[0])[0] = 1  # a step "running" since the origin, never ended

    in_thread(loop_thread)
    assert [s.attached for s in slots] == [False, False, False]
    assert stackwatch.stats()["attached"] == 0
    time.sleep(0.1)  # the watcher runs past the threshold with the ended step's start still set
    assert slots[0].sample_of(1) is None


@needs_native
def test_many_loops_attach_detach_and_go_away(native):
    """Loops made and closed by the thousand (asyncio.run in a loop): no slot stays watched."""
    for _ in range(2000):
        slot = stackwatch.Slot()
        slot.attach()
        memoryview(slot)[0] = 5
        slot.detach()
        slot.attach()  # closed while attached: deallocation detaches it
        del slot
    assert stackwatch.stats()["attached"] == 0
    kept = [stackwatch.Slot() for _ in range(200)]
    for each in kept:
        each.attach()
    assert stackwatch.stats()["attached"] == 200
    del kept, each
    assert stackwatch.stats()["attached"] == 0


@needs_native
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_has_no_watcher_and_the_parent_keeps_its_own(native):
    slot = stackwatch.Slot()
    slot.attach()
    pid = os.fork()
    if pid == 0:  # the child: only this thread survived; nothing is watched, nothing hangs
        stats = stackwatch.stats()
        ok = not stats["running"] and stats["attached"] == 0 and not slot.attached
        stackwatch.start(origin_ns=native, threshold_ns=1, stale_ns=1, interval_ns=1_000_000)
        stackwatch.stop()
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert slot.attached and stackwatch.stats()["running"]
    slot.detach()
    starts = []
    other = stackwatch.Slot()
    in_thread(lambda: starts.append(run_step(other, native, crunch_in_c)))
    assert other.sample_of(starts[0]) is not None  # the parent's watcher still reads stacks


@needs_native
def test_slot_buffer_is_two_writable_int64s():
    slot = stackwatch.Slot()
    view = memoryview(slot)
    assert (view.format, view.itemsize, view.shape, view.readonly) == ("q", 8, (2,), False)
    view[0], view[1] = 2**63 - 1, 7
    assert (slot[0], slot[1]) == (2**63 - 1, 7)
    with pytest.raises(IndexError):
        slot[2] = 1


# -- bells: the native thread wakes the Python threads only when there is work ----------------


@needs_native
def test_the_watchdogs_bell_rings_once_per_step_past_the_threshold(native):
    """No ring while nothing runs or a step is young; one ring (with its time) when the step
    passes the threshold, none more for it; then one for callbacks running past it."""
    bell = stackwatch.WATCHDOG_BELL
    slot = stackwatch.Slot()
    slot.attach()
    stackwatch.wait_bell(bell, 0)  # (a ring an earlier test left unanswered)
    assert stackwatch.wait_bell(bell, 0.08) == 0  # attached, nothing running
    now = time.perf_counter_ns() - native
    slot[0] = now  # a step began now: young for 50 ms
    assert stackwatch.wait_bell(bell, 0.02) == 0
    rung = stackwatch.wait_bell(bell, 1.0)
    assert rung >= now + 50_000_000
    assert stackwatch.wait_bell(bell, 0.08) == 0  # the same step: rung once
    slot[0] = 0
    slot[1] = time.perf_counter_ns() - native - 60_000_000  # callbacks, running for 60 ms
    assert stackwatch.wait_bell(bell, 1.0) > 0
    slot[1] = 0
    slot.detach()


@needs_native
def test_the_writers_bell_rings_when_no_frame_went_out_for_a_while():
    origin = time.perf_counter_ns()
    stackwatch.start(origin_ns=origin, threshold_ns=10**12, stale_ns=10**9,
                     interval_ns=2_000_000, flush_stale_ns=40_000_000)  # fmt: skip
    try:
        bell = stackwatch.WRITER_BELL
        stackwatch.wait_bell(bell, 0)  # (a ring left from before)
        stackwatch.flushed()
        sent = time.perf_counter_ns() - origin
        assert stackwatch.wait_bell(bell, 0.02) == 0  # a frame went out 20 ms ago: not yet
        assert stackwatch.wait_bell(bell, 1.0) >= sent + 40_000_000
        assert stackwatch.wait_bell(bell, 0.1) == 0  # rung once until the next frame
        stackwatch.flushed()
        assert stackwatch.wait_bell(bell, 1.0) > 0
    finally:
        stackwatch.stop()


@needs_native
def test_loops_that_close_and_threads_that_end_leave_nothing_watched(record):
    """Loops run one after another, on the main thread and on threads that end, then a thread
    left running its loop: the native watchdog watches exactly the loops running now."""
    rec = record(
        """
        import asyncio, threading
        from loopviz.recorder import _stackwatch

        async def attached():
            return _stackwatch.stats()["attached"]

        def in_thread():
            print("thread", asyncio.run(attached()))

        for _ in range(3):
            print("main", asyncio.run(attached()))
            thread = threading.Thread(target=in_thread)
            thread.start()
            thread.join()

        loop = asyncio.new_event_loop()
        running = threading.Thread(target=loop.run_forever)
        running.start()

        async def both():
            await asyncio.sleep(0.05)
            return _stackwatch.stats()["attached"]

        print("with a loop in a thread", asyncio.run(both()))
        loop.call_soon_threadsafe(loop.stop)
        running.join()
        print("after", _stackwatch.stats()["attached"])
        """
    )
    output = "".join(e["text"] for e in rec.events if e["ev"] == "output")
    assert output == "main 1\nthread 1\n" * 3 + "with a loop in a thread 2\nafter 0\n"


# -- reading a stack that moves: never a fault ------------------------------------------------
#
# The watcher reads the loop thread's frames while that thread runs on. A stale heartbeat is not
# proof that the thread sits inside a C call: the Python watchdog is also late when it is not
# scheduled (a loaded machine), and a C call may return while the stack is read. The thread then
# pops frames as they are read, and popping the last frame of a chunk of its frame stack unmaps
# the chunk: the walk used to dereference it and fault, killing the recorded program (2 runs in
# about 250 of the worst-case benchmark under `loopviz record`). Every read now goes through
# process_vm_readv, which fails where memory is gone.

needs_safe_reads = pytest.mark.skipif(
    stackwatch is None or not sys.platform.startswith("linux"),
    reason="the watcher reads stacks only where it can read memory without a fault (Linux)",
)


def unmapped_address() -> int:
    """An address where memory was, and is no more (as a frame-stack chunk the thread freed)."""
    import ctypes
    import mmap

    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]  # fmt: skip
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
    address = libc.mmap(None, 1 << 16, mmap.PROT_READ | mmap.PROT_WRITE, flags, -1, 0)
    assert address not in (None, ctypes.c_void_p(-1).value)
    assert libc.munmap(address, 1 << 16) == 0
    return address


@needs_safe_reads
def test_frames_that_are_gone_or_garbage_are_read_without_a_fault():
    """What the watcher finds where a frame was: unmapped memory, the null page, or bytes that are
    no frame (every pointer in them unreadable). The walk stops or skips; it never faults."""
    import ctypes

    assert stackwatch.read_stack(unmapped_address()) == ()
    assert stackwatch.read_stack(8) == ()
    garbage = (ctypes.c_char * 4096).from_buffer(bytearray(b"\xff" * 4096))
    assert stackwatch.read_stack(ctypes.addressof(garbage)) == ()


def _read_here():
    return stackwatch.read_stack(), _frames_from(sys._getframe())  # (one line: the same lineno)


def _frames_from(frame) -> list[tuple[str, int, str, int]]:
    frames = []
    while frame is not None:
        code = frame.f_code
        frames.append((code.co_filename, frame.f_lineno, code.co_name, id(code)))
        frame = frame.f_back
    return frames


@needs_safe_reads
def test_the_walk_reads_what_the_interpreter_shows():
    """Each frame's file, line (from the code's location table, read as copies), function and
    code, and the coroutine whose frame it is, as the interpreter gives them."""
    # A function long enough that its location table is read in several pieces, with lines far
    # apart (the long entry form), and the frames of a coroutine.
    body = "".join(f"    x{i} = {i}\n" + "\n" * (i % 7) * 40 for i in range(300))
    namespace: dict = {"read_here": _read_here}
    exec(compile(f"def big():\n{body}    return read_here()\n", "<big>", "exec"), namespace)

    async def coroutine():
        return namespace["big"]()

    coro = coroutine()
    try:
        coro.send(None)
    except StopIteration as stop:
        frames, expected = stop.value
    assert [f[:4] for f in frames] == expected[: len(frames)]
    assert len(frames) == min(len(expected), 48)
    assert [f[2] for f in frames[:3]] == ["_read_here", "big", "coroutine"]
    assert [f[4] for f in frames[:3]] == [0, 0, id(coro)]
    assert frames[1][1] == namespace["big"].__code__.co_firstlineno + body.count("\n") + 1


MOVING_STACK_SCRIPT = """
import sys, time
from loopviz.recorder import _stackwatch as sw
# The Python watchdog never beats (late, as on a loaded machine): the watcher reads the stack at
# every step start it sees, while this thread pushes and pops frames, across chunks of its frame
# stack that are allocated and unmapped again.
sw.start(origin_ns=time.perf_counter_ns(), threshold_ns=1, stale_ns=1, interval_ns=20_000)
slot = sw.Slot()
slot.attach()

def deep(n):
    return deep(n - 1) if n else 0

deadline = time.perf_counter() + 1.5
step = 1
while time.perf_counter() < deadline:
    slot[0] = step
    step += 1
    deep(400)
    for k in range(50):
        deep(k)
sw.stop()
print(sw.stats()["walks"] > 0)
"""


@needs_safe_reads
def test_a_stack_that_moves_while_it_is_read_never_crashes_the_program(tmp_path):
    """The old walk faulted in 9 of 10 runs of this (1.5 s each)."""
    import subprocess

    script = tmp_path / "moving.py"
    script.write_text(MOVING_STACK_SCRIPT)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "True\n", "")
