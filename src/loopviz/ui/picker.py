"""The scenario picker shown by ``loopviz`` with no arguments: one line per lesson, and what to
watch for in the one under the cursor. Enter runs it; the app returns the chosen path."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from loopviz.catalogue import Scenario
from loopviz.ui.colours import ColouredApp, style


class PickerApp(ColouredApp[Path | None]):
    TITLE = "loopviz: choose a scenario"
    CSS = """
    Screen { background: $lv-ink; }
    #heading { height: 2; padding: 0 1; color: $lv-accent; text-style: bold; }
    OptionList { height: 1fr; }
    #watch { height: 4; padding: 0 1; background: $lv-bar; }
    """
    BINDINGS = [Binding("q,escape", "quit_picker", "Quit")]

    def __init__(self, scenarios: list[Scenario]) -> None:
        super().__init__()
        self.scenarios = scenarios

    def compose(self) -> ComposeResult:
        yield Static("Choose a scenario (↑ ↓, Enter to run it live)", id="heading")
        options = []
        width = max(len(s.name) for s in self.scenarios)
        for scenario in self.scenarios:
            label = Text(f"{scenario.name:<{width}}  ", style="bold")
            label.append(scenario.concept, style=style("$lv-soft"))
            options.append(Option(label, id=scenario.name))
        yield OptionList(*options)
        yield Static(id="watch")
        yield Footer()

    def on_mount(self) -> None:
        self._show_watch(0)

    def _show_watch(self, index: int | None) -> None:
        if index is None:
            return
        scenario = self.scenarios[index]
        text = Text("Watch for: ", style=style("bold $lv-accent"))
        text.append(scenario.watch or "(the scenario's docstring says nothing to watch for)")
        self.query_one("#watch", Static).update(text)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._show_watch(event.option_index)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.exit(self.scenarios[event.option_index].path)

    def action_quit_picker(self) -> None:
        self.exit(None)
