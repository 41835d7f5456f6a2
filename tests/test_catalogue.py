"""The catalogue: `loopviz list` and the picker read every scenario's docstring."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import SCENARIOS
from loopviz.catalogue import ORDER, catalogue
from loopviz.ui.picker import PickerApp


def test_catalogue_lists_every_scenario_in_lesson_order_with_what_to_watch():
    scenarios = catalogue(SCENARIOS)
    assert [s.name for s in scenarios] == ORDER
    assert sorted(ORDER) == sorted(p.stem for p in SCENARIOS.glob("*.py"))
    blocking = scenarios[0]
    assert blocking.concept == "A blocking call freezes every task."
    assert blocking.watch.startswith("every lane stops at once.")
    assert all(s.watch for s in scenarios), [s.name for s in scenarios if not s.watch]
    web_server = next(s for s in scenarios if s.name == "web_server")
    assert web_server.watch.startswith("`/async` and `/sync` serve all three")


def test_list_command_prints_the_catalogue():
    result = subprocess.run([sys.executable, "-m", "loopviz", "list"], capture_output=True,
                            text=True, cwd=SCENARIOS.parent)  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["blocking", "A"]
    assert sum(1 for line in lines if line and not line.startswith(" ")) == len(ORDER) + 1
    # the loopviz that is running, as it can be run from here (.venv/bin/loopviz in a checkout)
    here = Path(sys.executable).parent.relative_to(SCENARIOS.parent)
    assert lines[-1] == f"Run one with: {here}/loopviz scenarios/blocking.py"


async def test_picker_shows_what_to_watch_and_returns_the_chosen_scenario():
    app = PickerApp(catalogue(SCENARIOS))
    async with app.run_test(size=(100, 30)) as pilot:
        assert "every lane stops at once" in str(app.query_one("#watch").content)
        await pilot.press("down")
        assert "two lanes wait side by side" in str(app.query_one("#watch").content)
        await pilot.press("enter")
    assert app.return_value == SCENARIOS / "gather.py"
