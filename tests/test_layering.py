"""The recorder, the session and the model must never pull in UI code, and the painter never
Textual (docs/development.md)."""

from __future__ import annotations

import subprocess
import sys


def loaded_by(imports: str, packages: tuple[str, ...]) -> list[str]:
    """The modules of ``packages`` that ``imports`` loads, in a fresh interpreter."""
    probe = (
        f"import sys\n{imports}\n"
        f"print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in {packages!r})))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return [name for name in result.stdout.strip().split(",") if name]


def test_core_modules_import_no_ui_code():
    imports = (
        "import loopviz.recorder.child, loopviz.recorder.loops, loopviz.model\n"
        "import loopviz.session, loopviz.merger, loopviz.trace, loopviz.summary, loopviz.wire\n"
        "import loopviz.events, loopviz.eventstore\n"
        "import loopviz.replay, loopviz.export, loopviz.compare, loopviz.catalogue\n"
        "import loopviz.runs, loopviz.viewstate"
    )
    assert loaded_by(imports, ("textual", "rich")) == []


def test_the_painter_uses_rich_alone():
    """Exports draw with the painter outside any app: it must never pull in Textual."""
    assert loaded_by("import loopviz.painter", ("textual",)) == []


def test_the_recorded_program_loads_no_parent_code():
    """The child only encodes: the event definitions and the decoding tables are the parent's,
    and loading them would cost every recorded program's start-up."""
    loaded = loaded_by("import loopviz.recorder.child", ("loopviz",))
    assert "loopviz.wire" in loaded
    assert {"loopviz.events", "loopviz.decoding", "loopviz.model"} & set(loaded) == set()
