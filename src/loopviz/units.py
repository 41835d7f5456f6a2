"""Durations and times for people: ``1.3 s``, ``250 ms``, ``12 µs``, always in the fewest digits
that still tell two nearby moments apart. Shared by the summary, the header and the time axis."""

from __future__ import annotations

_UNITS = ((1_000_000_000, "s"), (1_000_000, "ms"), (1_000, "µs"), (1, "ns"))


def duration(ns: int | float, digits: int = 3) -> str:
    """``duration(1_300_000_000) == "1.3 s"``; ``digits`` significant figures at most."""
    magnitude = abs(ns)
    if magnitude == 0:
        return "0 s"
    for scale, unit in _UNITS:
        if magnitude >= scale or scale == 1:
            value = ns / scale
            text = f"{value:.{digits}g}"
            if "e" in text:
                text = f"{value:.0f}"
            return f"{text} {unit}"
    raise AssertionError("unreachable")


def clock(ns: int) -> str:
    """A point on the timeline as seconds with millisecond precision: ``12.345 s``."""
    return f"{ns / 1e9:.3f} s"
