"""Issue 30 item 3: the simulation behind the book defaults models the real worker and RunPod's
queue-delay scaler. A worker takes MAX_CONCURRENCY + IO_JOBS jobs (the rule of
higgs_worker/admission.py, IO_JOBS its own default); the scaler adds a worker only while a job
waits in the endpoint's queue longer than its value, so jobs a worker took never make it scale."""

from __future__ import annotations

import time

from higgs_tts.endpoint import QueueEndpoint

from higgs_worker.admission import io_jobs_for
from tests.support.fake_endpoint import FakeEndpoint, SimulatedWorkers


def _endpoint(fake: FakeEndpoint) -> QueueEndpoint:
    return QueueEndpoint("fake-endpoint", fake.api_key, base_url=fake.base_url)


def test_one_worker_takes_max_concurrency_plus_io_jobs_and_the_scaler_waits_for_a_queue():
    with (
        FakeEndpoint(lost_after_s=60) as fake,
        SimulatedWorkers(
            fake, 1, rtf=1.0, slots=4, io_jobs=None, max_workers=3, queue_delay_s=0.5, scaler_tick_s=0.1
        ) as workers,
    ):
        assert workers.takes == 4 + io_jobs_for(None, 4) == 6
        client = _endpoint(fake)
        for n in range(6):
            client.submit({"text": f"A long piece of text number {n} " * 20})
        fake.wait_for(lambda: sum(j.status == "IN_PROGRESS" for j in fake.jobs.values()) == 6, 10, "6 taken")
        time.sleep(1.5)  # three times the scaler's delay: no job waits in the queue, so no new worker
        assert len(workers.started_at) == 1
        assert {j.worker for j in fake.jobs.values()} == {"sim-0"}
        for n in range(3):
            client.submit({"text": f"Another piece {n} " * 20})
        fake.wait_for(lambda: len(workers.started_at) >= 2, 10, "a second worker")
        fake.wait_for(lambda: all(j.status == "IN_PROGRESS" for j in fake.jobs.values()), 10, "all taken")
        assert len({j.worker for j in fake.jobs.values()}) == 2


def test_a_full_batch_runs_each_job_slower_than_alone():
    """batch_cost: 4 jobs together each take (1 + 3 x 0.5) = 2.5 x their time alone."""
    with (
        FakeEndpoint(lost_after_s=60) as fake,
        SimulatedWorkers(fake, 1, rtf=0.0, overhead_s=0.0, slots=4, io_jobs=0, batch_cost=0.5) as workers,
    ):
        workers.behave = lambda job_input: {"run_s": 0.4}
        client = _endpoint(fake)
        ids = [client.submit({"text": f"Piece {n}."}) for n in range(4)]
        fake.wait_for(lambda: all(fake.jobs[i].status == "COMPLETED" for i in ids), 20, "4 done")
        each = [fake.jobs[i].finished - fake.jobs[i].started for i in ids]
    assert min(each) > 0.4 * 2.5 * 0.9, each  # not 0.4 s: they shared the batch
