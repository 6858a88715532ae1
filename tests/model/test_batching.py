"""Concurrent jobs share every decode step (higgs_worker.model.scheduler), on the tiny model.

A job's logits beside others match its plain batch-1 path within a tolerance, and the same
seed with the same batch composition gives the same codes (docs/reproducibility.md); a
cancelled or failing job takes no other job with it; the SDK's local API and its real worker loop run 8 jobs at once.
"""

from __future__ import annotations

import io
import threading
import time
from dataclasses import replace

import numpy as np
import pytest
import requests
import soundfile as sf
import torch

from higgs_worker.contract.errors import Cancelled
from higgs_worker.devtools import numerics
from higgs_worker.model.engine import Engine, Sampling
from higgs_worker.model.prompt import SYSTEM_SINGLE, AudioClip, Prompt, Turn
from tests.conftest import BUCKET, FAKE_AWS, wav_bytes
from tests.support.api_server import rp_serve_api

REFERENCE = AudioClip(torch.randint(0, 1024, (8, 30), generator=torch.Generator().manual_seed(4)))


def prompt(index: int, clone: bool = False) -> Prompt:
    turns = [Turn("user", f"Sentence number {index} is spoken here.")]
    if clone:
        turns = [Turn("user", "Reference words."), Turn("assistant", audio=REFERENCE), *turns]
    return Prompt(SYSTEM_SINGLE, ["Audio is recorded from a quiet room."], turns)


@pytest.fixture(scope="module")
def batch_engine(engine):
    """The tiny model's modules behind a scheduler with 8 slots; the stream-eos id moved out
    of reach so that every sequence runs exactly its max_new_tokens rows (overlap is certain)."""
    batched = Engine(
        engine.model, engine.audio_tokenizer, engine.tokenizer, engine.feature_extractor, "cpu", max_concurrency=8
    )
    batched.loop.rules = replace(batched.loop.rules, eos_id=engine.model.config.codebook_size + 100)
    return batched


class BatchSpy:
    """Records the batch size of every batched forward (wraps the real plain step)."""

    def __init__(self, scheduler):
        self.sizes: list[int] = []
        self.step = scheduler.step
        self.original = scheduler.step.plain

    def __enter__(self):
        def step(codes, *rest):
            self.sizes.append(codes.shape[0])
            return self.original(codes, *rest)

        self.step.plain = step
        return self

    def __exit__(self, *exc):
        self.step.plain = self.original


def rows_of(engine, p, sampling, seed, should_stop=None, started=None) -> torch.Tensor:
    rows = []
    for row in engine.generate_rows(p, sampling, should_stop, engine.generator(seed)):
        if started is not None:
            started.set()
        rows.append(row)
    return torch.stack(rows)


def wait_steps(scheduler, count: int) -> None:
    target = scheduler.steps + count
    deadline = time.monotonic() + 60
    while scheduler.steps < target and time.monotonic() < deadline:
        time.sleep(0.001)


SAMPLINGS = {
    "greedy-ras": Sampling(temperature=0, max_new_tokens=40),
    "sampled-ras": Sampling(temperature=0.9, top_k=40, top_p=0.9, max_new_tokens=40),
}


# Beside other jobs a row's logits are computed by other kernels than alone (the batch size picks
# the matmul's blocking; on AVX-512 CPUs and on GPUs the rounding differs), so a sampled code
# may part ways at a near tie and the rest of the job follows another, equally valid, path.
# What holds, and is tested: the logits each row was drawn from equal, within LOGIT_TOLERANCE of
# the largest logit, the plain batch-1 path fed the same codes (teacher forcing); and the same
# seed with the same batch composition gives the same codes (docs/reproducibility.md).
LOGIT_TOLERANCE = 1e-5  # of the largest logit, CPU fp32 (measured here: at most 4e-7)


@pytest.mark.parametrize("kind", list(SAMPLINGS))
def test_the_same_seed_and_batch_composition_give_the_same_codes(batch_engine, kind):
    sampling = SAMPLINGS[kind]
    first = rows_of(batch_engine, prompt(100, clone=True), sampling, seed=42)
    assert first.shape == (40, 8)
    assert torch.equal(rows_of(batch_engine, prompt(100, clone=True), sampling, seed=42), first)
    other_seed = rows_of(batch_engine, prompt(100, clone=True), sampling, seed=43)
    assert torch.equal(other_seed, first) == (kind == "greedy-ras")  # and the seed is what decides


@pytest.mark.parametrize("others", [1, 3, 7])
@pytest.mark.parametrize("kind", list(SAMPLINGS))
def test_beside_others_a_jobs_logits_match_its_plain_path_within_tolerance(batch_engine, others, kind):
    """Each job joins a few steps after the previous one; every job's logits, row by row, against
    the plain batch-1 path fed the same codes."""
    sampling = SAMPLINGS[kind]
    # the others run until the target has ended (then they stop), however late a busy machine
    # lets the target start: a fixed length could end them first and the target would step alone
    other_sampling = replace(sampling, max_new_tokens=2000)  # within a slot: they share the slot lane
    batches = [batch_engine.batch_for(prompt(index, clone=index % 2 == 0)) for index in range(others)]
    batches.append(batch_engine.batch_for(prompt(100, clone=True)))  # the target, last
    rows: dict[int, torch.Tensor] = {}
    errors: list[BaseException] = []
    target_done = threading.Event()

    def job(index: int) -> None:
        target = index == others
        generator = batch_engine.generator(42 if target else index)
        got: list[torch.Tensor] = []
        try:
            stop = None if target else target_done.is_set
            for row in batch_engine.scheduler.generate(
                batches[index], sampling if target else other_sampling, generator, stop
            ):
                got.append(row)
        except Cancelled:
            if target:
                errors.append(AssertionError("the target was cancelled"))
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            rows[index] = torch.stack(got) if got else torch.empty(0, 8, dtype=torch.long)
            if target:
                target_done.set()

    scheduler = batch_engine.scheduler
    with BatchSpy(scheduler) as spy, numerics.LogitRecorder(scheduler, batches) as recorder:
        threads = []
        for index in range(others + 1):  # each starts a few steps after the previous one
            threads.append(threading.Thread(target=job, args=(index,)))
            threads[-1].start()
            if index < others:
                wait_steps(scheduler, 5)
        for thread in threads:
            thread.join()
    assert not errors, errors
    assert max(spy.sizes) == others + 1  # the target really shared its steps with all the others
    assert rows[others].shape == (40, 8)
    for index in range(others + 1):
        plain = numerics.plain_logits(batch_engine, batches[index], rows[index])
        figures = numerics.compare(recorder.stacked(index), plain, batch_engine.num_codebooks)
        assert figures["steps"] == len(rows[index])
        print(f"job {index} of {others + 1} ({kind}): max_rel_diff {figures['max_rel_diff']:.2e}")
        assert figures["max_rel_diff"] < LOGIT_TOLERANCE, (index, figures)


def test_cancel_one_of_four_mid_generation(batch_engine):
    sampling = Sampling(max_new_tokens=60)
    alone = {i: rows_of(batch_engine, prompt(i), sampling, seed=i) for i in range(4)}
    asked = {"n": 0}

    def stop_after_ten_rows() -> bool:  # asked once before each row
        asked["n"] += 1
        return asked["n"] > 10

    got: dict[int, torch.Tensor] = {}
    cancelled_rows: list[torch.Tensor] = []
    outcome: dict[str, BaseException] = {}

    def job(index: int) -> None:
        if index != 2:
            got[index] = rows_of(batch_engine, prompt(index), sampling, seed=index)
            return
        try:
            for row in batch_engine.scheduler.generate(
                batch_engine.batch_for(prompt(2)), sampling, batch_engine.generator(2), stop_after_ten_rows
            ):
                cancelled_rows.append(row)
        except Cancelled as exc:
            outcome["stopped"] = exc

    threads = [threading.Thread(target=job, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert "stopped" in outcome
    assert len(cancelled_rows) == 10 and asked["n"] == 11  # no row after the stop: it stopped within the step
    assert torch.equal(torch.stack(cancelled_rows), alone[2][:10])
    for index in (0, 1, 3):
        assert torch.equal(got[index], alone[index])


def test_a_failing_reference_url_fails_only_that_job(make_worker, batch_engine, file_server):
    folder, url = file_server
    (folder / "ref.wav").write_bytes(wav_bytes(1.0))
    worker = make_worker({"ALLOW_PRIVATE_URLS": "true"})
    worker.engine = batch_engine
    inputs = [
        {"text": "Hello there.", "seed": 1, "max_new_tokens": 30},
        {"text": "Hello there.", "seed": 2, "max_new_tokens": 30, "reference_audio": {"url": f"{url}/missing.wav"}},
        {"text": "Hello there.", "seed": 3, "max_new_tokens": 30, "reference_audio": {"url": f"{url}/ref.wav"}},
    ]
    outputs: dict[int, dict] = {}
    threads = [
        threading.Thread(target=lambda i=i: outputs.__setitem__(i, worker.run({"input": inputs[i]}).as_output()))
        for i in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outputs[1]["error"].startswith("reference_audio: ")
    assert "audio_base64" in outputs[0] and "audio_base64" in outputs[2]


def result_of(output):
    """The queue handler's output is the aggregated list (its last item is the result) or the dict."""
    return output[-1] if isinstance(output, list) else output


def decoded(s3_client, uri: str) -> np.ndarray:
    data = s3_client.get_object(Bucket=BUCKET, Key=uri.removeprefix(f"s3://{BUCKET}/"))["Body"].read()
    audio, rate = sf.read(io.BytesIO(data))
    assert rate == 24000
    return audio


def eight_jobs() -> list[dict]:
    jobs = [
        {"text": f"Job {i} says hello.", "seed": 10 + i, "max_new_tokens": 40, "output_name": f"c{i}"} for i in range(7)
    ]
    jobs.append({**jobs[0], "output_name": "c0-again"})  # the same seed and text as job 0
    return jobs


@pytest.mark.slow
def test_rp_serve_api_runs_eight_jobs_at_once(subprocess_env, moto_server, s3_client):
    env = {**subprocess_env, **FAKE_AWS, "S3_BUCKET": BUCKET, "S3_ENDPOINT_URL": moto_server, "MAX_CONCURRENCY": "8"}
    with rp_serve_api(env) as (url, _proc):
        ids = [requests.post(f"{url}/run", json={"input": job}, timeout=30).json()["id"] for job in eight_jobs()]
        results = {}
        deadline = time.monotonic() + 240
        while len(results) < len(ids) and time.monotonic() < deadline:
            for job_id in ids:
                if job_id not in results:
                    body = requests.post(f"{url}/status/{job_id}", timeout=30).json()
                    if body.get("status") in ("COMPLETED", "FAILED"):
                        results[job_id] = body
            time.sleep(0.2)
    assert [results[i]["status"] for i in ids] == ["COMPLETED"] * 8, results
    outputs = [result_of(results[i]["output"]) for i in ids]
    audio = [decoded(s3_client, out["s3_uri"]) for out in outputs]
    for samples, out in zip(audio, outputs, strict=True):
        assert len(samples) / 24000 == pytest.approx(out["duration_s"], abs=1e-3)
    assert np.array_equal(audio[0], audio[7])  # the seed reproduces, whatever ran beside it


@pytest.mark.slow
def test_sdk_worker_loop_runs_eight_jobs_at_once(subprocess_env, moto_server, s3_client, tmp_path):
    from tests.handler.test_runpod_worker_loop import JOB_TIMEOUT, start_loop

    env = {**subprocess_env, **FAKE_AWS, "S3_BUCKET": BUCKET, "S3_ENDPOINT_URL": moto_server, "MAX_CONCURRENCY": "8"}
    fake, worker = start_loop(env, tmp_path, stream_jobs=False)
    try:
        ids = [fake.submit(job) for job in eight_jobs()]
        bodies = {}
        for job_id in ids:
            try:
                bodies[job_id] = fake.wait_result(job_id, JOB_TIMEOUT).body
            except TimeoutError as exc:
                raise AssertionError(f"{exc}\n{worker.output()[-4000:]}") from None
        assert all(set(bodies[i]) == {"output"} for i in ids), bodies  # COMPLETED, no "error"
        outputs = [result_of(bodies[i]["output"]) for i in ids]
        audio = [decoded(s3_client, out["s3_uri"]) for out in outputs]
        assert np.array_equal(audio[0], audio[7])
        first_result = min(e.t for e in fake.of("result"))
        taken_before = [e for e in fake.of("take") if e.t < first_result]
        assert len(taken_before) >= 2  # the worker held several jobs at once
        assert not fake.of("rejected"), [e.body for e in fake.of("rejected")]
    finally:
        worker.close()
        fake.__exit__(None, None, None)


def test_stale_keys_and_values_in_a_slot_cannot_poison_its_next_sequence(batch_engine):
    """The mask is additive: a NaN or inf left in a slot's unused columns (fp16 overflow in an
    earlier sequence) would reach the next one through 0 x NaN in the attention's weighted sum;
    the slot's columns past a new sequence's length are zeroed when it takes the slot."""
    sampling = Sampling(temperature=0, max_new_tokens=20)
    clean = rows_of(batch_engine, prompt(7), sampling, seed=7)
    slots = batch_engine.scheduler.slots
    for layer in slots.layers:  # every slot poisoned, as an earlier sequence might leave it
        layer.keys.fill_(float("nan"))
        layer.values.fill_(float("inf"))
    assert torch.equal(rows_of(batch_engine, prompt(7), sampling, seed=7), clean)
    # and with compaction: two sequences, the first leaves, the second moves into its slot
    for layer in slots.layers:
        layer.keys.fill_(float("nan"))
        layer.values.fill_(float("nan"))
    short, long = replace(sampling, max_new_tokens=8), replace(sampling, max_new_tokens=30)
    results: dict[int, torch.Tensor] = {}
    first = threading.Thread(target=lambda: results.__setitem__(0, rows_of(batch_engine, prompt(1), short, seed=1)))
    first.start()
    wait_steps(batch_engine.scheduler, 2)
    results[1] = rows_of(batch_engine, prompt(2), long, seed=2)
    first.join()
    assert torch.equal(results[1], rows_of(batch_engine, prompt(2), long, seed=2))
    assert not torch.isnan(results[1].float()).any()


@pytest.mark.parametrize("solo_len", [512, None], ids=["solo-lane", "overflow"])
def test_at_most_solo_lanes_long_sequences_run_at_once_and_short_ones_pass_the_waiting_one(batch_engine, solo_len):
    """The memory plan reserves room for SOLO_LANES sequences too long for a slot: a second one
    waits (first come, first served among them) while shorter jobs behind it still start. They
    run in the preallocated solo lane when there is one (CUDA: the plan's), else in their own
    cache (the overflow), with the same codes."""
    from higgs_worker.model.scheduler import Phase, Scheduler

    # prompts: ~150 tokens; long ones need ~450 positions
    scheduler = Scheduler(batch_engine.loop, slots=4, slot_len=256, solo_lanes=1, solo_len=solo_len)
    long, short = Sampling(max_new_tokens=300), Sampling(max_new_tokens=20)
    most_solo = {"n": 0}
    lanes: set[str] = set()
    run_step = scheduler.runner.run

    batches = {
        name: batch_engine.batch_for(prompt(seed)) for name, seed in (("solo-1", 1), ("solo-2", 2), ("short", 3))
    }
    short_called = threading.Event()
    phases: list[dict[str, Phase]] = []  # after each step, where each of the three jobs is

    def watching(plan, admissions):  # on the scheduler thread, each step
        run_step(plan, admissions)
        held = [seq for phase in Phase for seq in scheduler.held(phase)]
        solo = [seq for seq in held if seq.phase in (Phase.SOLO_LANE, Phase.OVERFLOW)]
        most_solo["n"] = max(most_solo["n"], len(solo))
        lanes.update(seq.lane.name if seq.lane else "overflow" for seq in solo)
        now = {name: seq.phase for seq in held for name, batch in batches.items() if seq.batch is batch}
        phases.append(now)
        if now.get("solo-2") is Phase.WAITING and not any("short" in earlier for earlier in phases):
            # the short job is on its way: a busy machine must not let solo-1 finish before it arrives
            short_called.wait(60)
            time.sleep(0.05)

    scheduler.runner.run = watching
    started = {name: threading.Event() for name in ("solo-1", "solo-2", "short")}
    done: dict[str, int] = {}

    def job(name: str, sampling: Sampling, seed: int) -> None:
        count = 0
        if name == "short":
            short_called.set()
        for _ in scheduler.generate(batches[name], sampling, batch_engine.generator(seed)):
            if not count:
                started[name].set()
            count += 1
        done[name] = count

    threads = [
        threading.Thread(target=job, args=("solo-1", long, 1)),
        threading.Thread(target=job, args=("solo-2", long, 2)),
        threading.Thread(target=job, args=("short", short, 3)),
    ]
    threads[0].start()
    assert started["solo-1"].wait(60)
    threads[1].start()  # waits: the one solo lane is taken
    deadline = time.monotonic() + 60
    while not scheduler.held(Phase.WAITING) and time.monotonic() < deadline:
        time.sleep(0.001)
    threads[2].start()  # arrives behind the waiting solo job, and passes it
    for thread in threads:
        thread.join()
    assert done == {"solo-1": 300, "solo-2": 300, "short": 20}
    assert most_solo["n"] == 1
    assert lanes == {"solo lane" if solo_len else "overflow"}
    assert (scheduler.solo_lane is not None) == bool(solo_len)
    # the short job ran and ended while solo-2 still waited (seen by the scheduler, step by step)
    short_steps = [step for step, now in enumerate(phases) if now.get("short") is Phase.SLOT_LANE]
    solo_2_steps = [step for step, now in enumerate(phases) if now.get("solo-2") in (Phase.SOLO_LANE, Phase.OVERFLOW)]
    assert short_steps and solo_2_steps, phases
    assert max(short_steps) < min(solo_2_steps)
    assert all(phases[step].get("solo-2") is Phase.WAITING for step in short_steps)
    # and solo-2 took the solo lane only once solo-1 had left it
    solo_1_steps = [step for step, now in enumerate(phases) if now.get("solo-1") in (Phase.SOLO_LANE, Phase.OVERFLOW)]
    assert max(solo_1_steps) < min(solo_2_steps)
