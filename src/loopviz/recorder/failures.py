"""Containing the recorder's own failures, as Trio contains a failing Instrument.

A bug of ours must never become the program's failure, and must never go unsaid either: each is
written once, in plain words, to the real stderr (fd 2), which the parent passes on. The program's
``sys.stderr`` feeds the event stream and would swallow it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback


def report_internal_error() -> None:
    """Write loopviz's own traceback to the real stderr (fd 2), which the parent passes on; the
    scenario's sys.stderr feeds the event stream and would swallow it."""
    text = "loopviz: internal error in the recorder\n" + traceback.format_exc()
    with contextlib.suppress(OSError):
        os.write(2, text.encode("utf-8", "replace"))


_reported_failures: set[str] = set()


def report_recording_failure(what: str, error: BaseException | None = None) -> None:
    """A failure inside recording code (``error``, or the one being handled), contained as Trio
    contains a failing Instrument: the program's step goes on untouched, this detail of the
    recording is lost, and the user is told once, in one line on the real stderr."""
    if what in _reported_failures:
        return
    _reported_failures.add(what)
    if error is None:
        error = sys.exc_info()[1]
    text = (
        f"loopviz: could not record {what} ({type(error).__name__}: {error}); the program is "
        "unaffected, and only that detail is missing from the recording\n"
    )
    with contextlib.suppress(OSError):
        os.write(2, text.encode("utf-8", "replace"))
