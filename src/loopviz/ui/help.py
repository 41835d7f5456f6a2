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
from loopviz.ui.painter import Theme

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

ENDINGS = {"returned": "it returned", "raised": "it raised", "cancelled": "it was cancelled"}

KEYS = [
    ("↑ ↓, click", "select a task lane"),
    ("+ -  0", "zoom in / out in time; fit the whole run"),
    ("PgUp PgDn", "pan in time"),
    ("f", "follow now again (live)"),
    ("space", "live: pause and step through what is recorded; replay: play / pause"),
    ("← →", "previous / next event"),
    ("shift+← shift+→", "previous / next event of the selected task"),
    ("[ ]  Home End", "jump back / forward; start / end"),
    ("b", "next block"),
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
    ("q", "quit (stops the script; the trace is kept)"),
]


def legend(theme: Theme) -> Text:
    text = Text()
    text.append("What the lanes show\n\n", style="bold #ffd700")
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
    text.append("\nKeys\n\n", style="bold #ffd700")
    for key, does in KEYS:
        text.append(f"  {key:<18}", style="bold #87afff")
        text.append(f"{does}\n")
    text.append("\nEsc, ? or q closes this help.", style="#8a8a8a")
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
        padding: 1 2;
    }
    """
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close help")]

    def __init__(self, theme: Theme) -> None:
        super().__init__()
        self.theme_shown = theme

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(legend(self.theme_shown), id="legend")
