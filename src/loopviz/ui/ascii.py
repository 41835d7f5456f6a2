"""``--ascii`` promises that every character on screen is ASCII, for terminals and fonts that
draw anything else as boxes. The themes choose ASCII glyphs for what loopviz draws itself; this
line filter, applied by the app after everything else, turns what Textual draws (borders,
scrollbars, the footer) and any stray character (µ in durations, arrows in labels) into ASCII,
cell for cell, so the layout does not move."""

from __future__ import annotations

import unicodedata

from rich.cells import cell_len
from rich.segment import Segment
from textual.color import Color
from textual.filter import LineFilter

# One ASCII character per cell, chosen to look like what it replaces.
_TABLE = {
    "─": "-", "━": "-", "╌": "-", "╍": "-", "┄": "-", "┅": "-", "═": "=", "▔": "-", "▁": "_",
    "│": "|", "┃": "|", "║": "|", "▏": "|", "▕": "|", "▎": "|", "▍": "|", "▌": "|", "▋": "|",
    "▊": "|", "▉": "|", "▐": "|", "╎": "|", "╏": "|",
    "┌": "+", "┐": "+", "└": "+", "┘": "+", "├": "+", "┤": "+", "┬": "+", "┴": "+", "┼": "+",
    "┏": "+", "┓": "+", "┗": "+", "┛": "+", "╭": "+", "╮": "+", "╰": "+", "╯": "+",
    "╔": "+", "╗": "+", "╚": "+", "╝": "+", "▛": "+", "▜": "+", "▙": "+", "▟": "+",
    "█": "#", "▓": "#", "▒": "+", "░": ".", "▀": "-", "▄": "_", "▂": "_", "▃": "_", "▅": "=",
    "▆": "=", "▇": "=",
    "←": "<", "→": ">", "↑": "^", "↓": "v", "◀": "<", "▶": ">", "▲": "^", "▼": "V",
    "×": "x", "µ": "u", "·": ".", "…": "~", "•": "*", "●": "o", "◷": "-", "■": "X",
    "✔": "v", "✘": "x", "⊘": "c", "⚙": "T", "⏱": "t", "◆": "M", "–": "-", "—": "-",
    "‘": "'", "’": "'",
    "“": '"', "”": '"', "⌫": "<", "⏎": "<", "⇥": ">", "⎋": "e",
}  # fmt: skip


def to_ascii(text: str) -> str:
    """``text`` with every character ASCII, each taking the cells the original took."""
    if text.isascii():
        return text
    out = []
    for ch in text:
        if ch.isascii():
            out.append(ch)
            continue
        plain = _TABLE.get(ch)
        if plain is None:
            decomposed = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
            plain = decomposed[:1] or "?"
        out.append(plain.ljust(cell_len(ch), plain)[: max(cell_len(ch), 0)] if cell_len(ch)
                   else "")  # fmt: skip
    return "".join(out)


class AsciiFilter(LineFilter):
    """A Textual line filter that makes every character ASCII (see the module docstring)."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        return [
            Segment(to_ascii(text), style, control) if not text.isascii() else
            Segment(text, style, control)
            for text, style, control in segments
        ]  # fmt: skip
