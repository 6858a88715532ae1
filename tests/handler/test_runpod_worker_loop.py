"""handler.py on the runpod SDK's real worker loop, against a fake RunPod control plane.

``--test_input`` and ``--rp_serve_api`` (tests/handler/test_handler_api.py) are the SDK's local
simulations. On RunPod the SDK runs its production loop instead (worker.py ->
rp_scale.JobScaler -> rp_job.get_job / handle_job / get_stop_signals, rp_http.send_result /
stream_result, rp_progress, rp_ping) whenever RUNPOD_WEBHOOK_GET_JOB is set. Here it does
exactly that: ``python handler.py`` runs as a subprocess whose RUNPOD_* variables point at
tests/support/fake_runpod.py, which hands out jobs, records what the worker posts back and
signals stops, over real HTTP.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import soundfile as sf

from higgs_worker.contract.output import Timings
from tests.support.fake_runpod import FakeRunPod
from tests.support.worker_process import WorkerProcess

pytestmark = pytest.mark.slow

JOB_TIMEOUT = 120  # generous: first jobs load the model, and the CPUs may be shared
SHORT = {"text": "Hi.", "seed": 2, "max_new_tokens": 20, "delivery": "base64"}


def start_loop(base_env: dict, home, stream_jobs: bool) -> tuple[FakeRunPod, WorkerProcess]:
    fake = FakeRunPod(hold_seconds=1.0).__enter__()
    env = {
        **base_env,
        "STREAM_JOBS": "true" if stream_jobs else "false",
        **fake.worker_env(),
        # The SDK's automatic fitness checks need 8.8.8.8:53 (no network here) and a GPU.
        "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
        "RUNPOD_SKIP_GPU_CHECK": "true",
        "HOME": str(home),  # no ~/.runpod/config.toml: the key comes from RUNPOD_AI_API_KEY
        "MODEL_DOWNLOAD_ATTEMPTS": "1",
    }
    return fake, WorkerProcess(env)


@pytest.fixture(scope="module")
def _loops():
    loops: dict[bool, tuple[FakeRunPod, WorkerProcess]] = {}
    yield loops
    for fake, worker in loops.values():
        worker.close()
        fake.__exit__(None, None, None)
        assert not fake.of("rejected"), [e.body for e in fake.of("rejected")]  # wrong URLs or a missing key


def _loop(loops: dict, stream_jobs: bool, env: dict, home) -> tuple[FakeRunPod, WorkerProcess]:
    if stream_jobs not in loops:
        loops[stream_jobs] = start_loop(env, home, stream_jobs)
    fake, worker = loops[stream_jobs]
    assert worker.proc.poll() is None, f"the worker exited:\n{worker.output()[-4000:]}"
    fake.stream_delay = 0.0
    return fake, worker


@pytest.fixture
def runpod_loop(_loops, subprocess_env, tmp_path) -> tuple[FakeRunPod, WorkerProcess]:
    """(fake control plane, worker on the SDK's production loop with STREAM_JOBS=true), one pair
    for the module.

    Started by the first test that asks, from its ``subprocess_env``; later tests queue their
    jobs (each with its own id) on the same worker, as RunPod does, which saves a worker start
    (imports + model load) per test."""
    return _loop(_loops, True, subprocess_env, tmp_path)


@pytest.fixture
def plain_loop(_loops, subprocess_env, tmp_path) -> tuple[FakeRunPod, WorkerProcess]:
    """The same with the default STREAM_JOBS=false: the handler returns the output dict."""
    return _loop(_loops, False, subprocess_env, tmp_path)


def result_of(fake: FakeRunPod, worker: WorkerProcess, job_id: str) -> dict:
    try:
        return fake.wait_result(job_id, JOB_TIMEOUT).body
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\nworker output:\n{worker.output()[-4000:]}") from None


def pcm_of(item: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(item["audio_base64"]), dtype="<i2")


def test_plain_job_completes_with_the_contract_output(plain_loop):
    fake, worker = plain_loop
    job_id = fake.submit({"text": "Hello there.", "seed": 7, "max_new_tokens": 40, "delivery": "base64"})
    body = result_of(fake, worker, job_id)

    assert set(body) == {"output"}, body.get("error")  # no "error": RunPod marks the job COMPLETED
    assert fake.of("result", job_id)[0].query["isStream"] == "false"  # a plain handler's result
    result = body["output"]
    assert isinstance(result, dict)  # the output dict itself, not a list
    audio, rate = sf.read(io.BytesIO(base64.b64decode(result["audio_base64"])))
    assert result["format"] == "wav" and result["content_type"] == "audio/wav"
    assert rate == result["sample_rate"] == 24000
    assert result["duration_s"] > 0 and len(audio) / rate == pytest.approx(result["duration_s"], abs=1e-3)
    assert result["seed"] == 7 and result["num_chunks"] == 1
    assert result["model"]["repo"] == "bosonai/higgs-audio-v2-generation-3B-base"
    assert set(result["timings"]) == set(Timings.model_fields)
    take = fake.of("take", job_id)[0]
    assert take.query["job_in_progress"] == "0" and take.body["input"]["seed"] == 7
    # the heartbeat (a separate process) reports to the ping URL with the key
    fake.wait_for(lambda: fake.of("ping"), 10, "heartbeat")
    # a job asking to stream on this endpoint fails with invalid_input naming the ways to stream
    refused = result_of(fake, worker, fake.submit({**SHORT, "stream": True}))
    assert set(refused) == {"error"} and refused["error"].startswith("invalid_input: "), refused
    assert "STREAM_JOBS" in refused["error"] and "WORKER_MODE=http" in refused["error"]
    assert not fake.of("stream")


def test_streaming_endpoint_gives_the_list_with_the_result_last(runpod_loop):
    fake, worker = runpod_loop
    job_id = fake.submit({"text": "Hello there.", "seed": 7, "max_new_tokens": 40, "delivery": "base64"})
    body = result_of(fake, worker, job_id)
    assert fake.of("result", job_id)[0].query["isStream"] == "true"  # a generator's aggregated output
    output = body["output"]
    assert isinstance(output, list) and len(output) == 1  # no "stream": the result is the only item
    assert output[-1]["seed"] == 7 and output[-1]["duration_s"] > 0


def test_stream_job_posts_opus_chunks_before_its_result(runpod_loop):
    fake, worker = runpod_loop
    job_input = {
        "text": "Hello there, this is a streaming test.",
        "seed": 3,
        "stream": True,
        "output_format": "pcm",
        "delivery": "base64",
        "max_new_tokens": 120,
    }
    job_id = fake.submit(job_input)
    body = result_of(fake, worker, job_id)
    assert "error" not in body, body

    result_at = fake.of("result", job_id)[0].t
    streamed = fake.of("stream", job_id)
    chunks = [e.body["output"] for e in streamed if "chunk" in e.body["output"]]
    assert len(chunks) > 1
    assert all(e.t <= result_at for e in streamed)
    assert [c["chunk"] for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert chunk["format"] == "opus" and chunk["sample_rate"] == 24000
        assert len(chunk["audio_base64"]) < 100_000
    output = body["output"]
    assert output[:-1] == chunks  # the aggregate: every streamed chunk, in order, then the result
    final = output[-1]
    assert final["format"] == "pcm" and final["sample_rate"] == 24000
    # each item is a complete Ogg Opus file; joined, they are the job's audio (lossy, same length)
    joined = np.concatenate(
        [sf.read(io.BytesIO(base64.b64decode(c["audio_base64"])), dtype="float32")[0] for c in chunks]
    )
    whole = pcm_of(final).astype(np.float32) / 32767
    assert len(joined) == len(whole) == round(final["duration_s"] * 24000)
    assert np.corrcoef(joined, whole)[0, 1] > 0.5


def test_bad_input_fails_the_job_without_a_traceback(runpod_loop):
    fake, worker = runpod_loop
    bad = fake.submit({"text": "Hi.", "temperature": 9})
    good = fake.submit({"text": "Hi.", "seed": 1, "max_new_tokens": 20, "delivery": "base64"})

    body = result_of(fake, worker, bad)
    assert set(body) == {"error"}  # RunPod marks a job with "error" FAILED
    assert body["error"].startswith("invalid_input: ") and "temperature" in body["error"]
    assert "Traceback" not in body["error"] and "traceback" not in body["error"]
    assert not fake.of("stream", bad)  # the error item is the result, not a stream item
    # the worker stays healthy: the next job completes
    assert result_of(fake, worker, good)["output"][-1]["seed"] == 1
    assert "Traceback" not in worker.output()


def long_input(seed: int) -> dict:
    # The tiny random model ends a segment on its own after a few to a few hundred steps,
    # whatever max_new_tokens is; so "long" is many chunks: 200 of 5 words, 3000 steps allowed each
    # (minutes of work; the tests stop it after a few chunks).
    return {
        "text": "word " * 1000,
        "chunk_method": "word",
        "chunk_max_words": 5,
        "max_new_tokens": 3000,
        "seed": seed,
        "stream": True,
    }


def progress_of(fake: FakeRunPod, job_id: str, until: float = float("inf")) -> list[tuple[float, int, int]]:
    """[(time, i, n)] from the job's "chunk i of n" updates that arrived by ``until``."""
    return [(e.t, *map(int, e.body["output"].split()[1::2])) for e in fake.of("progress", job_id) if e.t <= until]


def test_stop_signal_stops_generation_and_frees_the_worker(runpod_loop):
    fake, worker = runpod_loop
    result_of(fake, worker, fake.submit(SHORT))  # the model is loaded before the long job's pace is taken
    long_job = fake.submit(long_input(11))
    # started: streaming, a few chunks done (their pace estimates the job's length), on the heartbeat
    fake.wait_for(
        lambda: len(fake.of("stream", long_job)) >= 2 and len(progress_of(fake, long_job)) >= 2,
        JOB_TIMEOUT,
        "streaming and progress",
    )
    fake.wait_for(lambda: any(long_job in (e.body or "").split(",") for e in fake.of("ping")), 10, "a ping")
    fake.stop(long_job)
    stop_at = fake.wait_for(lambda: [e.t for e in fake.of("stop", long_job)], 10, "stop poll")[0]
    done = progress_of(fake, long_job, until=stop_at)
    count, total = max(i for _, i, _ in done), done[0][2]
    per_chunk = (max(t for t, _, _ in done) - fake.of("take", long_job)[0].t) / count
    natural_end = stop_at + (total - count) * per_chunk  # about when the long job would have finished

    short = fake.submit(SHORT)
    stopped_at = worker.wait_line(f"job {long_job} was stopped", 30)  # higgs_worker.jobs: Cancelled
    taken_at = fake.wait_for(lambda: [e.t for e in fake.of("take", short)], 30, "take of the next job")[0]
    body = result_of(fake, worker, short)
    free_at = fake.of("result", short)[0].t
    print(
        f"\nstop latency: generation stopped {stopped_at - stop_at:.2f}s after the stop signal; the next job "
        f"was taken after {taken_at - stop_at:.2f}s and done after {free_at - stop_at:.2f}s; the long job "
        f"({count} of {total} chunks done, {per_chunk:.2f}s a chunk) had about {natural_end - stop_at:.0f}s to go"
    )
    assert body["output"][-1]["duration_s"] > 0
    assert not fake.of("result", long_job)  # a stopped job posts no result (RunPod has already ended it)
    assert f"job {long_job} done" not in worker.output()
    assert count < total - 10  # it really was stopped early
    assert free_at - stop_at < (natural_end - stop_at) / 3  # free well before the long job could have finished
    # the heartbeat stops reporting the stopped job as in progress
    fake.wait_for(lambda: any(e.t > free_at and not e.body for e in fake.of("ping")), 10, "an idle heartbeat")


def test_stop_while_a_stream_item_is_being_posted_still_stops_generation(runpod_loop):
    """The stop can land while the SDK awaits the POST of a stream item (rp_job.handle_job awaits
    stream_result between the handler's items) rather than inside the handler's own await; a slow
    control plane makes that the case here. Generation must stop then too, with no next job needed."""
    fake, worker = runpod_loop
    fake.stream_delay = 3.0
    long_job = fake.submit(long_input(12))
    try:
        fake.wait_for(lambda: fake.of("stream", long_job), JOB_TIMEOUT, "a stream item")  # its POST is held now
        fake.stop(long_job)
        stop_at = fake.wait_for(lambda: [e.t for e in fake.of("stop", long_job)], 10, "stop poll")[0]
        try:
            stopped_after = worker.wait_line(f"job {long_job} was stopped", 10) - stop_at
        except TimeoutError:
            stopped_after = None
        late = [e.body["output"] for e in fake.of("progress", long_job) if e.t > stop_at + 1.5]
        print(f"\nstop during a stream post: generation stopped after {stopped_after}s; progress after it: {late}")
        assert stopped_after is not None and not late, (
            f"generation went on after the stop signal (progress posted for the stopped job: {late}); "
            "handler.py sets its stop flag only when its async generator is closed, which the SDK leaves "
            "to garbage collection when the cancel lands outside the handler's own await"
        )
    finally:
        fake.stream_delay = 0.0
        # a next job: in runpod 1.12.0 it also drops the loop's last reference to the stopped task
        assert result_of(fake, worker, fake.submit(SHORT))["output"][-1]["duration_s"] > 0


def test_multi_chunk_job_reports_progress(runpod_loop):
    fake, worker = runpod_loop
    text = "One two three four. Five six seven eight. Nine ten eleven twelve. Thirteen fourteen."
    job_id = fake.submit(
        {
            "text": text,
            "chunk_max_words": 4,
            "max_new_tokens": 30,
            "seed": 4,
            "delivery": "base64",
            "output_format": "flac",
        }
    )
    result = result_of(fake, worker, job_id)["output"][-1]
    n = result["num_chunks"]
    assert n == 4
    expected = [f"chunk {i} of {n}" for i in range(1, n + 1)]
    # progress_update posts from its own thread: wait for all of them, in whatever order they land
    events = fake.wait_for(
        lambda: len(fake.of("progress", job_id)) >= n and fake.of("progress", job_id), 10, "progress updates"
    )
    assert sorted(e.body["output"] for e in events) == expected
    assert all(e.body["status"] == "IN_PROGRESS" and e.query["isStream"] == "false" for e in events)
