"""The watchdog thread: the culprit of a block, sampled while the loop is still blocked.

A step (or a callback) that runs past the block threshold holds the loop thread, so nothing on it
can say where it is. When the step running now has passed the threshold, this thread reads the
loop thread's Python stack (``sys._current_frames``) and sends a ``block_begin`` with the
innermost user line. A wake-up that comes late means C code held the GIL.

The native watchdog (``_stackwatch.c``, when it could be built) is a thread that needs no GIL.
It looks at the loops every few milliseconds and wakes this thread (its bell) only when a step
or callbacks pass the threshold, so this thread never takes the GIL from a loop that is not
blocked. C code holding the GIL stops this thread too: when it does not answer the bell for that
long, the native thread reads the loop thread's stack itself, so a block inside a C call still
names the program's line that made the call. Without the native watchdog this thread wakes every
``interval`` to look, and a block inside C names the function whose step it was.
"""

from __future__ import annotations

import asyncio
import atexit
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any

from loopviz import wire
from loopviz.recorder import sources
from loopviz.recorder.failures import report_internal_error
from loopviz.recorder.libraries import describe_callable
from loopviz.recorder.proxy import STEP_CODE, record_entry
from loopviz.wire import NONE

try:
    from loopviz.recorder import _stackwatch
except ImportError:  # not built (no compiler, another interpreter): the Python watchdog alone
    _stackwatch = None  # type: ignore[assignment]  # (the module, or None where it is missing)

if TYPE_CHECKING:
    from loopviz.recorder._stackwatch import NativeFrame
    from loopviz.recorder.loops import LoopState
    from loopviz.recorder.writer import Recorder

# What the watchdog read of a block: (where, code, stack, gil).
Sample = tuple[str, str, str, bool]
_HANDLE_RUN_CODE = asyncio.events.Handle._run.__code__
# How frames the native watchdog read are known: the Python proxy's send, a callback's Handle.
_STEP_CODE_ID = id(STEP_CODE)
_HANDLE_RUN_CODE_ID = id(_HANDLE_RUN_CODE)
# How often the native watchdog looks at the loops (only reading a stack when the GIL is stuck).
NATIVE_INTERVAL_NS = 5_000_000
# With the native watchdog, the writer thread sends a frame when none went out for this long: the
# loop is blocked, idle in select() or not running, and the parent waits for the watermark.
FLUSH_STALE_NS = 5_000_000


class Watchdog:
    """Samples every recorded loop's thread while a step or callback holds it too long."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        threshold = recorder.block_threshold_ns
        self.native = _stackwatch
        # How often the loops are looked at: by the native thread, else by this one.
        self.interval = NATIVE_INTERVAL_NS / 1e9 if self.native else min(0.02, threshold / 5e9)
        # A wake-up this late was kept waiting for the GIL: C code held it (a huge sorted(), a
        # regex, a C extension), and nothing in Python could run, us included.
        self.late_ns = int(self.interval * 1e9) + threshold // 2
        self._thread = threading.Thread(target=self._watch, name="loopviz-watchdog", daemon=True)

    def start(self) -> None:
        if self.native is not None:
            recorder = self.recorder
            self.native.start(
                origin_ns=recorder.t0,
                threshold_ns=recorder.block_threshold_ns,
                stale_ns=self.late_ns,  # this thread late by that much: C code holds the GIL
                interval_ns=NATIVE_INTERVAL_NS,
                flush_stale_ns=FLUSH_STALE_NS,
            )
            # never reading a stack while the interpreter tears its threads down, even when
            # the recorder does not finish (a daemon thread's loop still running at exit)
            atexit.register(self.native.stop)
        self._thread.start()

    def stop(self) -> None:
        """Stop the native watchdog, and wake this thread and the writer to see
        ``recorder.stopping``."""
        if self.native is not None:
            self.native.stop()
            self.native.ring(self.native.WATCHDOG_BELL)
            self.native.ring(self.native.WRITER_BELL)

    def wait_for_flush(self, interval: float) -> bool:
        """For the writer thread: wait until a frame is due from it (no frame went out for
        ``FLUSH_STALE_NS``; without the native watchdog, every ``interval``). False once the
        recorder stops."""
        if self.native is not None:
            self.native.wait_bell(self.native.WRITER_BELL)
            return not self.recorder.stopping.is_set()
        return not self.recorder.stopping.wait(interval)

    def flushed(self) -> None:
        """A frame was just sent: the writer is not needed for ``FLUSH_STALE_NS``."""
        if self.native is not None:
            self.native.flushed()

    def _wait_for_work(self) -> int:
        """Wait until a step or callbacks may have passed the threshold (the native bell; or
        this thread's own interval); when the wake-up was due, or 0 once the recorder stops."""
        recorder = self.recorder
        if self.native is not None:
            rung_at: int = self.native.wait_bell(self.native.WATCHDOG_BELL)
        else:
            rung_at = recorder.now() + int(self.interval * 1e9)
            recorder.stopping.wait(self.interval)
        return 0 if recorder.stopping.is_set() else rung_at

    def native_slot(self) -> _stackwatch.Slot | None:
        """A new loop's slot in the native watchdog: the proxies write the start of the step
        running now in ``slot[0]``."""
        return self.native.Slot() if self.native is not None else None

    @staticmethod
    def watch(state: LoopState) -> None:
        """``state``'s loop starts running on this thread: the native watchdog reads its stack."""
        if state.native_slot is not None:
            state.native_slot.attach()

    @staticmethod
    def unwatch(state: LoopState) -> None:
        """``state``'s loop stops running on this thread (which may end): never read it again."""
        if state.native_slot is not None:
            state.native_slot.detach()

    def sampled(
        self, sample: tuple[int, str, str, str, bool] | None, start: int, end: int
    ) -> Sample:
        """(where, code, stack, gil) for the ``block`` event of a block from ``start`` to ``end``.

        Without a sample of this block, the watchdog did not look while it lasted. If it lasted
        well past the time the watchdog needed to notice it, the watchdog could not run at all:
        C code held the GIL for the whole block (``gil`` true, no line known)."""
        if sample is not None and sample[0] == start:
            return sample[1:]
        return "", "", "", end - start > self.recorder.block_threshold_ns + self.late_ns

    def step_sampled(self, state: LoopState, start: int, end: int, coro: object) -> Sample:
        """``sampled`` for the step of the task running ``coro``: when this thread could not
        look while it lasted, the stack the native watchdog read while C code held the GIL
        (``gil`` true, the program's line that called into C)."""
        sample = state.block_sample
        if sample is None or sample[0] != start:
            native = _native_sample(state, start, coro)
            if native is not None:
                return (*native, True)
        return self.sampled(sample, start, end)

    def _watch(self) -> None:
        recorder = self.recorder
        starved_after = self.late_ns - int(self.interval * 1e9)
        native = self.native
        while due := self._wait_for_work():
            if native is not None:
                native.beat()  # we hold the GIL: the native watchdog need not read stacks
            starved = recorder.now() - due > starved_after
            found = False
            for state in recorder.loops:
                try:
                    found = self.check(state, starved) or found
                except Exception:  # a bug of ours must not stop the watchdog for good
                    report_internal_error()
            if found:
                recorder.drain()  # the loop is blocked: show it now, not at the writer's turn

    def check(self, state: LoopState, starved: bool = False) -> bool:
        """Sample the culprit of ``state``'s step or callback if it is past the threshold;
        whether a ``block_begin`` was sent.

        ``starved``: the watchdog was kept from running since it was due; the step still
        running now spent that time inside C code that held the GIL, and the line sampled now
        is only the last Python line it reached.

        A ``block_begin`` is stamped with the moment the step crossed the threshold: no later
        than the check that found it still running, so always before that step's ``block``
        (a time read at the check could fall after the step's end, read just before it)."""
        recorder = self.recorder
        checked_at = recorder.now()
        start = state.step_start
        task = state.step_task
        if state.step_start != start:
            return False  # a step began or ended while we read: look again next time
        if start:
            if state.block_sample and state.block_sample[0] == start:
                return False
            if checked_at - start < recorder.block_threshold_ns:
                return False
            # read while C code held the GIL
            native = _native_sample(state, start, getattr(state.step_proxy, "_coro", None))
            where, code, stack = native if native is not None else self._sample(state)
            if state.step_start != start:
                return False  # the step ended while we looked
            # this step held the loop while C code held the GIL
            gil = native is not None or starved
            state.block_sample = (start, where, code, stack, gil)
            became_block = start + recorder.block_threshold_ns  # <= checked_at < the step's end
            recorder.events.extend(
                (wire.BLOCK_BEGIN, became_block, task, start, where, code, stack, gil)
            )
            return True
        callback_start = state.callback_start
        if not callback_start or state.in_select:
            return False
        if state.callback_sample and state.callback_sample[0] == callback_start:
            return False
        if checked_at - callback_start < recorder.block_threshold_ns:
            return False
        where, code, stack = self._sample(state)
        if state.callback_start != callback_start or state.step_start or state.in_select:
            return False
        gil = starved
        state.callback_sample = (callback_start, where, code, stack, gil)
        became_block = callback_start + recorder.block_threshold_ns
        recorder.events.extend(
            (wire.BLOCK_BEGIN, became_block, NONE, callback_start, where, code, stack, gil)
        )
        return True

    @staticmethod
    def _sample(state: LoopState) -> tuple[str, str, str]:
        """(where, code, stack) of the innermost user frame the loop thread is running now,
        within the step running now: frames below our proxy's ``send`` (the loop itself, the
        program's ``asyncio.run`` line) never stand for a step's code."""
        step_proxy = state.step_proxy  # read first: the caller checks the step did not change
        frame = sys._current_frames().get(state.thread_id)
        user_frames, in_task_step = _user_frames_of_step(frame, step_proxy)
        if not user_frames:  # a task's step past its own code, or a C function called back
            return "", "" if in_task_step else _callback_running(frame), ""
        lines = [(f.f_code.co_filename, f.f_lineno, f.f_code.co_name) for f in user_frames]
        return _described(lines)


def _native_sample(state: LoopState, start: int, coro: object) -> tuple[str, str, str] | None:
    """(where, code, stack) from the stack the native watchdog read during the step that began
    at ``start``, the step of the task running ``coro``, as ``_sample`` makes them from live
    frames (the user frames above our proxy's ``send``, or up to ``coro``'s own frame for the
    native proxy); None if it read none."""
    slot = state.native_slot
    frames: tuple[NativeFrame, ...] | None = slot.sample_of(start) if slot is not None else None
    if frames is None:
        return None
    step_coro = id(coro) if coro is not None else None
    lines = []
    for filename, lineno, function, code_id, generator_id in frames:
        if code_id in (_STEP_CODE_ID, _HANDLE_RUN_CODE_ID):
            break
        if sources.is_user_file(filename):
            lines.append((filename, lineno, function))
        if generator_id == step_coro:
            break
    return _described(lines) if lines else ("", "", "")


def _described(lines: list[tuple[str, int, str]]) -> tuple[str, str, str]:
    """(where, code, stack) of a block whose user lines are ``lines``, innermost first."""
    filename, lineno, _ = lines[0]
    stack = "\n".join(sources.describe_line(*line) for line in lines[:12])
    return sources.where_at(filename, lineno), sources.source_line_at(filename, lineno), stack


def _callback_running(frame: FrameType | None) -> str:
    """``time.sleep() called back by the loop``: a C function run as a callback has no frame of
    its own, so the culprit is named from the Handle running it, when there is one."""
    while frame is not None:
        if frame.f_code is _HANDLE_RUN_CODE:
            callback = getattr(frame.f_locals.get("self"), "_callback", None)
            return f"{describe_callable(callback)} called back by the loop" if callback else ""
        frame = frame.f_back
    return ""


def _user_frames_of_step(
    frame: FrameType | None, step_proxy: object = None
) -> tuple[list[FrameType], bool]:
    """The user frames on the loop thread's stack, innermost first, that belong to the step
    running now: those above our proxy's ``send`` frame (the native proxy's ``step_proxy`` has
    none: up to its coroutine's own frame), or, for a callback, above the ``Handle._run`` that
    called it (never the loop's own frames or the ``asyncio.run`` line).

    Also says whether a task's step is running, so that a step past its own code is never
    taken for a callback.

    A library's task that blocks before it ever suspends (a handler calling ``time.sleep``)
    shows the program's function only here: the outermost of these is its ``entry``."""
    in_task_step = step_proxy is not None
    step_frame = getattr(getattr(step_proxy, "_coro", None), "cr_frame", None)
    frames: list[FrameType] = []
    while frame is not None:
        code = frame.f_code
        if code is _HANDLE_RUN_CODE:  # a callback's frames end here: below is the loop itself
            return frames, in_task_step
        if code is STEP_CODE:
            _found_entry(frame.f_locals["self"], frames)
            return frames, True
        if sources.is_user_code(code):
            frames.append(frame)
        if frame is step_frame:
            _found_entry(step_proxy, frames)
            return frames, True
        frame = frame.f_back
    return frames, in_task_step


def _found_entry(proxy: Any, frames: list[FrameType]) -> None:
    """A library's task that blocks before it ever suspends: the outermost user frame of its
    step is the program's own function inside it (its ``entry``)."""
    if frames and proxy.seek_entry:
        record_entry(proxy, frames[-1].f_code)
