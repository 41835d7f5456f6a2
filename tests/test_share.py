"""Sharing a run: Perfetto JSON, pictures, the browser, comparisons, and running modules."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

import pytest

from conftest import REPO
from loopviz.compare import comparison_lines
from loopviz.export import perfetto, picture
from loopviz.painter import DEFAULT_THEME
from loopviz.trace import load_timeline
from loopviz.ui.compare import CompareApp
from loopviz.ui.timeline import TimelineView

DATA = REPO / "tests" / "data"


def loaded(name: str):
    return load_timeline(DATA / f"{name}.jsonl")[1]


def tracks(trace: dict) -> dict[int, str]:
    return {e["tid"]: e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "thread_name"}


def test_perfetto_has_a_track_per_task_nested_slices_threads_and_blocks():
    timeline = loaded("offload")
    trace = perfetto(timeline, "offload.py")
    json.dumps(trace)  # it is JSON
    names = tracks(trace)
    for lane in timeline.tasks.values():
        assert f"{lane.label} (task {lane.id})" in names.values()
    assert "event loop" in names.values() and "worker 1 (asyncio_0)" in names.values()
    by_track = defaultdict(list)
    for event in trace["traceEvents"]:
        if event["ph"] == "X":
            by_track[event["tid"]].append((event["ts"], event["ts"] + event["dur"]))
    for slices in by_track.values():  # slices on one track never partly overlap
        slices.sort()
        for (s1, e1), (s2, e2) in zip(slices, slices[1:], strict=False):
            assert e1 <= s2 + 0.002 or e2 <= e1, (s1, e1, s2, e2)
    worker = next(tid for tid, name in names.items() if name == "worker 1 (asyncio_0)")
    assert [e["name"] for e in trace["traceEvents"]
            if e["ph"] == "X" and e["tid"] == worker] == ["write_report() ← reporter"]  # fmt: skip
    blocks = [e for e in perfetto(loaded("blocking"))["traceEvents"] if e.get("cat") == "block"]
    assert len(blocks) == 1 and blocks[0]["name"].startswith("BLOCKED 2000 ms: time.sleep(2)")


def test_perfetto_flows_go_from_the_waker_to_the_task_it_woke(record):
    rec = record(
        """
        import asyncio

        async def main():
            event = asyncio.Event()
            waiter = asyncio.create_task(event.wait(), name="waiter")
            await asyncio.sleep(0.01)
            event.set()
            await waiter

        asyncio.run(main())
        """
    )
    trace = perfetto(rec.timeline)
    names = tracks(trace)
    flows = [e for e in trace["traceEvents"] if e["ph"] in ("s", "f")]
    start = next(e for e in flows if e["ph"] == "s")
    finish = next(e for e in flows if e["ph"] == "f" and e["id"] == start["id"])
    assert names[start["tid"]].startswith("main") and names[finish["tid"]].startswith("waiter")
    assert start["ts"] <= finish["ts"]


def test_pictures_show_the_lanes_the_app_shows(tmp_path):
    timeline = loaded("blocking")
    picture(timeline, "txt", tmp_path / "b.txt", "blocking.py", width=120)
    text = (tmp_path / "b.txt").read_text().splitlines()
    assert text[0] == "blocking.py: took 7.02 s, loop blocked 2 s in 1 block, 5 tasks"
    assert "BLOCKED 2 s" in text[2]  # on the loop's lane
    assert [line.split()[1] for line in text[2:8]] == [
        "event", "main", "fast", "medium", "slow", "reporter"]  # fmt: skip
    picture(timeline, "svg", tmp_path / "b.svg", "blocking.py", width=120)
    svg = (tmp_path / "b.svg").read_text()
    assert svg.startswith("<svg") and "BLOCKED" in svg


def test_png_export_when_cairosvg_is_there(tmp_path):
    pytest.importorskip(
        "cairosvg", reason="PNG export is the docs extra: pip install loopviz[docs]"
    )
    picture(loaded("gather"), "png", tmp_path / "g.png", "gather.py")
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_export_command_writes_perfetto_json(tmp_path):
    result = subprocess.run([sys.executable, "-m", "loopviz", "export", str(DATA / "gather.jsonl"),
                             "--format", "perfetto", "-o", str(tmp_path / "out.json")],
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0 and result.stderr == f"loopviz: wrote {tmp_path / 'out.json'}\n"
    assert json.loads((tmp_path / "out.json").read_text())["otherData"]["title"] == "gather.py"


def test_a_format_added_to_the_table_is_offered_and_written_by_the_command(tmp_path, monkeypatch,
                                                                           capsys):
    """Adding an export format is one entry in export.FORMATS: the command offers and writes it."""
    from loopviz import cli, export

    def lane_names(timeline, path, request):
        path.write_text(f"{request.title}: " + ", ".join(lane.label for lane in
                                                         timeline.tasks.values()))  # fmt: skip

    monkeypatch.setitem(export.FORMATS, "names", (lane_names, "the tasks' names"))
    with pytest.raises(SystemExit):
        cli.main(["export", "--help"])
    assert "names: the tasks' names" in capsys.readouterr().out
    out = tmp_path / "names.txt"
    command = ["export", str(DATA / "gather.jsonl"), "--format", "names", "-o", str(out)]
    assert cli.main(command) == 0
    assert out.read_text().startswith("gather.py: main")


def test_compare_says_how_long_each_took_and_was_blocked():
    runs = [("blocking", loaded("blocking")), ("offload", loaded("offload"))]
    assert comparison_lines(runs) == [
        "blocking: took 7.02 s, loop blocked 2 s in 1 block, 5 tasks",
        "offload: took 5.03 s, loop never blocked, 5 tasks",
        "offload finished 1.99 s sooner; blocked time 2 s vs 0 s",
    ]


async def test_compare_app_stacks_both_runs_on_one_time_scale():
    runs = [("blocking", loaded("blocking")), ("offload", loaded("offload"))]
    app = CompareApp(runs, DEFAULT_THEME)
    async with app.run_test(size=(120, 36)) as pilot:
        views = list(app.query(TimelineView))
        assert len(views) == 2
        assert views[0].viewport() == views[1].viewport()  # one scale: lengths compare by eye
        assert "loop blocked 2 s" in str(app.query(".run-title").first().content)
        for keys in [("plus", "plus"), ("pagedown",), ("minus",), ("right",) * 5, ("end",),
                     ("left_square_bracket",), ("home",), ("0",)]:  # fmt: skip
            views[1].focus()  # whichever pane has the focus, both move together
            await pilot.press(*keys)
            assert views[0].viewport() == views[1].viewport(), keys
            assert all(v.view_state.cursor == app.cursor for v in views)
            if app.cursor:  # the cursor is drawn in both panes, on the same cell
                cells = [v.render_line(0).text.find(DEFAULT_THEME.cursor_glyph) for v in views]
                assert cells[0] == cells[1] != -1, keys
        await pilot.press("q")


def test_module_runs_as_main_with_arguments_after_the_double_dash(tmp_path):
    package = tmp_path / "shop"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "server.py").write_text(
        "import asyncio, sys\n"
        "async def main():\n"
        "    await asyncio.sleep(0.01)\n"
        "    print(__name__, sys.argv[1:])\n"
        "asyncio.run(main())\n"
    )
    result = subprocess.run([sys.executable, "-m", "loopviz", "record", "-m", "shop.server", "-o",
                             "t.jsonl", "--", "--port", "8080"], cwd=tmp_path,
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == "__main__ ['--port', '8080']\n"
    header = load_timeline(tmp_path / "t.jsonl")[0].header
    assert header["scenario"] == "-m shop.server"


def test_a_scripts_options_given_without_the_double_dash_are_refused_saying_where_they_go(capsys):
    from loopviz import cli

    with pytest.raises(SystemExit) as exited:
        cli.main(["record", "server.py", "--port", "8080", "-o", "t.jsonl"])
    assert exited.value.code == 2
    said = capsys.readouterr().err.splitlines()[-1]
    assert said == ("loopviz record: error: unrecognized arguments: --port 8080 (the script's own "
                    "arguments go after --: loopviz record [options] script.py -- --port 8080)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_answers_the_page_and_its_websocket():
    aiohttp = pytest.importorskip("aiohttp")
    port = free_port()
    command = [sys.executable, "-m", "loopviz", "serve", str(DATA / "blocking.jsonl")]
    server = subprocess.Popen([*command, "--port", str(port)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        page = _get_when_up(f"http://127.0.0.1:{port}/")
        assert "textual" in page.lower() and "/ws" in page

        async def handshake() -> bool:
            async with (
                aiohttp.ClientSession() as session,
                session.ws_connect(f"http://127.0.0.1:{port}/ws?width=100&height=30") as ws,
            ):
                return not ws.closed

        import asyncio

        assert asyncio.run(handshake())
    finally:
        server.terminate()
        _out, err = server.communicate(timeout=10)
    assert f"serving {DATA / 'blocking.jsonl'} at http://127.0.0.1:{port}" in err


def _get_when_up(url: str, limit: float = 20.0) -> str:
    deadline = time.monotonic() + limit
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read().decode()
        except OSError:
            assert time.monotonic() < deadline, f"{url} never answered"
            time.sleep(0.1)


FOREVER = """
import asyncio

async def main():
    while True:
        await asyncio.sleep(0.05)

asyncio.run(main())
"""

CLIENT = """
import asyncio, sys
import aiohttp

async def main():
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(sys.argv[1]) as ws:
            await ws.receive()  # the app has started and drawn
            print("connected", flush=True)
            await asyncio.sleep(3600)

asyncio.run(main())
"""


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc: no extra dependency)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to find the app's process")
def test_an_abandoned_page_ends_its_app_and_its_script(tmp_path):
    pytest.importorskip("aiohttp")
    script = tmp_path / "forever.py"
    script.write_text(textwrap.dedent(FOREVER))
    (tmp_path / "client.py").write_text(textwrap.dedent(CLIENT))
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "loopviz", "serve", str(script), "--port",
                               str(port)], stderr=subprocess.DEVNULL, cwd=tmp_path)  # fmt: skip
    client = None
    try:
        _get_when_up(f"http://127.0.0.1:{port}/")
        client = subprocess.Popen([sys.executable, str(tmp_path / "client.py"),
                                   f"http://127.0.0.1:{port}/ws?width=100&height=30"],
                                  stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert client.stdout.readline().strip() == "connected"
        apps = _children(server.pid)
        assert len(apps) == 1
        app = apps[0]
        deadline = time.monotonic() + 10
        while not [p for p in _children(app) if _alive(p)]:  # the recorded script, under the app
            assert time.monotonic() < deadline, "the script never started"
            time.sleep(0.1)
        scripts = [p for p in _children(app) if _alive(p)]
        client.kill()  # the browser tab goes away without a word
        client.wait()
        deadline = time.monotonic() + 20
        while _alive(app) or any(_alive(p) for p in scripts):
            assert time.monotonic() < deadline, "the page's app (or its script) outlived it"
            time.sleep(0.2)
    finally:
        if client is not None and client.poll() is None:
            client.kill()
        server.terminate()
        server.communicate(timeout=10)


async def test_a_page_whose_app_ignores_quit_and_sigterm_still_ends(monkeypatch):
    """The server side of serve: an app that answers neither the quit message nor SIGTERM (a
    stuck loop) is killed PAGE_GRACE seconds after each."""
    import asyncio

    pytest.importorskip("textual_serve")
    from textual_serve import server as serve_server

    from loopviz import cli

    monkeypatch.setattr(cli, "PAGE_GRACE", 0.5)
    monkeypatch.setattr(serve_server, "AppService", serve_server.AppService)  # undone after
    cli._end_pages_for_sure()

    class Downloads:
        async def cancel_app_downloads(self, app_service_id: str) -> None:
            return None

    async def ignore(*_args) -> None:
        return None

    stubborn = "exec python3 -c 'import signal, time; signal.signal(signal.SIGTERM, " \
               "signal.SIG_IGN); print(\"__GANGLION__\", flush=True); time.sleep(60)'"  # fmt: skip
    service = serve_server.AppService(stubborn, write_bytes=ignore, write_str=ignore,
                                      close=ignore, download_manager=Downloads())  # fmt: skip
    await service.start(80, 24)
    started = time.monotonic()
    await asyncio.wait_for(service.stop(), 10)
    assert service._process.returncode is not None  # killed: it could not ignore SIGKILL
    assert time.monotonic() - started < 5
