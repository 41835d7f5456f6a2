"""The watchdog thread: the culprit of a block, sampled while the loop is still blocked.

A step (or a callback) that runs past the block threshold holds the loop thread, so nothing on it
can say where it is. This thread wakes every few milliseconds, and when the step running now has
passed the threshold, it reads the loop thread's Python stack (``sys._current_frames``) and sends
a ``block_begin`` with the innermost user line. A tick that comes late means C code held the GIL.
"""

from __future__ import annotations

import asyncio
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

if TYPE_CHECKING:
    from loopviz.recorder.loops import LoopState
    from loopviz.recorder.writer import Recorder

# What the watchdog read of a block: (where, code, stack, gil).
Sample = tuple[str, str, str, bool]
_HANDLE_RUN_CODE = asyncio.events.Handle._run.__code__


class Watchdog:
    """Samples every recorded loop's thread while a step or callback holds it too long."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        threshold = recorder.block_threshold_ns
        self.interval = min(0.02, threshold / 5e9)
        # A watchdog tick this late was kept waiting for the GIL: C code held it (a huge
        # sorted(), a regex, a C extension), and nothing in Python could run, us included.
        self.late_ns = int(self.interval * 1e9) + threshold // 2
        self._thread = threading.Thread(target=self._watch, name="loopviz-watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

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

    def _watch(self) -> None:
        recorder = self.recorder
        interval = self.interval
        late_ns = self.late_ns
        last_tick = recorder.now()
        while not recorder.stopping.wait(interval):
            now = recorder.now()
            starved_since = last_tick if now - last_tick > late_ns else 0
            last_tick = now
            for state in recorder.loops:
                try:
                    self.check(state, starved_since)
                except Exception:  # a bug of ours must not stop the watchdog for good
                    report_internal_error()

    def check(self, state: LoopState, starved_since: int = 0) -> None:
        """Sample the culprit of ``state``'s step or callback if it is past the threshold.

        ``starved_since`` is when the watchdog last ran on time, if it was kept from running
        since (0 otherwise): the step still running now spent that time inside C code that
        held the GIL, and the line sampled now is only the last Python line it reached.

        A ``block_begin`` is stamped with the moment the step crossed the threshold: no later
        than the check that found it still running, so always before that step's ``block``
        (a time read at the check could fall after the step's end, read just before it)."""
        recorder = self.recorder
        checked_at = recorder.now()
        start = state.step_start
        task = state.step_task
        if state.step_start != start:
            return  # a step began or ended while we read: look again next time
        if start:
            if state.block_sample and state.block_sample[0] == start:
                return
            if checked_at - start < recorder.block_threshold_ns:
                return
            where, code, stack = self._sample(state)
            if state.step_start != start:
                return  # the step ended while we looked
            gil = bool(starved_since)  # this step held the loop while C code held the GIL
            state.block_sample = (start, where, code, stack, gil)
            became_block = start + recorder.block_threshold_ns  # <= checked_at < the step's end
            recorder.events.extend(
                (wire.BLOCK_BEGIN, became_block, task, start, where, code, stack, gil)
            )
            return
        callback_start = state.callback_start
        if not callback_start or state.in_select:
            return
        if state.callback_sample and state.callback_sample[0] == callback_start:
            return
        if checked_at - callback_start < recorder.block_threshold_ns:
            return
        where, code, stack = self._sample(state)
        if state.callback_start != callback_start or state.step_start or state.in_select:
            return
        gil = bool(starved_since)
        state.callback_sample = (callback_start, where, code, stack, gil)
        became_block = callback_start + recorder.block_threshold_ns
        recorder.events.extend(
            (wire.BLOCK_BEGIN, became_block, NONE, callback_start, where, code, stack, gil)
        )

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
        culprit = user_frames[0]
        stack = "\n".join(sources.describe_frame(f) for f in user_frames[:12])
        return sources.where(culprit), sources.source_line(culprit), stack


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

