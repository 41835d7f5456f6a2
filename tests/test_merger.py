"""The merger's rules of time order, from hand-written frames to the exact events released.

No process, thread or clock: each test feeds frames (a watermark and events, as decode_frame
gives them) and output chunks stamped on the parent's clock, and compares the whole list that comes
out, as Trio's instrument tests do.
"""

from __future__ import annotations

from msgspec.structs import replace

from loopviz import events as ev
from loopviz.events import AnyEvent
from loopviz.merger import ChildExit, Merger

T0 = 7_000_000_000  # the parent's clock when the child's clock starts


def hello() -> AnyEvent:
    return ev.Hello(0, t0=T0, python="3.11.7", pid=4242)


def resume(t: int, task: int) -> AnyEvent:
    return ev.Resume(t, task)


def done(t: int, task: int) -> AnyEvent:
    return ev.Done(t, task, "returned", "")


def sleep(t: int, task: int, delay: int) -> AnyEvent:
    return ev.Suspend(t, task, ev.Wait("sleep", "sleep", deadline=t + delay, delay_ns=delay))


def sleep_forever(t: int, task: int) -> AnyEvent:
    return ev.Suspend(t, task, ev.Wait("sleep", "inf"))


def bare_yield(t: int, task: int) -> AnyEvent:
    return ev.Suspend(t, task, ev.BARE_YIELD_WAIT)


def ready(t: int, task: int, cause: str = "woken") -> AnyEvent:
    return ev.Ready(t, task, cause)


def sleep_ended(t: int, task: int) -> AnyEvent:
    return ready(t, task, "sleep ended")


def block_begin(t: int, start: int) -> AnyEvent:
    return ev.BlockBegin(t, 1, start, where="", code="time.sleep(1)")


def block(t: int, start: int) -> AnyEvent:
    return ev.Block(t, 1, start, end=t, where="", code="time.sleep(1)")


def idle(t: int) -> AnyEvent:
    return ev.Idle(t, start=t - 1)


def end(t: int, exit_code: int = 0, error: str | None = None) -> AnyEvent:
    return ev.End(t, exit_code, error)


def output(t: int, text: str, stream: str = "stdout") -> AnyEvent:
    return ev.Output(t, stream, text)


def exited(t: int, status: int = 0, reason: str | None = None, signal: int = 0) -> ChildExit:
    """The child's exit seen at ``t`` on its own clock (killed by ``signal`` if not 0)."""
    return ChildExit(at=T0 + t, started_at=T0, status=status, reason=reason, killed=signal != 0)


def started() -> Merger:
    merger = Merger()
    merger.take_frame(0, [hello()])
    return merger


def test_events_wait_for_the_watermark_then_come_out_in_time_order():
    merger = started()
    merger.take_frame(100, [resume(50, 1), idle(150), resume(120, 2)])
    assert merger.release() == [resume(50, 1)]
    assert merger.held == 2
    merger.take_frame(200, [resume(110, 3)])  # another thread's, sent after the first frame
    assert merger.release() == [resume(110, 3), resume(120, 2), idle(150)]
    assert merger.release() == [] and merger.held == 0


def test_events_at_the_same_time_keep_the_order_they_came_in():
    merger = started()
    merger.take_frame(10, [resume(30, 2), done(30, 2)])
    merger.take_frame(20, [resume(30, 1)])
    merger.take_frame(40, [done(30, 1)])
    assert merger.release() == [resume(30, 2), done(30, 2), resume(30, 1), done(30, 1)]


def test_the_hello_gives_the_clock_and_python_and_the_first_loop_the_header():
    merger = Merger()
    loop = ev.Loop(5, impl="uvloop", unrecorded="", id=1, thread="MainThread")
    second = replace(loop, impl="asyncio", id=2)
    merger.take_frame(10, [hello(), loop, second])
    assert (merger.t0, merger.python_version, merger.loop_impl) == (T0, "3.11.7", "uvloop")
    assert merger.release() == [loop, second]  # the hello is the header's, not an event


def test_a_sleep_is_ready_at_its_deadline_and_the_childs_own_ready_is_dropped():
    merger = started()
    merger.take_frame(100, [resume(10, 1), sleep(20, 1, 50)])
    assert merger.release() == [resume(10, 1), sleep(20, 1, 50), sleep_ended(70, 1)]
    # the loop got to the timer late (a block): the child's ready then says nothing new
    merger.take_frame(400, [ready(300, 1), resume(310, 1)])
    assert merger.release() == [resume(310, 1)]


def test_a_ready_at_the_deadline_waits_for_the_watermark_like_any_event():
    merger = started()
    merger.take_frame(30, [sleep(20, 1, 50)])
    assert merger.release() == [sleep(20, 1, 50)]
    merger.take_frame(80, [])
    assert merger.release() == [sleep_ended(70, 1)]


def test_a_sleep_woken_before_its_deadline_never_became_ready_so():
    merger = started()
    merger.take_frame(100, [sleep(10, 1, 500), sleep(10, 2, 500), resume(40, 1), done(50, 2)])
    merger.take_frame(1000, [sleep(60, 1, 100)])  # asleep again: a new deadline of its own
    assert merger.release() == [
        sleep(10, 1, 500), sleep(10, 2, 500), resume(40, 1), done(50, 2), sleep(60, 1, 100),
        sleep_ended(160, 1),
    ]  # fmt: skip


def test_a_sleep_of_infinity_is_never_ready():
    merger = started()
    merger.take_frame(10**12, [sleep_forever(10, 1), ready(900, 1), resume(950, 1)])
    assert merger.release() == [sleep_forever(10, 1), ready(900, 1), resume(950, 1)]


def test_a_bare_yield_is_ready_at_once():
    merger = started()
    merger.take_frame(100, [bare_yield(10, 1), resume(30, 1)])
    assert merger.release() == [bare_yield(10, 1), sleep_ended(10, 1), resume(30, 1)]


def test_a_straggler_gets_the_time_already_released_so_the_order_holds():
    merger = started()
    merger.take_frame(100, [resume(50, 1), idle(90)])
    assert merger.release() == [resume(50, 1), idle(90)]
    merger.take_frame(200, [resume(80, 2), idle(150)])  # 80: later than the watermark promised
    assert merger.release() == [resume(90, 2), idle(150)]


def test_a_watchdog_notice_read_after_its_block_is_stale():
    merger = started()
    merger.take_frame(100, [block_begin(50, start=10)])  # in time: the block is still on
    merger.take_frame(400, [block(300, start=10), block(350, start=320)])
    merger.take_frame(500, [block_begin(330, start=320)])  # the second block's, after its end
    assert merger.release() == [block_begin(50, 10), block(300, 10), block(350, 320)]


def test_the_end_is_held_back_and_comes_last_at_the_latest_time_seen():
    merger = started()
    merger.take_frame(600, [resume(100, 1), end(500)])
    merger.take_frame(600, [done(520, 1)])  # a thread's event sent after the end
    assert merger.release() == [resume(100, 1), done(520, 1)]
    merger.take_output("stdout", T0 + 700, "atexit\n")  # printed by an atexit handler
    merger.finish(exited(900))
    assert merger.release() == [output(700, "atexit\n"), end(700)]
    assert merger.release() == []


def test_the_end_is_never_before_what_was_released():
    merger = started()
    merger.take_frame(800, [end(500), idle(700)])
    assert merger.release() == [idle(700)]
    merger.finish(exited(900))
    assert merger.release() == [end(700)]


def test_a_kill_after_the_childs_own_end_ends_with_the_kill():
    merger = started()
    merger.take_frame(600, [resume(100, 1), end(500)])
    reason = "the scenario was killed by SIGKILL"
    merger.finish(exited(900, status=137, reason=reason, signal=9))
    assert merger.release() == [resume(100, 1), end(900, 137, reason)]


def test_a_child_that_sent_no_end_ends_when_its_exit_was_seen():
    merger = started()
    merger.take_frame(600, [resume(100, 1)])
    reason = "the scenario's process ended without reporting how"
    merger.finish(exited(900, status=7, reason=reason))
    assert merger.release() == [resume(100, 1), end(900, 7, reason)]


def test_nothing_made_up_comes_after_the_end():
    merger = started()
    merger.take_frame(300, [sleep(10, 1, 100), sleep(20, 2, 10**9), end(200)])
    merger.finish(exited(250))
    assert merger.release() == [
        sleep(10, 1, 100), sleep(20, 2, 10**9), sleep_ended(110, 1), end(200),
    ]  # fmt: skip


def test_output_read_before_the_hello_waits_for_the_childs_clock():
    merger = Merger()
    merger.take_output("stderr", T0 - 50, "warning\n")  # read before the child's clock started
    merger.take_output("stdout", T0 + 40, "early\n")
    assert merger.release() == [] and merger.held == 0
    merger.take_frame(100, [hello(), resume(30, 1)])
    assert merger.release() == [
        output(0, "warning\n", "stderr"), resume(30, 1), output(40, "early\n"),
    ]  # fmt: skip
    merger.take_output("stdout", T0 + 150, "late\n")
    merger.take_frame(200, [])
    assert merger.release() == [output(150, "late\n")]


def test_a_child_that_died_before_its_hello_keeps_its_output_timed_from_its_start():
    merger = Merger()
    merger.take_output("stdout", T0 + 30, "before\n")
    merger.finish(exited(80, status=7, reason="the scenario's process ended without reporting how"))
    assert merger.release() == [
        output(30, "before\n"), end(80, 7, "the scenario's process ended without reporting how"),
    ]  # fmt: skip
