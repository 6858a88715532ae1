"""The thread-to-asyncio bridge both doors use (``higgs_worker.job_thread``): a real event
loop and real threads."""

from __future__ import annotations

import asyncio
import threading

import pytest

from higgs_worker.contract.errors import JobFailure
from higgs_worker.job_thread import ENDED_UNEXPECTEDLY, JobThread


def test_events_arrive_in_order_then_the_last_then_after_runs():
    async def main():
        thread = JobThread()
        released = asyncio.Event()
        queued_when_released: list = []

        def work():
            thread.put(("item", 1))
            thread.put(("item", 2))
            return "outcome"

        def after():
            queued_when_released.append(thread.events.qsize())
            released.set()

        thread.start("t", work, last=lambda outcome: ("done", outcome), after=after)
        await asyncio.wait_for(released.wait(), 30)
        return [thread.events.get_nowait() for _ in range(3)], queued_when_released

    events, queued_when_released = asyncio.run(main())
    assert events == [("item", 1), ("item", 2), ("done", "outcome")]
    assert queued_when_released == [3]  # ``after`` (the HTTP door frees its slot) runs once the last event is in


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the thread's own exception
def test_a_thread_that_raises_still_ends_with_the_fallback_failure():
    async def main():
        thread = JobThread()
        released = asyncio.Event()

        def work():
            raise RuntimeError("boom")

        thread.start("boom", work, last=lambda outcome: outcome, after=released.set)
        outcome = await thread.events.get()
        await asyncio.wait_for(released.wait(), 30)
        return outcome

    outcome = asyncio.run(main())
    for running in [t for t in threading.enumerate() if t.name == "boom"]:
        running.join(30)  # its exception is reported within this test (the warning filtered here)
    assert isinstance(outcome, JobFailure) and outcome is ENDED_UNEXPECTEDLY
    assert outcome.as_output() == {
        "error": "generation_failed: the job ended unexpectedly; the worker is still serving"
    }


def test_putting_after_the_loop_closed_does_nothing():
    gate, done = threading.Event(), threading.Event()
    errors: list = []

    async def main():
        thread = JobThread()

        def work():
            gate.wait(30)
            try:
                thread.put(("late", 0))  # the loop is gone: no exception reaches the job's thread
            except Exception as exc:  # pragma: no cover - the failure this test looks for
                errors.append(exc)
            done.set()
            return None

        thread.start("t", work, last=lambda outcome: ("done", outcome))
        return thread.stop

    stop = asyncio.run(main())
    gate.set()
    assert done.wait(30) and errors == [] and not stop.is_set()
