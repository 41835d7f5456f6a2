"""Trace files: the public, documented record of a run (docs/trace-format.md).

JSON Lines, optionally gzip-compressed; a header line, then events sorted by ``t``. Writing is
incremental, so a run that dies still leaves a readable trace. Reading accepts a truncated last
line (the mark of a run cut short) and refuses anything that is not a loopviz trace, or is from a
newer major version, with a message a person can act on. Reading never executes anything.

Each event line is decoded and checked against its kind's definition (loopviz.events) in one
step. A damaged line (not JSON, or JSON that is not an event of a known shape) stops the reading
there, as a trace cut short does: what came before stays, and one sentence names the line and
what is wrong with it. A line of a kind this version does not know is skipped, as the format's
compatibility rule asks (docs/trace-format.md).
"""

from __future__ import annotations

import contextlib
import gc
import gzip
import itertools
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BufferedIOBase
from pathlib import Path
from typing import Any

import msgspec

from loopviz.events import KINDS, AnyEvent, Time
from loopviz.model import Timeline, paused_gc

FORMAT_NAME = "loopviz-trace"
# A trace is held in memory to replay it (about 1 KB per event with the model): past this size on
# disk, refuse clearly rather than run out of memory.
MAX_TRACE_BYTES = 1 << 30
FORMAT_VERSION = 1

_encoder = msgspec.json.Encoder()
_header_decoder = msgspec.json.Decoder()
_event_decoder = msgspec.json.Decoder(AnyEvent)


class _AnyKind(msgspec.Struct):
    """What any event line has, whatever its kind: read to tell a kind this reader does not know
    (skipped) from a damaged line."""

    ev: str
    t: Time


_kind_decoder = msgspec.json.Decoder(_AnyKind)


class TraceError(Exception):
    """A trace file that cannot be read; the message says why and what to do."""


def _open_for_writing(path: Path) -> BufferedIOBase:
    if path.suffix == ".gz":
        return gzip.open(path, "wb", compresslevel=6)
    return open(path, "wb")


class TraceWriter:
    """Appends events to a trace file as they come, flushing often enough to survive a crash."""

    def __init__(self, path: Path | str, header: dict[str, Any]) -> None:
        self.path = Path(path)
        self._file = _open_for_writing(self.path)
        self._file.write(
            _encoder.encode({"format": FORMAT_NAME, "version": FORMAT_VERSION, **header})
        )
        self._file.write(b"\n")

    def write(self, events: list[AnyEvent]) -> None:
        if events:
            self._file.write(_encoder.encode_lines(events))

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def abandon(self) -> None:
        """Give up after a failed write (disk full): close without letting the unwritten buffer
        raise again, now or when the file object is collected."""
        with contextlib.suppress(OSError):
            self._file.close()


@dataclass
class Trace:
    header: dict[str, Any]
    events: list[AnyEvent] = field(default_factory=list)
    truncated: bool = False  # the file ended mid-line or mid-stream: the run was cut short


def read_header(first_line: bytes, source: str) -> dict[str, Any]:
    try:
        header = _header_decoder.decode(first_line)
    except msgspec.DecodeError:
        raise TraceError(f"{source} is not a loopviz trace (its first line is not JSON).") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise TraceError(f"{source} is not a loopviz trace (no loopviz-trace header).")
    version = header.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise TraceError(
            f"{source} is a loopviz trace of version {version}; this loopviz reads version "
            f"{FORMAT_VERSION}. Upgrade loopviz to read it."
        )
    return header


def _chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    """The file's bytes, inflated if gzip. A gzip stream cut short yields all it can, then stops."""
    with open(path, "rb") as raw:
        magic = raw.read(2)
        raw.seek(0)
        if magic != b"\x1f\x8b":
            while chunk := raw.read(size):
                yield chunk
            return
        inflater = zlib.decompressobj(wbits=31)
        while chunk := raw.read(size):
            try:
                yield inflater.decompress(chunk)
            except zlib.error:
                return
            while inflater.eof and inflater.unused_data:  # a concatenated gzip member
                rest = inflater.unused_data
                inflater = zlib.decompressobj(wbits=31)
                yield inflater.decompress(rest)


def iter_lines(path: Path) -> Iterator[tuple[bytes, bool]]:
    """Yield (line, complete) pairs; only the last line can be incomplete."""
    pending = b""
    for chunk in _chunks(path):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line, True
    if pending:
        yield pending, False


def read_trace(path: Path | str, max_bytes: int = MAX_TRACE_BYTES) -> Trace:
    """The whole trace in memory: its header and every event."""
    trace, events = _open(path, max_bytes)
    with paused_gc():
        trace.events = list(events)
    return trace


def load_timeline(path: Path | str, max_bytes: int = MAX_TRACE_BYTES) -> tuple[Trace, Timeline]:
    """Read a trace and build its finished timeline, ready for replay or export."""
    loader = TraceLoader(path, max_bytes)
    loader.load()
    if loader.error:
        raise TraceError(loader.error)
    return loader.trace, loader.timeline


class TraceLoader:
    """Builds a trace's timeline a batch of events at a time, so that a viewer can show a big
    trace while it loads. The events go straight into the timeline's compact store as they are
    read (``trace.events`` stays empty): a million-event trace never sits in memory as dicts.

    A damaged line ends the loading: ``error`` says which and why, and what came before it
    stays, as for a trace cut short."""

    def __init__(self, path: Path | str, max_bytes: int = MAX_TRACE_BYTES) -> None:
        self.trace, self._events = _open(path, max_bytes)
        threshold = self.trace.header.get("block_threshold_ns", 100_000_000)
        self.timeline = Timeline(block_threshold_ns=threshold)
        self.done = False
        self.error: str | None = None

    def load(self, count: int | None = None) -> bool:
        """Take in up to ``count`` more events (all of them if None). True while more remain."""
        before = len(self.timeline.events)
        try:  # events go in as they are read: those before a damaged line are kept
            batch = self._events if count is None else itertools.islice(self._events, count)
            self.timeline.add_events(batch)
            more = count is not None and len(self.timeline.events) - before == count
        except TraceError as exc:
            self.error = str(exc)
            self.trace.truncated = True
            more = False
        if not more:
            self._finish()
        return more

    def _finish(self) -> None:
        self.done = True
        self.timeline.ended = True
        # The events and spans live as long as the replay: move them out of the cyclic GC's
        # sight, or each full collection walks millions of objects that can never be garbage.
        gc.freeze()


def _open(path: Path | str, max_bytes: int) -> tuple[Trace, Iterator[AnyEvent]]:
    """Check the file and read its header; the events follow from the returned iterator, which
    sets ``trace.truncated`` when it is done."""
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise TraceError(f"{source} does not exist.")
    if path.is_dir():
        raise TraceError(f"{source} is a directory, not a trace file.")
    size = path.stat().st_size
    if size > max_bytes:
        raise TraceError(
            f"{source} is {size / 1e9:.1f} GB: too large to replay here (the limit is "
            f"{max_bytes / 1e9:.1f} GB). Record a shorter run, or read the file as JSON Lines "
            "with other tools (docs/trace-format.md)."
        )
    lines = iter_lines(path)
    try:
        first, _complete = next(lines)
    except StopIteration:
        raise TraceError(f"{source} is empty: it holds no loopviz trace.") from None
    except OSError as exc:
        raise TraceError(f"{source} cannot be read: {exc}") from None
    trace = Trace(read_header(first, source))
    return trace, _events(trace, lines, source)


def _events(
    trace: Trace, lines: Iterator[tuple[bytes, bool]], source: str
) -> Iterator[AnyEvent]:
    last = None
    for number, (line, complete) in enumerate(lines, 2):  # (the header is line 1)
        if not line:
            continue
        try:
            last = _event_decoder.decode(line)
        except msgspec.DecodeError as exc:  # (a ValidationError is one too)
            if not complete:  # the last line, cut short: the run was
                trace.truncated = True
                return
            if _unknown_kind(line):
                continue
            raise TraceError(damaged_line(source, number, line, exc)) from None
        yield last
    trace.truncated = last is None or last.ev != "end"


def _unknown_kind(line: bytes) -> bool:
    """Is this an event of a kind added by a later version (which readers skip)?"""
    try:
        return _kind_decoder.decode(line).ev not in KINDS
    except msgspec.DecodeError:
        return False


def damaged_line(source: str, number: int, line: bytes, error: msgspec.DecodeError) -> str:
    """One sentence: which line of the trace is damaged, and how."""
    if not isinstance(error, msgspec.ValidationError):
        return f"{source} line {number} is not JSON: {line[:60]!r}."
    problem, _, path = str(error).partition(" - at `$")
    problem = problem[0].lower() + problem[1:]
    where = f" in `{path.rstrip('`').lstrip('.')}`" if path else ""
    return f"{source} line {number} is not a loopviz event: {problem}{where}."
