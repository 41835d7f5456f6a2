"""The recorder, the session and the model must never pull in UI code, and the painter never
Textual (docs/development.md)."""

from __future__ import annotations

import subprocess
import sys


def test_core_modules_import_no_ui_code():
    probe = (
        "import sys\n"
        "import loopviz.recorder.child, loopviz.recorder.runtime, loopviz.model\n"
        "import loopviz.session, loopviz.trace, loopviz.summary, loopviz.wire\n"
        "import loopviz.replay, loopviz.export, loopviz.compare, loopviz.catalogue\n"
        "ui = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "print(','.join(ui))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_the_painter_uses_rich_alone():
    """Exports draw with the painter outside any app: it must never pull in Textual."""
    probe = (
        "import sys\n"
        "import loopviz.painter\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] == 'textual')))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
