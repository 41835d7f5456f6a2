"""The run's events, kept compactly: a list of event objects costs ~130 bytes an event, this ~10.

A replay needs every event (to explain it, to step to it), but looks at only a few at a time. So
events are packed, a chunk of CHUNK_EVENTS at a time, into msgpack compressed with zlib (level 1:
about 0.15 µs an event to pack, a seventh of the msgpack's size), and unpacked again when asked
for; the last few chunks unpacked are cached, so stepping through a replay unpacks a chunk (about
0.3 ms) once per CHUNK_EVENTS steps. The newest events, not yet a whole chunk, stay as they came.

It behaves as a read-only sequence of typed events (loopviz.events: ``len``, indexing, slicing,
iteration); they are frozen, so a cached chunk can hand out the same event again.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import overload

import msgspec

from loopviz.events import AnyEvent

CHUNK_EVENTS = 4096
CACHED_CHUNKS = 8

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[AnyEvent])


class EventStore(Sequence[AnyEvent]):
    def __init__(self) -> None:
        self._packed: list[bytes] = []
        self._newest: list[AnyEvent] = []
        self._unpacked: OrderedDict[int, list[AnyEvent]] = OrderedDict()

    def extend(self, events: list[AnyEvent]) -> None:
        """Add events at the end, a batch at a time (a chunk is packed as soon as it is full)."""
        taken, count = 0, len(events)
        while taken < count:
            newest = self._newest
            room = CHUNK_EVENTS - len(newest)
            newest.extend(events[taken : taken + room])
            taken += room
            if len(newest) == CHUNK_EVENTS:
                self._packed.append(zlib.compress(_encoder.encode(newest), 1))
                self._newest = []
                self._cache(len(self._packed) - 1, newest)  # read again soon, as a rule

    def __len__(self) -> int:
        return len(self._packed) * CHUNK_EVENTS + len(self._newest)

    @overload
    def __getitem__(self, index: int) -> AnyEvent: ...

    @overload
    def __getitem__(self, index: slice) -> list[AnyEvent]: ...

    def __getitem__(self, index: int | slice) -> AnyEvent | list[AnyEvent]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("event index out of range")
        chunk, offset = divmod(index, CHUNK_EVENTS)
        return self._chunk(chunk)[offset]

    def __iter__(self) -> Iterator[AnyEvent]:
        for chunk in range(len(self._packed)):
            yield from self._unpack(chunk)
        yield from self._newest

    def iter_range(self, start: int, stop: int) -> Iterator[AnyEvent]:
        """Events ``start`` to ``stop - 1``, a chunk at a time (cheaper than indexing each)."""
        stop = min(stop, len(self))
        while start < stop:
            chunk, offset = divmod(start, CHUNK_EVENTS)
            events = self._chunk(chunk)
            end = min(len(events), offset + stop - start)
            yield from events[offset:end]
            start += end - offset

    def _chunk(self, chunk: int) -> list[AnyEvent]:
        if chunk == len(self._packed):
            return self._newest
        events = self._unpacked.get(chunk)
        if events is None:
            events = self._unpack(chunk)
            self._cache(chunk, events)
        else:
            self._unpacked.move_to_end(chunk)
        return events

    def _unpack(self, chunk: int) -> list[AnyEvent]:
        return _decoder.decode(zlib.decompress(self._packed[chunk]))

    def _cache(self, chunk: int, events: list[AnyEvent]) -> None:
        cache = self._unpacked
        cache[chunk] = events
        if len(cache) > CACHED_CHUNKS:
            cache.popitem(last=False)
