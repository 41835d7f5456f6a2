"""Which recorder core records the program: the native one, or the pure-Python fallback.

The native core (``_native``, built from ``_native.c`` by ``pip install``) does the hot path of
recording in C: each task step, each wake-up, and the event buffer. Where it is not built (no C
compiler, another interpreter) or cannot be trusted (a free-threaded Python, which it does not
support), the pure-Python recorder records the same events, more slowly, and the child says so
in one line. ``LOOPVIZ_RECORDER=python`` forces the pure-Python recorder; ``=native`` refuses to
record without the native core (docs/recording.md).

Both cores share every class that is not on the hot path; this module gives the two that
differ, under one name each: ``LoopSlots`` (the base of ``loops.LoopState``) and
``new_event_buffer``. The task proxy is chosen in ``proxy.py``.
"""

from __future__ import annotations

import importlib
import os
import sysconfig
from types import ModuleType
from typing import TYPE_CHECKING, Any

from loopviz import wire

SWITCH = "LOOPVIZ_RECORDER"
# The _native.c this Python code goes with (its NATIVE_VERSION).
NATIVE_VERSION = 5


def _load_native() -> tuple[ModuleType | None, str]:
    """The native module, or None and why not (empty when the user asked for Python)."""
    choice = os.environ.get(SWITCH, "").strip().lower()
    if choice == "python":
        return None, ""
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        return None, "this Python is free-threaded, which the native core does not support"
    try:
        native = importlib.import_module("loopviz.recorder._native")
    except ImportError:
        return None, "the native core is not built for this Python"
    if getattr(native, "VERSION", None) != NATIVE_VERSION:
        return None, "the native core was built from older code: pip install -e . rebuilds it"
    return native, ""


native, why_not_native = _load_native()


def notice() -> str:
    """The one line the child writes when it records without the native core unasked."""
    if native is not None or not why_not_native:
        return ""
    return (
        f"loopviz: recording with the pure-Python recorder ({why_not_native}); it slows the "
        f"program down more. {SWITCH}=python chooses it without this notice.\n"
    )


def refusal() -> str:
    """Why the child will not record at all: the native core was required and is missing."""
    required = os.environ.get(SWITCH, "").strip().lower()
    if required == "native" and native is None:
        return f"loopviz: {SWITCH}=native, but {why_not_native}.\n"
    if required not in ("", "native", "python"):
        return f"loopviz: {SWITCH} is '{required}'; it can be 'native' or 'python'.\n"
    return ""


class ListBuffer(list[Any]):
    """The pure-Python recorder's event buffer: one flat list of ints and strings, appended
    with one ``extend`` per event (atomic under the GIL, from any thread)."""

    def frame(self, head: list[Any]) -> bytes:
        """A wire frame of ``head``'s items then every event held, which are dropped."""
        n = len(self)
        head += self[:n]
        del self[:n]
        return wire.encode_frame(head)

    def send(self, head: list[Any], fd: int) -> None:
        """Write that frame to the file descriptor ``fd`` (OSError if it cannot)."""
        view = memoryview(self.frame(head))
        while view:
            view = view[os.write(fd, view) :]


class PythonLoopSlots:
    """The pure-Python recorder's step bookkeeping: the attributes ``_native.LoopSlots`` keeps
    in C, as plain slots (``loops.LoopState`` sets them all)."""

    __slots__ = (
        "step_start", "step_task", "nested_in", "nested_ns", "_callback_start", "t0",
        "block_threshold_ns", "thread_id", "events", "timeouts", "handed_back_refs",
        "wait_handlers", "owner_waits", "sleep_locals", "loop_offset", "step_clock",
    )  # fmt: skip
    step_start: int  # 0 = no step running
    step_task: int
    nested_in: int
    nested_ns: int
    _callback_start: int
    t0: int
    block_threshold_ns: int
    thread_id: int
    events: Any
    timeouts: dict[int, object]
    handed_back_refs: dict[Any, Any]  # the dict inside LoopState.handed_back
    wait_handlers: dict[Any, Any]  # WaitNamer.by_code
    owner_waits: dict[int, Any]  # WaitNamer.owner_waits
    sleep_locals: tuple[Any, int, int]  # WaitNamer.sleep_locals
    loop_offset: float  # the loop's clock (ns) minus the recorder's
    # The native watchdog's copy of step_start and callback_start (a ``_stackwatch.Slot``; a
    # list nobody reads where it is not built): ``step_clock[0]``, written at each step's start
    # and end, and ``step_clock[1]``.
    step_clock: Any
    # The Python proxy's step is found on the stack by its ``send`` frame instead.
    step_proxy: object = None

    def attach_step_clock(self, clock: Any) -> None:
        self.step_clock = clock

    @property
    def callback_start(self) -> int:
        """When the callbacks running now began (0: none), copied to the native watchdog."""
        return self._callback_start

    @callback_start.setter
    def callback_start(self, start: int) -> None:
        self._callback_start = self.step_clock[1] = start


def new_event_buffer() -> Any:
    """An empty event buffer of the core in use: ``extend``, ``len``, ``clear``, ``frame`` and
    ``send``."""
    return native.EventBuffer() if native is not None else ListBuffer()


if TYPE_CHECKING:  # the native LoopSlots has the same attributes
    LoopSlots = PythonLoopSlots
else:
    LoopSlots = native.LoopSlots if native is not None else PythonLoopSlots
