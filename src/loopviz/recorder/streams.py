"""The program's ``sys.stdout`` and ``sys.stderr`` while it is recorded.

Each line the program prints becomes an ``output`` event, stamped when it started, so the timeline
places prints exactly between task steps; the parent shows them in the app and keeps them in the
trace.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TextIO

from loopviz import wire

if TYPE_CHECKING:
    from loopviz.recorder.writer import Recorder

class RecordedStream:
    """Stands in for sys.stdout/sys.stderr: each line becomes an ``output`` event, stamped when
    it started, so the timeline places the scenario's prints exactly between task steps.

    Threads print at once (a worker pool logging), so a lock keeps each write whole: a line is
    sent exactly once, as a plain ``print`` would write it once. It is re-entrant, because a
    signal handler may print while the interrupted code is inside ``write``."""

    def __init__(self, recorder: Recorder, stream_name: str, original: TextIO) -> None:
        self._recorder = recorder
        self._stream_name = stream_name
        self._original = original
        self._pending = ""
        self._pending_t = 0
        self._lock = threading.RLock()

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if not text:
            return 0
        with self._lock:
            if not self._pending:
                self._pending_t = self._recorder.now()
            self._pending += text
            if "\n" in text:
                complete, _, rest = self._pending.rpartition("\n")
                self._recorder.events.extend(
                    (wire.OUTPUT, self._pending_t, self._stream_name, complete + "\n")
                )
                self._pending = rest
                self._pending_t = self._recorder.now()
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                self._recorder.events.extend(
                    (wire.OUTPUT, self._pending_t, self._stream_name, self._pending)
                )
                self._pending = ""

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        # fileno, buffer, encoding, errors...: the real stream's, so byte-level writes still work
        return getattr(self._original, name)
