"""The alignment service's deadline covers the wait for a helper and the write to it, not
only the read (issue 26, finding 4): real helper processes stopped with SIGSTOP, as the
probe did. Every wait in these tests is bounded (threads joined with a timeout; the
stopped helper is killed at the end whatever happens), so the old behaviour, a job that
hangs for ever, fails the test instead of hanging the suite."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

from higgs_worker.audio.align.service import AlignmentService

RATE = 24000
WORDS = ["Hello", "there,", "my", "friend."]
LONG = np.zeros(RATE * 30, dtype=np.float32)  # 2.9 MB pickled: far more than a pipe holds
JOIN_S = 30.0  # far above the 2 s deadlines: only a job that hangs reaches it


@pytest.fixture
def service():
    service = AlignmentService(processes=1)
    yield service
    service.close()


def stopped_helper(service: AlignmentService) -> int:
    """Start the service's helper (its first request), then stop it; its pid."""
    assert service.align(np.zeros(RATE, dtype=np.float32), RATE, ["Hello."]).words  # the helper is up
    (helper,) = list(service._idle.queue)
    os.kill(helper.process.pid, signal.SIGSTOP)
    return helper.process.pid


def in_threads(count: int, call) -> list:
    results: list = [None] * count

    def run(i: int) -> None:
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    until = time.monotonic() + JOIN_S
    for thread in threads:
        thread.join(max(0.0, until - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), "a job still waits on the stopped helper"
    return results


def test_a_helper_that_stops_reading_fails_the_request_at_its_deadline_and_is_replaced(service):
    pid = stopped_helper(service)
    try:
        (aligned,) = in_threads(1, lambda: service.align(LONG, RATE, WORDS, timeout_s=2))
        assert "took longer than 2 s" in aligned.error
        assert [w.word for w in aligned.words] == WORDS and all(w.approximate for w in aligned.words)
        assert aligned.words[-1].end_s == pytest.approx(30.0)
        assert not _alive(pid), "the stuck helper was not ended"
        again = service.align(np.zeros(RATE, dtype=np.float32), RATE, ["Hello."], timeout_s=30)
        assert again.error is None or "took longer" not in again.error, again.error  # a new helper answered
        assert service._started == 1
    finally:
        _kill(pid)


def test_requests_waiting_for_a_stuck_helper_end_at_their_deadline(service):
    pid = stopped_helper(service)
    try:
        results = in_threads(3, lambda: service.align(LONG, RATE, WORDS, timeout_s=2))
        for aligned in results:
            assert aligned.error and all(w.approximate for w in aligned.words), aligned
        assert any("took longer than 2 s" in a.error for a in results)
        assert not _alive(pid) and service._started <= 1
    finally:
        _kill(pid)


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs or is stopped (a zombie, ended but not yet reaped, is not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_a_job_whose_helper_stops_reading_succeeds_with_approximate_words(make_worker, monkeypatch):
    """The whole job (tiny model, CPU) with the worker's own alignment service, its helper
    stopped. The one knob: BASE_TIMEOUT_S lowered from 30 s to 2 s, so that the job's
    deadline passes soon; 60 steps make 2.4 s of audio, more than the helper's pipe holds."""
    from higgs_worker.audio.align import service as align_service

    monkeypatch.setattr(align_service, "BASE_TIMEOUT_S", 2.0)
    worker = make_worker()
    job = {"text": "Hello there, my friend.", "seed": 5, "max_new_tokens": 60, "word_timestamps": True}
    first = worker.run({"id": "words-1", "input": job}).as_output()  # starts the worker's helper
    assert "error" not in first, first
    pids = [helper.process.pid for helper in list(align_service.default_service()._idle.queue)]
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        (out,) = in_threads(1, lambda: worker.run({"id": "words-2", "input": job}).as_output())
        assert "error" not in out, out
        for segment in out["segments"]:
            assert "took longer than" in segment["alignment_error"], segment
            assert segment["words"] and all(word["approximate"] for word in segment["words"])
    finally:
        for pid in pids:
            _kill(pid)
