"""The help screen (``?``): what each colour and glyph means, and every key.

The legend is drawn with the same theme as the lanes, so it shows exactly the glyphs and colours
on screen, in the classroom and ASCII themes too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from loopviz import model
from loopviz.painter import Theme
from loopviz.ui.colours import ink
from loopviz.ui.panels import INK

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

# What each key does, in the order a teacher looks for them. The keys themselves are only in the
# bindings (LoopvizApp.BINDINGS, TimelineView.BINDINGS): each row names the actions it explains,
# in groups ("zoom(0.5) zoom(2)" and "fit" make "+ -  0"), and its keys are read from there.
# tests/test_help.py fails if a binding has no row here or no line in the README's table.
KEY_ROWS: list[tuple[tuple[str, ...], str, str]] = [
    (("select(-1) select(1)",), ", click", "select a task lane"),
    (("zoom(0.5) zoom(2)", "fit"), "", "zoom in / out in time; fit the whole run"),
    (("pan(-0.5) pan(0.5)",), "", "pan in time"),
    (("follow",), "", "follow now again (live)"),
    (("play_pause",), "", "play / pause (live: pause, to step through it)"),
    (("step(-1) step(1)",), "", "previous / next event"),
    (("step_task(-1) step_task(1)",), "", "previous / next event of the selected task"),
    (("jump(-5) jump(5)", "seek_edge(0) seek_edge(1)"), "", "jump back / forward; start / end"),
    (("next_block",), "", "next block (where it is first seen)"),
    (("key_moment",), "", "next key moment: block, first starvation, exception, end"),
    (("toggle_watch",), "", 'hide / show the scenario\'s "Watch for"'),
    (("speed(0) speed(1)",), "", "play slower / faster (0.1× to 10×)"),
    (("mark", "jump_mark(1) jump_mark(-1)"), "", "mark this moment; next / previous mark"),
    ((), "click the axis", "put the cursor there"),
    (("filter",), "", "filter lanes by name (Esc clears)"),
    (("toggle_finished",), "", "hide / show finished tasks"),
    (("toggle_group",), "", "group lanes under their parent task"),
    (("toggle_log",), "", "switch the bottom pane: output / event log"),
    (("toggle_code",), "", "show / hide the source pane and the await tree"),
    ((), "click source line", "put the cursor on the next event at that line"),
    (("go_live",), "", "back to live (while the script runs)"),
    (("help",), "", "this help"),
    (("quit_session",), "", "quit (stops the script; the trace is kept)"),
]

# Textual's key names as the keyboard shows them.
KEY_NAMES = {
    "up": "↑", "down": "↓", "left": "←", "right": "→", "shift+left": "shift+←",
    "shift+right": "shift+→", "plus": "+", "minus": "-", "pageup": "PgUp", "pagedown": "PgDn",
    "left_square_bracket": "[", "right_square_bracket": "]", "home": "Home", "end": "End",
    "less_than_sign": "<", "greater_than_sign": ">", "question_mark": "?", "slash": "/",
}  # fmt: skip


def key_name(binding: Binding) -> str:
    """How a binding's key is written for people: its first key (``plus,equals`` is ``+``)."""
    key = binding.key.split(",")[0]
    return KEY_NAMES.get(key, key)


def _action(binding: Binding) -> str:
    return binding.action.removeprefix("app.")


def key_table(bindings: Iterable[Binding]) -> list[tuple[str, str]]:
    """(keys, what they do) for the help screen, in KEY_ROWS's order, keys read from
    ``bindings``. A row whose actions are bound to nothing is left out."""
    keys: dict[str, list[str]] = {}
    for binding in bindings:
        keys.setdefault(_action(binding), []).append(key_name(binding))
    table = []
    for groups, extra, does in KEY_ROWS:
        names = [[", ".join(keys.get(action, ())) for action in group.split()] for group in groups]
        if all(all(group) for group in names):
            table.append(("  ".join(" ".join(group) for group in names) + extra, does))
    return table


def unexplained(bindings: Iterable[Binding]) -> list[str]:
    """The actions of ``bindings`` that no row of KEY_ROWS explains."""
    explained = {action for groups, _extra, _does in KEY_ROWS for group in groups
                 for action in group.split()}  # fmt: skip
    return [_action(b) for b in bindings if _action(b) not in explained]


def legend(theme: Theme, bindings: Iterable[Binding], ink: Callable[[str], Style]) -> Text:
    """Keys first (what a teacher looks for mid-lesson; they fit an 80x24 screen), then what
    every colour and glyph means. ``ink`` gives the style of a name of panels.INK."""
    text = Text()
    text.append("Keys", style=ink("heading"))
    text.append("  (what the lanes show: further down)\n", style=ink("label"))
    for key, does in key_table(bindings):
        if theme.ascii:  # arrows in words: "<" and ">" are keys of their own
            for arrow, word in (
                ("shift+← shift+→", "shift+left/right"),
                ("←", "left"),
                ("→", "right"),
                ("↑", "up"),
                ("↓", "down"),
            ):
                key = key.replace(arrow, word)
        text.append(f"  {key:<17}", style=ink("kind"))
        text.append(f"{does}\n")
    text.append("\nWhat the lanes show\n", style=ink("heading"))
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
        text.append(f"{name:<17}", style=ink("strong"))
        text.append(f"{meaning}\n")
    text.append("\nBefore each lane's name: its state at the cursor\n", style=ink("heading"))
    lane_glyphs = theme.lane_glyphs
    for state, meaning in LANE_GLYPHS:
        text.append(f"  {lane_glyphs[state]:<4} ", style=ink("strong"))
        text.append(f"{meaning}\n")
    ended = " ".join(glyph for glyph, _style in theme.outcomes.values())
    text.append(f"  {ended:<6} ", style=ink("strong"))
    text.append("finished: returned, raised, cancelled (as at the lane's end)\n")
    text.append("\nEsc, ? or q closes this help; ↑ ↓ scroll it.", style=ink("label"))
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
        padding: 0 1;
    }
    """  # its colours: app.tcss
    COMPONENT_CLASSES = INK
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close help")]

    def __init__(self, theme: Theme, bindings: Iterable[Binding]) -> None:
        super().__init__()
        self.theme_shown = theme
        self.keys = list(bindings)  # the app's and the timeline's: what the keys table lists

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(id="legend")

    def on_mount(self) -> None:
        shown = legend(self.theme_shown, self.keys, lambda name: ink(self, name))
        self.query_one("#legend", Static).update(shown)
