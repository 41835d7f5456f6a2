"""The help screen (``?``): what each colour and glyph means, and every key.

The legend is drawn with the same theme as the lanes, so it shows exactly the glyphs and colours
on screen, in the classroom and ASCII themes too.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from loopviz import model
from loopviz.painter import Theme

STATES = [
    (model.RUNNING, "running", "a step of the task is executing on the loop"),
    (
        model.READY,
        "ready / starved",
        "it could run, but the loop has not got to it (during a block: starved)",
    ),  # fmt: skip
    (model.WAITING, "waiting", "suspended at an await; the label says on what"),
    (model.BLOCKED, "blocked", "a step running past the threshold: nobody else can run"),
    (model.IDLE, "idle (loop lane)", "the loop waits in select() for I/O or a timer"),
]

LANE_GLYPHS = [
    (model.RUNNING, "running a step (the event loop: busy)"),
    (model.READY, "ready: could run, waiting for the loop (during a block: starved)"),
    (model.WAITING, "waiting at an await (the event loop: idle, in select())"),
    (model.BLOCKED, "holding the loop past the threshold: a block"),
]

ENDINGS = {"returned": "it returned", "raised": "it raised", "cancelled": "it was cancelled"}

KEYS = [
    ("↑ ↓, click", "select a task lane"),
    ("+ -  0", "zoom in / out in time; fit the whole run"),
    ("PgUp PgDn", "pan in time"),
    ("f", "follow now again (live)"),
    ("space", "play / pause (live: pause, to step through it)"),
    ("← →", "previous / next event"),
    ("shift+← shift+→", "previous / next event of the selected task"),
    ("[ ]  Home End", "jump back / forward; start / end"),
    ("b", "next block (where it is first seen)"),
    ("k", "next key moment: block, first starvation, exception, end"),
    ("w", "hide / show the scenario's \"Watch for\""),
    ("< >", "play slower / faster (0.1× to 10×)"),
    ("m  n N", "mark this moment; next / previous mark"),
    ("click the axis", "put the cursor there"),
    ("/", "filter lanes by name (Esc clears)"),
    ("h", "hide / show finished tasks"),
    ("g", "group lanes under their parent task"),
    ("e", "switch the bottom pane: output / event log"),
    ("c", "show / hide the source pane and the await tree"),
    ("click source line", "put the cursor on the next event at that line"),
    ("l", "back to live (while the script runs)"),
    ("q, ctrl+c", "quit (stops the script; the trace is kept)"),
]


def legend(theme: Theme) -> Text:
    """Keys first (what a teacher looks for mid-lesson; they fit an 80x24 screen), then what
    every colour and glyph means."""
    text = Text()
    text.append("Keys", style="bold #ffd700")
    text.append("  (what the lanes show: further down)\n", style="#8a8a8a")
    for key, does in KEYS:
        if theme.ascii:  # arrows in words: "<" and ">" are keys of their own
            for arrow, word in (("shift+← shift+→", "shift+left/right"), ("←", "left"),
                                ("→", "right"), ("↑", "up"), ("↓", "down")):
                key = key.replace(arrow, word)
        text.append(f"  {key:<17}", style="bold #87afff")
        text.append(f"{does}\n")
    text.append("\nWhat the lanes show\n", style="bold #ffd700")
    # (glyphs, their style, name, meaning), one row each
    rows = [(theme.cells[state][0] * 4, theme.cells[state][1], name, meaning)
            for state, name, meaning in STATES]  # fmt: skip
    rows.append(
        ("", theme.band, "red band", "the loop is blocked: every lane is frozen for its length")
    )
    rows += [(glyph, style, outcome, f"the task ended: {ENDINGS[outcome]}")
             for outcome, (glyph, style) in theme.outcomes.items()]  # fmt: skip
    rows.append((theme.thread_glyph, theme.thread, "worker thread",
                 "a to_thread / run_in_executor job, labelled with its task"))  # fmt: skip
    for glyphs, style, name, meaning in rows:
        text.append(f"  {glyphs:<4} ", style=style)
        text.append(f"{name:<17}", style="bold")
        text.append(f"{meaning}\n")
    text.append("\nBefore each lane's name: its state at the cursor\n", style="bold #ffd700")
    glyphs = theme.lane_glyphs
    for state, meaning in LANE_GLYPHS:
        text.append(f"  {glyphs[state]:<4} ", style="bold")
        text.append(f"{meaning}\n")
    ended = " ".join(glyph for glyph, _style in theme.outcomes.values())
    text.append(f"  {ended:<6} ", style="bold")
    text.append("finished: returned, raised, cancelled (as at the lane's end)\n")
    text.append("\nEsc, ? or q closes this help; ↑ ↓ scroll it.", style="#8a8a8a")
    return text


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen > VerticalScroll {
        width: 96;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        background: #101010;
        border: thick #ffd700;
        padding: 0 1;
    }
    """
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close help")]

    def __init__(self, theme: Theme) -> None:
        super().__init__()
        self.theme_shown = theme

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(legend(self.theme_shown), id="legend")
