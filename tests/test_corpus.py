"""The real-world corpus: real frameworks, recorded, and exact facts on their traces.

Each program in tests/corpus/ uses a framework the way its users do. Every test here records one
of them for real and asserts what the trace must say when the recorder is faithful: which tasks
exist (by coroutine), which waits with which kind and where, which threads worked for which task,
which line blocked the loop, and, for the programs of item 9, that the program printed exactly what
plain Python prints.

All recordings start at once, in a module-scoped pool, so the corpus takes about as long as its
slowest program; each test waits only for its own.
"""

from __future__ import annotations

import collections
import concurrent.futures
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, Recording, record_file
from loopviz.recorder import watchdog
from loopviz.session import Session, Target
from loopviz.summary import summarize

CORPUS = REPO / "tests" / "corpus"
PY312 = sys.version_info >= (3, 12)
HAS_UVLOOP = sys.platform != "win32"

# name -> (program, its arguments)
PROGRAMS = {
    "fastapi": ("fastapi_app.py", []),
    "fastapi_uvloop": ("fastapi_app.py", ["--loop", "uvloop"]),
    "aiohttp": ("aiohttp_app.py", []),
    "aiohttp_uvloop": ("aiohttp_app.py", ["--loop", "uvloop"]),
    "anyio": ("anyio_app.py", []),
    "aiosqlite": ("aiosqlite_app.py", []),
    "subprocesses": ("subprocesses.py", []),
    "agen": ("agen_pipeline.py", []),
    "loop_selector": ("loop_direct.py", ["selector"]),
    "loop_uvloop_new": ("loop_direct.py", ["uvloop-new"]),
    "loop_uvloop_class": ("loop_direct.py", ["uvloop-class"]),
    "loop_policy": ("loop_direct.py", ["policy"]),
    "loop_in_thread": ("loop_in_thread.py", []),
    "c_block_1": ("c_block.py", []),
    "c_block_2": ("c_block.py", []),
    "c_block_3": ("c_block.py", []),
    "direct_tasks": ("direct_tasks.py", []),
    "infinite_sleep": ("infinite_sleep.py", []),
    "printing_threads": ("printing_threads.py", []),
    "debug_mode": ("debug_mode.py", []),
}
UVLOOP_PROGRAMS = {"fastapi_uvloop", "aiohttp_uvloop", "loop_uvloop_new", "loop_uvloop_class"}
# Programs whose plain-Python output is compared with the recorded one.
PLAIN = {"infinite_sleep", "debug_mode", "subprocesses", "direct_tasks", "agen", "anyio"}


def _record(name: str, trace_dir: Path) -> Recording:
    program, args = PROGRAMS[name]
    return record_file(CORPUS / program, trace_dir / f"{name}.jsonl", args=args)


def _record_pytest_module(trace_dir: Path) -> Recording:
    trace = trace_dir / "pytest_asyncio.jsonl"
    target = Target(
        "pytest",
        [str(CORPUS / "test_pytest_asyncio_module.py"), "-p", "no:cacheprovider"],
        module=True,
    )
    session = Session(target, trace, block_threshold=0.1)
    session.start()
    session.wait()
    return Recording(session, trace)


def _plain(name: str) -> subprocess.CompletedProcess:
    program, args = PROGRAMS[name]
    return subprocess.run(
        [sys.executable, str(CORPUS / program), *args],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Every recording (and plain run) started at once; ``corpus(name)`` waits for one."""
    trace_dir = tmp_path_factory.mktemp("corpus")
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 2))
    jobs = {}
    for name in PROGRAMS:
        if name in UVLOOP_PROGRAMS and not HAS_UVLOOP:
            continue
        jobs[name] = pool.submit(_record, name, trace_dir)
    jobs["pytest_asyncio"] = pool.submit(_record_pytest_module, trace_dir)
    for name in PLAIN:
        jobs["plain:" + name] = pool.submit(_plain, name)

    def get(name: str):
        if name.rsplit(":", 1)[-1] in UVLOOP_PROGRAMS:
            pytest.importorskip("uvloop", reason="uvloop does not run on Windows")
        return jobs[name].result(timeout=120)

    yield get
    pool.shutdown(wait=True)


# -- reading traces ------------------------------------------------------------------------------


def line_of(program: str, text: str) -> int:
    """The line number of the one line of a corpus program that contains ``text``."""
    lines = (CORPUS / program).read_text().splitlines()
    found = [i for i, line in enumerate(lines, 1) if text in line]
    assert len(found) == 1, f"{text!r} is on lines {found} of {program}"
    return found[0]


def at(program: str, text: str) -> str:
    """``program:line`` of the line containing ``text``, as the end of a ``where``."""
    return f"{program}:{line_of(program, text)}"


def library_sites(module_file: str, *texts: str) -> set[str]:
    """Every ``pkg/file.py:line`` in an installed library whose line contains one of ``texts``:
    the spawn site of a task made by that library, written relative to site-packages."""
    package = module_file.split("/", 1)[0]
    root = Path(__import__(package).__file__).resolve().parent.parent
    lines = (root / module_file).read_text().splitlines()
    sites = {
        f"{module_file}:{i}" for i, line in enumerate(lines, 1) if any(t in line for t in texts)
    }
    assert sites, f"none of {texts} found in {module_file}"
    return sites


def in_function(where: str, program: str, func: str) -> bool:
    """``where`` is a line of ``func`` in ``program`` (its decorators, def line or body)."""
    lines = (CORPUS / program).read_text().splitlines()
    start = next(i for i, line in enumerate(lines, 1) if line.startswith(f"async def {func}("))
    while start > 1 and lines[start - 2].startswith("@"):
        start -= 1
    end = start + 1
    while end <= len(lines) and (not lines[end - 1] or lines[end - 1].startswith((" ", "@"))):
        end += 1
    file, _, line = where.rpartition(":")
    return file.endswith(program) and start <= int(line) < end


def creates(rec: Recording) -> list[dict]:
    return [e for e in rec.events if e["ev"] == "create"]


def user_creates(rec: Recording) -> list[dict]:
    return [e for e in creates(rec) if not e["internal"]]


def tasks_of(rec: Recording, coro: str) -> list[int]:
    return [e["task"] for e in creates(rec) if e["coro"] == coro]


def entries(rec: Recording) -> dict[int, dict]:
    return {e["task"]: e for e in rec.events if e["ev"] == "entry"}


def user_function(rec: Recording, task: int) -> str:
    """What a user recognises a task by: its ``entry`` (the user's coroutine found inside a
    library's task) when there is one, else the task's own coroutine."""
    entry = entries(rec).get(task)
    if entry is not None:
        return entry["func"]
    return next(e["coro"] for e in creates(rec) if e["task"] == task)


def waits(rec: Recording, task: int | None = None) -> list[dict]:
    return [
        e["waiting_on"]
        for e in rec.events
        if e["ev"] == "suspend" and (task is None or e["task"] == task)
    ]


def waits_at(rec: Recording, where_end: str) -> list[dict]:
    return [w for w in waits(rec) if (w.get("where") or "").endswith(where_end)]


def blocks(rec: Recording) -> list[dict]:
    return [e for e in rec.events if e["ev"] == "block"]


def blocks_by(rec: Recording, code: str) -> list[dict]:
    """The blocks the program's own blocking call made. On a loaded machine another step (a
    server starting, a first import) can pass the threshold too: a real block, but not the one
    a test is about."""
    return [block for block in blocks(rec) if block["code"] == code]


def thread_jobs(rec: Recording) -> list[dict]:
    return [e for e in rec.events if e["ev"] == "thread_job"]


def loops(rec: Recording) -> list[dict]:
    return [e for e in rec.events if e["ev"] == "loop"]


def stdout(rec: Recording) -> str:
    return "".join(e["text"] for e in rec.events if e["ev"] == "output" and e["stream"] == "stdout")


def stderr(rec: Recording) -> str:
    return "".join(e["text"] for e in rec.events if e["ev"] == "output" and e["stream"] == "stderr")


def worker_threads(rec: Recording) -> int:
    found = re.search(r"(\d+) worker threads?\b", summarize(rec.timeline))
    assert found, summarize(rec.timeline)
    return int(found.group(1))


def assert_sound(rec: Recording) -> None:
    """What holds for every faithful trace, whatever the program."""
    times = [e["t"] for e in rec.events]
    assert times == sorted(times)
    end = rec.events[-1]
    assert end["ev"] == "end" and end["exit_code"] == 0 and end["error"] is None
    # never make up times: nothing synthesised lies past the real end
    assert max(times) == end["t"]
    assert [e for e in rec.events if e["ev"] == "ready" and e.get("task") is None] == []
    known = {e["task"] for e in creates(rec)}
    for event in rec.events:
        if event["ev"] in ("resume", "suspend", "ready", "done", "entry"):
            assert event["task"] in known, f"{event} is about a task never created"
    internal = {e["task"] for e in creates(rec) if e["internal"]}
    for event in rec.events:
        if event["ev"] != "suspend" or event["task"] in internal:
            continue  # asyncio's own housekeeping has no line outside asyncio to show
        wait = event["waiting_on"]
        if wait["kind"] == "future":
            assert wait.get("where"), f"a bare future wait without its line: {wait}"
    by_start = {b["start"]: b for b in blocks(rec)}
    for begin in (e for e in rec.events if e["ev"] == "block_begin"):
        block = by_start.get(begin["start"])
        assert block is not None, f"{begin} has no block"
        assert begin["t"] <= block["end"], f"block_begin {begin} after its block ended"
    assert loops(rec), "no loop event"


# -- FastAPI on uvicorn ----------------------------------------------------------------------------

FASTAPI_USER_CORO = {
    "Server.serve",
    "LifespanOn.main",
    "AsyncClient.get",
    "TaskHandle._run_coro",  # anyio's task wrapper: httpcore's connect_tcp happy eyeballs
    "RequestResponseCycle.run_asgi",
}


def _check_fastapi(rec: Recording, uvloop: bool) -> None:
    assert stdout(rec) == (
        "items [0, 1, 2]\nslow {'slow': True}\nsync {'sync': True}\nserver stopped\n"
    )
    [main] = [e["task"] for e in creates(rec) if e["parent"] is None and e["name"] == "Task-1"]
    assert user_function(rec, main) == "main"
    coros = {e["coro"] for e in user_creates(rec)} - {"main", "run.<locals>.wrapper"}
    # uvloop's own shutdown coroutines (iterable_coroutine) are asyncio's housekeeping, not yours
    assert coros == FASTAPI_USER_CORO
    # one run_asgi task per request: 3 items, /slow, /sync
    requests = tasks_of(rec, "RequestResponseCycle.run_asgi")
    assert len(requests) == 5
    # spawned by uvicorn, at the line in the library that made them
    sites = library_sites("uvicorn/protocols/http/h11_impl.py", "run_asgi(app)")
    assert {e["where"] for e in creates(rec) if e["task"] in requests} <= sites
    [lifespan] = [e for e in creates(rec) if e["coro"] == "LifespanOn.main"]
    assert lifespan["where"] in library_sites("uvicorn/lifespan/on.py", "self.main()")
    clients = [e for e in creates(rec) if e["coro"] == "AsyncClient.get"]
    assert len(clients) == 3
    assert all(e["where"].endswith(at("fastapi_app.py", "gather(")) for e in clients)
    # the endpoint inside uvicorn's task: run_asgi -> read_item
    found = entries(rec)
    entry_funcs = collections.Counter(found[t]["func"] for t in requests if t in found)
    assert entry_funcs["read_item"] == 3
    assert set(entry_funcs) <= {"read_item", "slow_endpoint", "sync_endpoint"}
    for task in requests:
        entry = entries(rec).get(task)
        if entry and entry["func"] == "read_item":
            assert in_function(entry["where"], "fastapi_app.py", "read_item")
    sleeps = waits_at(rec, at("fastapi_app.py", "await asyncio.sleep(0.05)"))
    assert len(sleeps) == 3 and {w["kind"] for w in sleeps} == {"sleep"}
    assert all("deadline" in w for w in sleeps)
    # the blocking endpoint: one block in the request tasks, at the time.sleep line (a loaded
    # machine may also see uvicorn's or httpx's first-use imports block the loop: those are real)
    [block] = [b for b in blocks(rec) if b["task"] in requests]
    assert block["where"].endswith(at("fastapi_app.py", "time.sleep(0.25)"))
    assert block["code"] == "time.sleep(0.25)"
    # the def endpoint ran in anyio's worker thread, which handed its result to the request task
    [sync_task] = [t for t in requests if any(w["kind"] == "thread" for w in waits(rec, t))]
    jobs = thread_jobs(rec)
    assert [(j["thread"], j["task"]) for j in jobs] == [("AnyIO worker thread", sync_task)]
    assert jobs[0]["func"]
    assert jobs[0]["start"] <= jobs[0]["t"]
    assert worker_threads(rec) == 1
    assert [w for w in waits(rec, sync_task) if w["kind"] == "future"] == []
    assert [lp["impl"] for lp in loops(rec)] == (["uvloop"] if uvloop else ["asyncio"])
    assert_sound(rec)


def test_fastapi_on_uvicorn(corpus):
    _check_fastapi(corpus("fastapi"), uvloop=False)


def test_fastapi_on_uvicorn_on_uvloop(corpus):
    rec = corpus("fastapi_uvloop")
    _check_fastapi(rec, uvloop=True)
    # uvloop.run's shutdown coroutines are housekeeping
    assert all(e["internal"] for e in creates(rec) if e["coro"] == "iterable_coroutine")


# -- aiohttp ------------------------------------------------------------------------------------


def _check_aiohttp(rec: Recording) -> None:
    assert stdout(rec) == ("['hello a', 'hello b', 'hello c', 'hello d']\nblocked\nblocked\ndone\n")
    # four connections (the four concurrent greetings; the /block requests reuse two of them),
    # six requests: every one a task, however aiohttp made it (asyncio.Task(eager_start=True) on
    # 3.12+, loop.create_task before)
    starts = tasks_of(rec, "RequestHandler.start")
    handlers = tasks_of(rec, "RequestHandler._handle_request")
    assert len(starts) == 4
    assert len(handlers) == 6
    assert len(tasks_of(rec, "fetch")) == 4
    start_sites = library_sites("aiohttp/web_protocol.py", "self.start()")
    handler_sites = library_sites(
        "aiohttp/web_protocol.py", "asyncio.Task(coro", "create_task(coro"
    )
    for event in creates(rec):
        if event["coro"] == "RequestHandler.start":
            assert event["where"] in start_sites
        if event["coro"] == "RequestHandler._handle_request":
            assert event["where"] in handler_sites
            assert event["parent"] in starts
    # the handler inside aiohttp's task: _handle_request -> hello
    hello = [t for t in handlers if entries(rec).get(t, {}).get("func") == "hello"]
    assert len(hello) == 4
    for task in hello:
        assert in_function(entries(rec)[task]["where"], "aiohttp_app.py", "hello")
    # two separate 250 ms blocks, each in its own request task, never one merged callback block
    found = blocks_by(rec, "time.sleep(0.25)")
    assert len(found) == 2
    assert len({b["task"] for b in found}) == 2
    assert {b["task"] for b in found} <= set(handlers) - set(hello)
    for block in found:
        assert block["where"].endswith(at("aiohttp_app.py", "    time.sleep(0.25)"))
        assert 0.24e9 < block["end"] - block["start"] < 0.5e9
    assert_sound(rec)


def test_aiohttp_server_and_client(corpus):
    _check_aiohttp(corpus("aiohttp"))


def test_aiohttp_server_and_client_on_uvloop(corpus):
    rec = corpus("aiohttp_uvloop")
    _check_aiohttp(rec)
    assert [lp["impl"] for lp in loops(rec)] == ["uvloop"]
    assert "loop never blocked" not in summarize(rec.timeline)
    assert all(e["internal"] for e in creates(rec) if e["coro"] == "iterable_coroutine")


# -- anyio --------------------------------------------------------------------------------------


def test_anyio_task_group_memory_streams_and_to_thread(corpus):
    rec = corpus("anyio")
    assert stdout(rec) == corpus("plain:anyio").stdout == "results [0, 1, 4, 9, 16]\n"
    labels = {user_function(rec, e["task"]): e for e in user_creates(rec)}
    assert set(labels) == {"main", "producer", "consumer"}
    assert labels["producer"]["name"] == "__main__.producer"
    assert labels["consumer"]["name"] == "__main__.consumer"
    spawn = library_sites("anyio/_backends/_asyncio.py", "create_task(wrapper_coro")
    assert labels["producer"]["where"] in spawn
    assert labels["consumer"]["where"] in spawn
    producer, consumer = labels["producer"]["task"], labels["consumer"]["task"]
    # the task group's exit waits for its children
    [group] = waits_at(rec, at("anyio_app.py", "create_task_group()"))
    assert group["kind"] == "gather"
    assert sorted(group["children"]) == sorted([producer, consumer])
    # a send on a memory object stream is a queue wait, not an "Event"
    sends = waits_at(rec, at("anyio_app.py", "send_stream.send(i)"))
    assert sends and {w["kind"] for w in sends} == {"queue"}
    assert len({w["obj"] for w in sends}) == 1
    sleeps = waits_at(rec, at("anyio_app.py", "anyio.sleep(0.01)"))
    assert len(sleeps) == 5 and {w["kind"] for w in sleeps} == {"sleep"}
    assert all("deadline" in w for w in sleeps)
    # to_thread.run_sync: a thread wait, and the worker thread's lane linked to the consumer
    calls = waits_at(rec, at("anyio_app.py", "await anyio.to_thread.run_sync"))
    assert len(calls) == 5 and {w["kind"] for w in calls} == {"thread"}
    assert all(w in waits(rec, consumer) for w in calls)
    jobs = thread_jobs(rec)
    assert len(jobs) == 5
    assert {(j["thread"], j["task"]) for j in jobs} == {("AnyIO worker thread", consumer)}
    assert all(j["func"] and j["start"] <= j["t"] for j in jobs)
    assert worker_threads(rec) == 1
    assert [w for w in waits(rec) if w["kind"] in ("future", "event")] == []
    assert_sound(rec)


# -- aiosqlite ----------------------------------------------------------------------------------


def test_aiosqlite(corpus):
    rec = corpus("aiosqlite")
    assert stdout(rec) == "[('fig', 40), ('apple', 150), ('pear', 170)]\n"
    [main] = [e["task"] for e in user_creates(rec)]
    assert user_function(rec, main) == "main"
    main_waits = waits(rec, main)
    # connect, execute, executemany, commit, execute, fetchall, close: all in the connection thread
    assert len(main_waits) >= 7
    assert {w["kind"] for w in main_waits} == {"thread"}
    first, last = (
        line_of("aiosqlite_app.py", "aiosqlite.connect"),
        line_of("aiosqlite_app.py", "fetchall()"),
    )
    for wait in main_waits:
        assert first <= int(wait["where"].rsplit(":", 1)[1]) <= last
    jobs = thread_jobs(rec)
    # every wait but close()'s last one gets its job: the thread may hand that one back
    # before main awaits it, when no task waits for it yet
    assert len(main_waits) - 1 <= len(jobs) <= len(main_waits)
    assert {j["task"] for j in jobs} == {main}
    [thread] = {j["thread"] for j in jobs}
    assert thread.endswith("(_connection_worker_thread)")
    assert worker_threads(rec) == 1
    assert_sound(rec)


# -- pytest-asyncio under loopviz -m pytest --------------------------------------------------


def test_pytest_asyncio_module_under_m_pytest(corpus):
    rec = corpus("pytest_asyncio")
    assert rec.session.exit_code == 0
    assert "2 passed" in stdout(rec)
    tests = {e["coro"]: e for e in user_creates(rec) if e["coro"].startswith("test_")}
    assert set(tests) == {"test_sleeps_then_returns", "test_gathers_two_children"}
    # made by pytest-asyncio's runner: the spawn site is in the plugin, never empty
    for event in tests.values():
        assert event["where"].startswith("pytest_asyncio/"), event
        assert event["parent"] is None
    children = [e for e in creates(rec) if e["coro"] == "fetch_value"]
    assert len(children) == 2
    gathers = tests["test_gathers_two_children"]
    assert {e["parent"] for e in children} == {gathers["task"]}
    spawn = at("test_pytest_asyncio_module.py", "asyncio.gather(")
    assert all(e["where"].endswith(spawn) for e in children)
    # one loop per test (function scope), each test's tasks on its own loop
    ids = [lp["id"] for lp in loops(rec)]
    assert len(ids) == 2 and len(set(ids)) == 2
    assert tests["test_sleeps_then_returns"]["loop"] != gathers["loop"]
    assert {e["loop"] for e in children} == {gathers["loop"]}
    [single] = waits(rec, tests["test_sleeps_then_returns"]["task"])
    assert single["kind"] == "sleep" and "deadline" in single
    assert single["where"].endswith(at("test_pytest_asyncio_module.py", "asyncio.sleep(delay)"))
    assert_sound(rec)


# -- subprocesses ---------------------------------------------------------------------------------


def test_subprocesses_and_their_streams(corpus):
    rec = corpus("subprocesses")
    plain = corpus("plain:subprocesses")
    # The grandchild writes to the inherited fd 1 itself, read by the parent as it arrives;
    # under load it can land a few ms after a print() the program made just after it: the same
    # lines, not always in the same order (docs/recording.md).
    assert sorted(stdout(rec).splitlines()) == sorted(plain.stdout.splitlines()) == sorted(
        ["communicate: child says hi 3", "child says hi", "wait: 3", "echo: ONE", "echo: TWO"]
    )
    assert {e["coro"] for e in user_creates(rec)} == {
        "main", "run_and_communicate", "run_and_wait"
    }  # fmt: skip
    program = "subprocesses.py"
    # starting a process and waiting for it to exit are process waits
    starts = [i for i, line in enumerate((CORPUS / program).read_text().splitlines(), 1)
              if "create_subprocess_exec(" in line]  # fmt: skip
    assert len(starts) == 3
    for where in [f"{program}:{line}" for line in starts] + [
        at(program, "code = await proc.wait()"),
        at(program, "    await proc.wait()"),
    ]:
        found = waits_at(rec, where)
        assert found and {w["kind"] for w in found} == {"process"}, (where, found)
    communicate = waits_at(rec, at(program, "proc.communicate()"))
    assert communicate and all(
        w["kind"] == "process" and w["label"].endswith(" communicate") for w in communicate
    )
    reads = waits_at(rec, at(program, "proc.stdout.readline()"))
    assert reads and {w["kind"] for w in reads} == {"io"}
    user = {e["task"] for e in user_creates(rec)}
    assert [w for t in user for w in waits(rec, t) if w["kind"] == "future"] == []
    assert_sound(rec)


# -- async-generator pipelines ----------------------------------------------------------------


def test_waits_inside_async_generators_are_followed_down(corpus):
    rec = corpus("agen")
    assert stdout(rec) == corpus("plain:agen").stdout == "sleeper [0, 1, 2]\nconsumer [0, 10, 20]\n"
    sleeper, consumer = rec.task_id("sleeper"), rec.task_id("consumer")
    program = "agen_pipeline.py"
    # a sleep inside the generator: kind sleep, with its deadline, at the generator's line
    ticks = waits(rec, sleeper)
    assert len(ticks) == 3
    for wait in ticks:
        assert wait["kind"] == "sleep" and wait["label"] == "sleep 0.05s"
        assert wait["where"].endswith(at(program, "await asyncio.sleep(0.05)"))
        assert "deadline" in wait
    # queue.get and the lock inside nested generators
    consumer_waits = waits(rec, consumer)
    gets = [w for w in consumer_waits if w["kind"] == "queue"]
    assert gets and all(w["where"].endswith(at(program, "await queue.get()")) for w in gets)
    locks = [w for w in consumer_waits if w["kind"] == "lock"]
    assert len(locks) == 1
    assert locks[0]["where"].endswith(_lock_line())
    assert {w["kind"] for w in consumer_waits} <= {"queue", "lock"}
    # the hog's block: the sleeper's deadline passes during it, so it is starved (ready at its
    # deadline, inside the block), not merely waiting until the block ends
    [block] = blocks_by(rec, "time.sleep(0.3)")
    assert block["task"] == rec.task_id("hog")
    assert block["where"].endswith(at(program, "    time.sleep(0.3)"))
    starved = [
        e for e in rec.events
        if e["ev"] == "ready" and e["task"] == sleeper and e["cause"] == "sleep ended"
        and block["start"] < e["t"] < block["end"]
    ]  # fmt: skip
    assert len(starved) == 1
    assert_sound(rec)


def _lock_line() -> str:
    lines = (CORPUS / "agen_pipeline.py").read_text().splitlines()
    # the `async with lock:` inside the `locked` generator (not the holder's)
    start = next(i for i, line in enumerate(lines, 1) if line.startswith("async def locked"))
    line = next(i for i, text in enumerate(lines, 1) if i > start and "async with lock:" in text)
    return f"agen_pipeline.py:{line}"


# -- loops built directly, and a loop in another thread --------------------------------------


@pytest.mark.parametrize(
    ("name", "impl"),
    [
        ("loop_selector", "asyncio"),
        ("loop_uvloop_new", "uvloop"),
        ("loop_uvloop_class", "uvloop"),
        ("loop_policy", None),
    ],
)
def test_loop_built_directly(corpus, name, impl):
    rec = corpus(name)
    kind = PROGRAMS[name][1][0]
    assert stdout(rec).startswith(f"{kind} ") and stdout(rec).endswith(" ticks 5\n")
    assert "no asyncio event loop was started" not in summarize(rec.timeline)
    [loop] = loops(rec)
    if impl is not None:
        assert loop["impl"] == impl
    assert loop["thread"] == "MainThread"
    assert {e["coro"] for e in user_creates(rec)} == {"main", "ticker", "blocker"}
    assert {e["loop"] for e in creates(rec)} == {loop["id"]}
    [block] = blocks_by(rec, "time.sleep(0.15)")
    assert block["task"] == tasks_of(rec, "blocker")[0]
    assert block["where"].endswith(at("loop_direct.py", "time.sleep(0.15)"))
    assert block["code"] == "time.sleep(0.15)"
    assert_sound(rec)


def test_loop_run_in_another_thread_blames_the_loop_threads_line(corpus):
    rec = corpus("loop_in_thread")
    assert stdout(rec) == "warmed up in MainThread\njob done\nstopped\n"
    [loop] = loops(rec)
    assert {e["coro"] for e in user_creates(rec)} == {"warm_up", "job"}
    [block] = blocks_by(rec, "time.sleep(0.3)")
    assert block["task"] == tasks_of(rec, "job")[0]
    assert block["where"].endswith(at("loop_in_thread.py", "    time.sleep(0.3)"))
    assert block["code"] == "time.sleep(0.3)"
    begin = [e for e in rec.events if e["ev"] == "block_begin" and e["task"] == block["task"]]
    assert [b["where"] for b in begin] == [block["where"]]
    assert_sound(rec)


# -- a block inside C code that holds the GIL ---------------------------------------------------


@pytest.mark.parametrize("run", ["c_block_1", "c_block_2", "c_block_3"])
def test_block_inside_c_code_names_its_line(corpus, run):
    rec = corpus(run)
    assert stdout(rec) == "median 0.499\n"
    # (on a loaded machine another step may pass the threshold too: that block is real, and not
    # what this test is about)
    [block] = [b for b in blocks(rec) if b["task"] == tasks_of(rec, "crunch")[0]]
    assert block.get("gil") is True
    words = summarize(rec.timeline)
    # the line, read by the native watchdog while sorted() held the GIL, or by the Python one
    # when it got the GIL back while the step still ran; without the native watchdog, a step
    # that ended first names its function
    if block["code"] or watchdog._stackwatch is not None:
        assert block["where"].endswith(at("c_block.py", "sorted(DATA)"))
        assert block["code"] == "return sorted(DATA)[len(DATA) // 2]"
        assert "held the GIL; the last Python line seen was return sorted(" in words
    else:
        assert block["where"].endswith(at("c_block.py", "async def crunch"))
        assert "inside a C call that held the GIL, in crunch() (" in words
    for begin in (e for e in rec.events if e["ev"] == "block_begin" and e["task"] == block["task"]):
        assert begin["t"] <= block["end"]
    assert "unknown (no sample)" not in summarize(rec.timeline)
    assert_sound(rec)


# -- tasks made every way ----------------------------------------------------------------------


def test_tasks_made_every_way(corpus):
    rec = corpus("direct_tasks")
    assert (
        stdout(rec)
        == corpus("plain:direct_tasks").stdout
        == ("['direct', 'loop.create_task', 'ensure_future', 'eager']\nfactory\n")
    )
    work = [e for e in creates(rec) if e["coro"] == "work"]
    made = {}
    for label in ("'direct'", "'loop.create_task'", "'ensure_future'", "'factory'"):
        [made[label]] = [e for e in work if label in (e.get("args") or "")]
    assert len(work) == 4
    program = "direct_tasks.py"
    assert made["'direct'"]["where"].endswith(at(program, 'asyncio.Task(work("direct"'))
    assert made["'loop.create_task'"]["where"].endswith(at(program, "loop.create_task(work"))
    assert made["'ensure_future'"]["where"].endswith(at(program, "asyncio.ensure_future(work"))
    # through the custom factory: the innermost frame outside asyncio is the factory itself
    assert made["'factory'"]["where"].endswith(at(program, "return asyncio.Task(coro"))
    [eager] = [e for e in creates(rec) if e["coro"] == "eager_work"]
    assert "'eager'" in eager["args"]
    line = "eager_start=True" if PY312 else 'asyncio.Task(eager_work("eager"), loop=loop))'
    assert eager["where"].endswith(at(program, line))
    [main] = [e["task"] for e in creates(rec) if e["coro"] == "main"]
    assert {e["parent"] for e in creates(rec) if e["coro"] in ("work", "eager_work")} == {main}
    for event in [*made.values(), eager]:
        assert [w["kind"] for w in waits(rec, event["task"])] == ["sleep"]
        assert any(e["ev"] == "done" and e["task"] == event["task"] for e in rec.events)
    assert_sound(rec)


# -- item 9: the recorder never changes the program --------------------------------------------


def test_sleep_of_infinity_waits_until_cancelled(corpus):
    rec, plain = corpus("infinite_sleep"), corpus("plain:infinite_sleep")
    assert plain.returncode == 0
    assert (stdout(rec), stderr(rec)) == (plain.stdout, plain.stderr)
    assert stdout(rec) == "forever: cancelled\nmain: the task was cancelled, as asked\n"
    forever = rec.task_id("forever")
    [wait] = waits(rec, forever)
    assert wait["kind"] == "sleep"
    done = [e for e in rec.events if e["ev"] == "done" and e["task"] == forever]
    assert [d["outcome"] for d in done] == ["cancelled"]
    # no ready made up at an infinite deadline
    assert [e for e in rec.events if e["ev"] == "ready" and e["task"] == forever
            and e["cause"] == "sleep ended"] == []  # fmt: skip
    assert rec.events[-1]["t"] < 3e9
    assert_sound(rec)


def test_eight_threads_printing_at_once_lose_and_double_nothing(corpus):
    rec = corpus("printing_threads")
    out = stdout(rec)
    assert out.count("\n") == 160_000
    said = collections.Counter(re.findall(r"thread \d+ line \d+", out))
    assert len(said) == 160_000 and max(said.values()) == 1
    assert said == collections.Counter(f"thread {n} line {i}" for n in range(8)
                                       for i in range(20_000))  # fmt: skip
    assert stderr(rec) == ""
    assert rec.session.exit_code == 0


def test_debug_mode_created_at_is_what_plain_python_says(corpus):
    rec, plain = corpus("debug_mode"), corpus("plain:debug_mode")
    assert "created at" in plain.stdout
    assert (stdout(rec), stderr(rec)) == (plain.stdout, plain.stderr)
    assert "loopviz" not in stdout(rec)


def test_own_file_argv_and_path_are_what_plain_python_gives(tmp_path):
    program = "tests/corpus/own_file.py"  # relative, as a user types it
    args = ["--flag", "x"]
    plain = subprocess.run(
        [sys.executable, program, *args], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    trace = tmp_path / "own_file.jsonl"
    recorded = subprocess.run(
        [sys.executable, "-m", "loopviz", "record", "-o", str(trace), program, "--", *args],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert recorded.returncode == plain.returncode == 0
    # what the program printed is the first part of the record command's stdout ...
    assert recorded.stdout.startswith(plain.stdout)
    assert f"__file__ {REPO / program}\n" in plain.stdout
    # ... and exactly what the trace holds
    from loopviz.trace import read_trace

    events = read_trace(trace).events
    text = "".join(e.text for e in events if e.ev == "output" and e.stream == "stdout")
    assert text == plain.stdout


def test_spawn_sites_of_user_tasks_stay_in_user_code(corpus):
    """The library rule does not disturb the plain cases: a task the program makes itself is
    spawned at the program's own line."""
    rec = corpus("agen")
    program = "agen_pipeline.py"
    expected = {
        "holder": at(program, "create_task(holder()"),
        "sleeper": at(program, "create_task(sleeper_stage()"),
        "consumer": at(program, "create_task(queue_stage()"),
        "feeder": at(program, "create_task(feeder()"),
        "hog": at(program, "create_task(hog()"),
    }
    for event in user_creates(rec):
        if event["name"] in expected:
            assert event["where"].endswith(expected[event["name"]])
