"""The scenarios that ship with loopviz, read from their docstrings (never by running them).

A scenario's docstring opens with the concept it shows, and has a paragraph starting
"Watch for:" that says what to look at on the timeline. ``loopviz list`` prints them and
``loopviz`` without arguments offers them in a picker.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path

ORDER = [
    "blocking", "gather", "create_task", "gather_order", "offload", "executors", "cpu_bound",
    "semaphore", "lock", "producer_consumer", "event_release", "context_managers",
    "async_iterators", "timeouts", "taskgroup", "gather_exceptions", "web_server",
    "ten_thousand", "uvloop_compare",
]  # fmt: skip  # the order of the lessons


@dataclass(frozen=True)
class Scenario:
    name: str
    path: Path
    concept: str
    watch: str


def scenarios_dir() -> Path | None:
    """$LOOPVIZ_SCENARIOS, ./scenarios, or the checkout this loopviz was installed from."""
    candidates = [
        os.environ.get("LOOPVIZ_SCENARIOS"),
        "scenarios",
        Path(__file__).resolve().parents[2] / "scenarios",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def read_scenario(path: Path) -> Scenario:
    try:
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    except (SyntaxError, UnicodeDecodeError, OSError):
        docstring = ""
    concept = docstring.strip().splitlines()[0] if docstring.strip() else "(no docstring)"
    watch = ""
    for paragraph in docstring.split("\n\n"):
        if "Watch for:" in paragraph:  # its own paragraph, or the end of one
            watch = " ".join(paragraph.split("Watch for:", 1)[1].split())
    return Scenario(path.stem, path, concept, watch)


def find(name_or_path: str | Path | None) -> Scenario | None:
    """The catalogue scenario a script or trace is of (``scenarios/blocking.py``, ``blocking``,
    a trace whose header names it), or None for any other program."""
    if not name_or_path:
        return None
    stem = Path(str(name_or_path)).name.split(".")[0]
    return next((s for s in catalogue() if s.name == stem), None)


def catalogue(folder: Path | None = None) -> list[Scenario]:
    folder = folder or scenarios_dir()
    if folder is None:
        return []
    found = {path.stem: read_scenario(path) for path in folder.glob("*.py")}
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(found.values(), key=lambda s: (rank.get(s.name, len(ORDER)), s.name))
