"""One HTTP request's job (``higgs_worker/http/http_job.py``) on a real event loop: a real
``Service`` and ``RequestLine`` around a worker with the tiny model on the CPU, the job run in
its thread by ``JobThread``. The route around it is left out (the routers' tests run it whole):
these tests hold the job's own promises: its events in order, the outcome last, its place and
run given back whatever the outcome, its stop flag set when the client goes."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from starlette.requests import Request

from higgs_worker.contract.errors import GENERATION_FAILED, REFERENCE_AUDIO, JobFailure
from higgs_worker.contract.output import JobOutput
from higgs_worker.http.http_job import HttpJob
from higgs_worker.http.service import Service

JOB = {"text": "Hello there.", "seed": 1, "max_new_tokens": 12, "delivery": "base64"}


async def given_back(service: Service, place) -> None:
    """Until the job's ``after`` ran (its thread ends just after the last event is handed over)."""
    while place.held or service.active:
        await asyncio.sleep(0.01)


async def run_job(service: Service, job_input: dict, want_audio: bool) -> tuple[list, object]:
    prepared = await service.prepare(job_input)
    with service.line.place() as place:
        job = HttpJob(service, prepared, want_audio=want_audio, place=place)
        await job.start()
        assert place.handed_over  # the job gives the place back, not the route
        events = []
        while not events or events[-1][0] != "done":
            events.append(await job.events.get())
    await asyncio.wait_for(given_back(service, place), 60)
    return events, place


def test_audio_pieces_come_while_it_runs_then_the_outcome_last_then_its_place_is_back(make_worker):
    service = Service(make_worker())
    events, place = asyncio.run(run_job(service, JOB, want_audio=True))
    *pieces, (last, outcome) = events
    assert last == "done" and isinstance(outcome, JobOutput)
    assert pieces and all(kind == "audio" and isinstance(piece, np.ndarray) for kind, piece in pieces)
    assert sum(len(piece) for _, piece in pieces) / 24000 == pytest.approx(outcome.duration_s, abs=1e-3)
    assert not place.held and service.line.places == 0 and service.active == {}


def test_a_job_that_wants_no_audio_gets_its_outcome_only(make_worker):
    service = Service(make_worker())
    events, _ = asyncio.run(run_job(service, JOB, want_audio=False))
    assert [kind for kind, _ in events] == ["done"] and isinstance(events[0][1], JobOutput)


def test_a_failure_is_the_last_event_and_the_place_is_given_back(make_worker, file_server):
    """The reference URL passes the check when the job arrives and fails once fetched (404)."""
    _, url = file_server
    service = Service(make_worker({"ALLOW_PRIVATE_URLS": "true"}))
    job = {**JOB, "reference_audio": {"url": f"{url}/missing.wav"}}
    events, place = asyncio.run(run_job(service, job, want_audio=True))
    (kind, outcome), *_ = events
    assert kind == "done" and isinstance(outcome, JobFailure) and outcome.code == REFERENCE_AUDIO, events
    assert not place.held and service.line.places == 0


def test_a_cancelled_job_stops_and_still_gives_its_run_back(make_worker):
    async def cancelled() -> tuple[object, Service]:
        service = Service(make_worker({"MAX_NEW_TOKENS": "2000"}))
        prepared = await service.prepare({**JOB, "max_new_tokens": 2000, "text": "A long one. " * 20})
        with service.line.place() as place:
            job = HttpJob(service, prepared, want_audio=True, place=place)
            await job.start()
            job.cancel("the test stops it")
            while (event := await job.events.get())[0] != "done":
                pass
        await asyncio.wait_for(given_back(service, place), 60)
        again = await run_job(service, JOB, want_audio=False)  # its run is free again
        return event[1], again[0][-1][1]

    outcome, next_outcome = asyncio.run(cancelled())
    assert isinstance(outcome, JobFailure) and outcome.code == GENERATION_FAILED, outcome
    assert isinstance(next_outcome, JobOutput)


def test_a_client_that_has_gone_stops_the_job_and_gets_nothing(make_worker):
    """A real starlette Request whose client has disconnected (its receive says so)."""

    async def receive() -> dict:
        return {"type": "http.disconnect"}

    async def gone() -> tuple[object, HttpJob, Service]:
        service = Service(make_worker({"MAX_NEW_TOKENS": "2000"}))
        prepared = await service.prepare({**JOB, "max_new_tokens": 2000, "text": "A long one. " * 20})
        with service.line.place() as place:
            job = HttpJob(service, prepared, want_audio=False, place=place)
            event = await job.first_event(Request({"type": "http", "method": "POST", "headers": []}, receive))
        await asyncio.wait_for(given_back(service, place), 60)
        return event, job, service

    event, job, service = asyncio.run(gone())
    assert event is None and job.stop.is_set()
    assert service.line.places == 0 and service.active == {}
