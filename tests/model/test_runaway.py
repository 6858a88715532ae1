"""The runaway guard (higgs_worker/model/runaway.py, used by synthesis.py).

The chunks that run away are made by a stand-in for the engine's row generator (a mock of
one component, said so here): the tiny real model cannot be made to go silent on demand,
so ``StandInEngine`` is the real tiny engine (prompt, codec, silence codes, decode) whose
``generate_rows`` yields rows chosen by the test, ignoring every bound (a model that never
stops). Everything downstream (the guard, synthesis, the job's output, /v1/state) is real.
"""

from __future__ import annotations

import torch

from higgs_worker.contract.schema import SynthesisRequest
from higgs_worker.model.runaway import TAIL_FRAMES, RunawayGuard
from higgs_worker.model.spec import SPEC
from higgs_worker.synthesis import AudioPiece, RunawayLimits, Synthesis, build_voice_setup, synthesize

SPEECH_FRAMES = 25  # 1 s of "speech" before the chunk goes silent
HARD_STOP = 3000  # 120 s: the stand-in ends here only so that a failing test ends


class StandInEngine:
    """The real engine, except that its rows come from ``script(step) -> row``, forever."""

    def __init__(self, engine, script):
        self._engine, self._script = engine, script
        self.yielded = 0
        self.closed = False

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def generate_rows(self, prompt, sampling, should_stop=None, generator=None):
        try:
            yield torch.full((self._engine.num_codebooks,), self._engine.bos_id)
            for step in range(HARD_STOP):
                self.yielded += 1
                row = self._script(step)
                yield row
                if bool((row == self._engine.eos_id).all()):  # the stream's end, as the scheduler ends it
                    return
        finally:
            self.closed = True


def speech_row(engine, step: int) -> torch.Tensor:
    """A row no frame of silence has: first code outside the silence codes, every code varying."""
    loud = [code for code in range(engine.code_limit) if code not in engine.silence_codes]
    generator = torch.Generator().manual_seed(step)
    row = torch.randint(0, engine.code_limit, (engine.num_codebooks,), generator=generator)
    row[0] = loud[(step * 7) % len(loud)]
    return row


def silent_row(engine, step: int) -> torch.Tensor:
    row = speech_row(engine, step)  # the other codebooks keep varying, as noise would
    row[0] = sorted(engine.silence_codes)[step % len(engine.silence_codes)]
    return row


def goes_silent(engine):
    return lambda step: speech_row(engine, step) if step < SPEECH_FRAMES else silent_row(engine, step)


def never_stops(engine):
    stuck = speech_row(engine, 10_000)
    return lambda step: speech_row(engine, step) if step < SPEECH_FRAMES else stuck.clone()


def run(stand_in, limits: RunawayLimits) -> Synthesis:
    request = SynthesisRequest(text="Hello there, this is one chunk.", seed=1, chunk_method="none")
    setup = build_voice_setup(request, resolve=None)
    *_, result = synthesize(stand_in, request, setup, 15000, runaway=limits)
    return result


def test_the_silence_codes_are_learned_from_the_codec(engine):
    codes = engine.silence_codes
    assert codes and all(0 <= code < engine.code_limit for code in codes)
    assert len(codes) < engine.code_limit // 4  # a few codes, not "everything is silence"


def test_a_chunk_that_goes_silent_ends_within_a_second_of_the_threshold(engine):
    limits = RunawayLimits(silence_seconds=2.0, repeat_seconds=2.0)
    stand_in = StandInEngine(engine, goes_silent(engine))
    result = run(stand_in, limits)
    threshold_rows = SPEECH_FRAMES + limits.silence_seconds * SPEC.frames_per_second
    assert stand_in.closed, "the row generator (the scheduler's sequence) was closed"
    assert stand_in.yielded <= threshold_rows + SPEC.frames_per_second  # within 1 s of audio after the threshold
    assert [(stop.chunk, stop.reason) for stop in result.runaways] == [(0, "silence")]
    kept_frames = result.chunks[0].codes.shape[1]
    assert SPEECH_FRAMES - 2 <= kept_frames <= SPEECH_FRAMES + TAIL_FRAMES  # the trailing silence cut
    assert len(result.audio) == kept_frames * engine.samples_per_frame
    assert result.runaways[0].cut_seconds >= limits.silence_seconds - 0.5


def test_a_chunk_that_repeats_one_frame_forever_ends_within_a_second(engine):
    limits = RunawayLimits(silence_seconds=3.0, repeat_seconds=1.0)
    stand_in = StandInEngine(engine, never_stops(engine))
    result = run(stand_in, limits)
    assert stand_in.closed
    assert stand_in.yielded <= SPEECH_FRAMES + (limits.repeat_seconds + 1.0) * SPEC.frames_per_second
    assert [stop.reason for stop in result.runaways] == ["repeat"]
    assert result.chunks[0].codes.shape[1] <= SPEECH_FRAMES + 1  # the repeated frames cut


def test_turned_off_the_stand_in_runs_on(engine):
    """Guard off: the silent chunk runs until the stand-in ends it (an all-eos row after 400 rows)."""
    silent = goes_silent(engine)
    eos = torch.full((engine.num_codebooks,), engine.eos_id)
    stand_in = StandInEngine(engine, lambda step: silent(step) if step < 400 else eos)
    result = run(stand_in, RunawayLimits(0.0, 0.0))
    assert result.runaways == [] and stand_in.yielded == 401
    assert result.chunks[0].codes.shape[1] >= 400 - engine.num_codebooks


def test_the_guard_on_rows(engine):
    silent = next(iter(engine.silence_codes))
    guard = RunawayGuard(frozenset({silent}), silence_frames=10, repeat_frames=5, num_codebooks=4, bos_id=-1, eos_id=-2)
    assert guard.push(torch.tensor([-1, -1, -1, -1])) is None  # the opening row
    for _ in range(30):  # silence before any speech is not a runaway (leading silence)
        assert guard.push(torch.tensor([silent, 1, 2, 3])) is None
    for step in range(4):
        assert guard.push(torch.tensor([silent + 1 + step, step, 2, 3])) is None
    reasons = [guard.push(torch.tensor([silent, step, 2, 3])) for step in range(11)]
    assert reasons[:10] == [None] * 10 and reasons[10] == "silence"
    assert guard.keep == 34 + TAIL_FRAMES + 4  # up to the last spoken row, its tail, the delay rows
    repeat = RunawayGuard(frozenset({silent}), 0, 5, 4, -1, -2)
    reasons = [repeat.push(torch.tensor([silent + 1, 7, 7, 7])) for _ in range(6)]
    assert reasons == [None, None, None, None, "repeat", "repeat"] and repeat.keep == 4
    quiet = RunawayGuard(frozenset({silent}), 0, 5, 4, -1, -2)  # a repeated *silent* frame is silence's business
    assert all(quiet.push(torch.tensor([silent, 0, 0, 0])) is None for _ in range(50))


def test_a_job_carries_the_warning_and_state_counts_it(make_worker, engine):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from higgs_worker.http.routers import health
    from higgs_worker.http.service import Service

    worker = make_worker({"RUNAWAY_SILENCE_SECONDS": "1.5"})
    worker.engine = StandInEngine(engine, goes_silent(engine))
    output = worker.run(
        {"id": "runaway", "input": {"text": "Hello there.", "seed": 2, "delivery": "base64"}}
    ).as_output()
    assert "error" not in output, output
    assert any("kept silent after speaking" in warning for warning in output["warnings"])
    assert output["duration_s"] <= (SPEECH_FRAMES + TAIL_FRAMES) / SPEC.frames_per_second
    app = FastAPI()
    app.state.service = Service(worker)
    app.include_router(health.router)
    assert TestClient(app).get("/v1/state").json()["runaway_stops"] == {"silence": 1, "repeat": 0}


def test_a_streamed_chunk_stops_streaming_when_the_guard_fires(engine):
    """What a stream has sent by then is at most the speech and the silence up to the threshold."""
    limits = RunawayLimits(silence_seconds=2.0, repeat_seconds=2.0)
    stand_in = StandInEngine(engine, goes_silent(engine))
    request = SynthesisRequest(text="Hello there, this is one chunk.", seed=1, chunk_method="none")
    events = list(synthesize(stand_in, request, build_voice_setup(request, None), 15000, stream=True, runaway=limits))
    streamed = sum(len(event.audio) for event in events if isinstance(event, AudioPiece))
    threshold_frames = SPEECH_FRAMES + limits.silence_seconds * SPEC.frames_per_second
    assert 0 < streamed <= (threshold_frames + SPEC.frames_per_second) * engine.samples_per_frame
    assert events[-1].runaways[0].reason == "silence"
