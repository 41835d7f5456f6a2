"""A trace damaged line by line is read by ``loopviz export`` and ``compare`` without a traceback.

Sixty seeded mutations of a real trace (tests/data/blocking.jsonl): a field dropped, a field
given a value of another type, or a line replaced by other valid JSON (``[]``, ``1``, ``"x"``,
``{}``, ``null``, another kind's event). The rule (docs/trace-format.md): a damaged line stops
the reading there, with one sentence naming the line and what is wrong, and the command exits 2;
a line that is still a valid event (an optional field dropped, another kind's event) is read.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from conftest import REPO
from loopviz import cli

TRACE = REPO / "tests" / "data" / "blocking.jsonl"
MUTATIONS = 60
SEED = 15

# Values of a type a field does not have (one of them differs from any field's own type).
OTHER_TYPES = ["x", 7, -1, 2.5, None, True, [], {}, ["x"]]
OTHER_JSON = ["[]", "1", '"x"', "{}", "null"]


def mutate(lines: list[str], rng: random.Random) -> tuple[list[str], int, str]:
    """One damaged copy of the trace: its lines, the 1-based number of the line changed, and
    what was done to it."""
    lines = list(lines)
    index = rng.randrange(1, len(lines))  # an event line (line 1 is the header)
    event = json.loads(lines[index])
    how = rng.choice(["drop", "retype", "replace", "other kind"])
    target = event
    if "waiting_on" in event and rng.random() < 0.5:
        target = event["waiting_on"]  # a field of the wait
    key = rng.choice(sorted(target))
    if how == "drop":
        del target[key]
        lines[index] = json.dumps(event)
    elif how == "retype":
        target[key] = rng.choice([v for v in OTHER_TYPES if type(v) is not type(target[key])])
        lines[index] = json.dumps(event)
    elif how == "replace":
        lines[index] = rng.choice(OTHER_JSON)
    else:
        kind = event["ev"]
        lines[index] = rng.choice([line for line in lines[1:] if json.loads(line)["ev"] != kind])
    return lines, index + 1, f"{how} {key!r} of line {index + 1}: {lines[index][:80]}"


def run(argv: list[str], capsys) -> tuple[int, str]:
    status = cli.main(argv)  # anything of ours that raises fails the test here
    return status, capsys.readouterr().err


def cases() -> list[tuple[list[str], int, str]]:
    rng = random.Random(SEED)
    lines = TRACE.read_text().splitlines()
    return [mutate(lines, rng) for _ in range(MUTATIONS)]


def test_sixty_damaged_traces_get_a_sentence_or_an_export_never_a_traceback(tmp_path, capsys):
    refused = exported = 0
    for n, (lines, changed, what) in enumerate(cases()):
        trace = tmp_path / f"damaged-{n}.jsonl"
        trace.write_text("\n".join(lines) + "\n")
        out = tmp_path / f"damaged-{n}.json"
        status, err = run(["export", str(trace), "--format", "perfetto", "-o", str(out)], capsys)
        if status == 0:
            exported += 1
            assert err == f"loopviz: wrote {out}\n", what
            assert json.loads(out.read_text())["traceEvents"], what
        else:
            refused += 1
            assert status == 2, what
            sentence = f"loopviz: {trace} line {changed} "
            assert err.startswith(sentence) and err.endswith(".\n"), (what, err)
            assert err.count("\n") == 1 and "Traceback" not in err, (what, err)
            assert not out.exists(), what  # refused: nothing half-written
        status, said = run(["compare", str(TRACE), str(trace)], capsys)
        assert (status, said) == (2, err) if status else said == "", (what, said)
    assert refused >= 30 and exported >= 5  # both paths were taken, the refusals most


def test_the_mutations_are_the_ones_described():
    """The sixty cases are seeded (the same every run) and do what they say."""
    original = TRACE.read_text().splitlines()
    kinds = {re.match(r"\w+( kind)?", what).group() for _lines, _line, what in cases()}
    assert kinds == {"drop", "retype", "replace", "other kind"}
    for lines, changed, _what in cases():
        differs = [i + 1 for i, (a, b) in enumerate(zip(lines, original, strict=True)) if a != b]
        assert differs == [changed]


@pytest.mark.parametrize("line", OTHER_JSON)
def test_a_line_of_other_json_in_a_small_trace_names_its_line(tmp_path, capsys, line):
    lines = TRACE.read_text().splitlines()
    lines[5] = line
    trace = tmp_path / "t.jsonl"
    trace.write_text("\n".join(lines) + "\n")
    status, err = run(["export", str(trace), "--format", "txt", "-o", str(tmp_path / "t.txt")],
                      capsys)  # fmt: skip
    assert status == 2 and err.startswith(f"loopviz: {trace} line 6 is not a loopviz event: ")
    assert Path(tmp_path / "t.txt").exists() is False
