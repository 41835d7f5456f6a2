"""The compact event store reads back exactly what went in, across chunk boundaries."""

from __future__ import annotations

import pytest

from loopviz import eventstore
from loopviz.events import AnyEvent, Suspend, Wait
from loopviz.eventstore import CHUNK_EVENTS, EventStore


def stored(count: int) -> tuple[EventStore, list[AnyEvent]]:
    events: list[AnyEvent] = [
        Suspend(i, i % 7, Wait("sleep", f"s{i}", deadline=i + 5 if i % 2 else None))
        for i in range(count)
    ]
    store = EventStore()
    for start in range(0, count, 1000):  # batches that cross chunk boundaries, as ingest's do
        store.extend(events[start : start + 1000])
    return store, events


def test_indexing_slicing_and_iteration_match_the_events_put_in():
    store, events = stored(CHUNK_EVENTS * 3 + 17)
    assert len(store) == len(events)
    assert list(store) == events
    for i in (0, 1, CHUNK_EVENTS - 1, CHUNK_EVENTS, 2 * CHUNK_EVENTS + 5, len(events) - 1, -1, -5):
        assert store[i] == events[i]
    assert store[CHUNK_EVENTS - 2 : CHUNK_EVENTS + 2] == events[CHUNK_EVENTS - 2 : CHUNK_EVENTS + 2]
    with pytest.raises(IndexError):
        store[len(events)]


@pytest.mark.parametrize(
    "start, stop",
    [(0, 10), (5, CHUNK_EVENTS + 5), (CHUNK_EVENTS - 1, 3 * CHUNK_EVENTS + 17), (0, 10**9), (9, 9)],
)
def test_a_range_crosses_chunks_and_stops_at_the_end(start, stop):
    store, events = stored(CHUNK_EVENTS * 3 + 17)
    assert list(store.iter_range(start, stop)) == events[start:stop]


def test_reading_more_chunks_than_the_cache_holds_still_reads_right(monkeypatch):
    monkeypatch.setattr(eventstore, "CACHED_CHUNKS", 2)
    store, events = stored(CHUNK_EVENTS * 5)
    for i in (0, 4 * CHUNK_EVENTS, CHUNK_EVENTS, 3 * CHUNK_EVENTS, 0, 2 * CHUNK_EVENTS + 3):
        assert store[i] == events[i]
    assert len(store._unpacked) <= 2
