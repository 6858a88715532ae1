"""Generation slots (held only while generating, handed out in arrival order, left by a
stopped waiter) and the rule for how many jobs a worker takes at once."""

from __future__ import annotations

import threading
import time

import pytest

from higgs_worker.admission import GenerationSlots, io_jobs_for
from higgs_worker.contract.errors import Cancelled


def test_slots_are_handed_out_in_arrival_order():
    slots = GenerationSlots(1)
    slots.acquire()
    order: list[int] = []

    def wait(i: int) -> None:
        with slots.held():
            order.append(i)

    threads = []
    for i in range(5):
        threads.append(threading.Thread(target=wait, args=(i,)))
        threads[-1].start()
        while slots.waiting < i + 1:  # each one queued before the next arrives
            time.sleep(0.01)
    slots.release()
    for thread in threads:
        thread.join(timeout=10)
    assert order == [0, 1, 2, 3, 4] and slots.busy == 0 and slots.waiting == 0


def test_a_stopped_waiter_leaves_the_queue_and_the_others_go_on():
    slots = GenerationSlots(1)
    slots.acquire()
    stop = threading.Event()
    outcome: list[str] = []

    def stopped() -> None:
        try:
            slots.acquire(stop.is_set)
            outcome.append("got a slot")
        except Cancelled:
            outcome.append("cancelled")

    waiter = threading.Thread(target=stopped)
    waiter.start()
    while slots.waiting < 1:
        time.sleep(0.01)
    stop.set()
    waiter.join(timeout=10)
    assert outcome == ["cancelled"] and slots.waiting == 0
    slots.release()
    with slots.held():  # the slot it did not take is free
        assert slots.busy == 1


@pytest.mark.parametrize(
    ("setting", "slots", "expected"),
    [(None, 1, 2), (None, 4, 2), (None, 5, 3), (None, 16, 8), (None, 32, 16), (0, 16, 0), (3, 1, 3)],
)
def test_io_jobs_rule(setting, slots, expected):
    assert io_jobs_for(setting, slots) == expected


def test_both_doors_take_the_generation_slots_plus_io_jobs(make_worker):
    import handler

    worker = make_worker({"MAX_CONCURRENCY": "3", "IO_JOBS": "5"}, share_engine=False)  # no engine yet
    assert worker.concurrency == 3 and worker.generation_slots().size == 3
    assert worker.jobs_at_once == 8
    handler._worker, saved = worker, handler._worker
    try:
        assert handler.concurrency_modifier(1) == 8  # the SDK takes this many jobs at once
    finally:
        handler._worker = saved
    assert make_worker(share_engine=False).jobs_at_once == 1 + 2  # the CPU default: one slot, two beside it
