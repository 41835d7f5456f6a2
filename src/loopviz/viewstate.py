"""Where the viewer stands in a recording: how far it has got, and the replay cursor.

The timeline model holds only what was recorded, and every question it answers takes the instant
it is asked about. This small value is what picks that instant. The app, a replay, the timeline
widget, compare and the pictures each hold their own and pass it along, instead of moving a
cursor inside the shared model: two views of one timeline never disturb each other, and nothing
has to be saved and put back around a look at another moment.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loopviz.model import Timeline


@dataclass(frozen=True, slots=True)
class ViewState:
    now: int  # how far the recording has got: the live clock, or the end of what is recorded
    cursor: int | None = None  # the replay cursor; None while following the run as it records
    recording: bool = False  # events may still come: a live run that has not ended

    @classmethod
    def at_end(cls, timeline: Timeline, now: int = 0) -> ViewState:
        """Following the recording at its newest instant (``now``, if later than its last
        event: the live clock runs on while a blocked script says nothing)."""
        return cls(now=max(now, timeline.end_t), recording=not timeline.ended)

    def at(self, cursor: int | None) -> ViewState:
        """The same recording with the replay cursor at ``cursor`` (None: back to live)."""
        return replace(self, cursor=cursor)

    @property
    def horizon(self) -> int:
        """The instant every question is asked about: the cursor in a replay, else now. That is
        what makes a replay at t look exactly as the live view looked at t."""
        return self.cursor if self.cursor is not None else self.now

    @property
    def live(self) -> bool:
        """Following a run still being recorded: a step running now may run on, unseen."""
        return self.cursor is None and self.recording
