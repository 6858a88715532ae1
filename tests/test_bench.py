"""The benchmark harness runs in CI mode and measures both paths; the full-size
configuration has the real model's sizes (checked on the meta device, no memory)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from tests.conftest import ROOT


@pytest.mark.slow
def test_ci_mode_prints_both_paths_and_their_ratios():
    proc = subprocess.run(
        [sys.executable, "-m", "higgs_worker.devtools.bench", "--frames", "40"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "engine/ref" in proc.stdout
    for path in ("reference", "engine"):
        assert result[path]["audio_s"] == pytest.approx(40 * 0.04)  # no early stop: exactly the frames asked
        assert result[path]["ms_per_step"] > 0 and result[path]["total_s"] > 0
    assert result["ratio"]["total_s"] == pytest.approx(result["engine"]["total_s"] / result["reference"]["total_s"])
    # streaming: first audio after ~10 frames, long before the one-piece decode of the reference
    assert result["engine"]["time_to_first_audio_s"] < result["engine"]["total_s"]


def test_full_size_random_has_the_real_sizes():
    from transformers import HiggsAudioV2Config, HiggsAudioV2ForConditionalGeneration, HiggsAudioV2TokenizerConfig

    from higgs_worker.devtools.bench import full_size_tokenizer_config

    config = HiggsAudioV2Config(codebook_size=1026, audio_stream_bos_id=1024, audio_stream_eos_id=1025)
    with torch.device("meta"):
        model = HiggsAudioV2ForConditionalGeneration(config)
    params = sum(p.numel() for p in model.parameters())
    assert 5.3e9 < params < 5.9e9
    assert (config.num_hidden_layers, config.hidden_size, config.num_codebooks) == (28, 3072, 8)
    tokenizer = full_size_tokenizer_config(HiggsAudioV2TokenizerConfig)
    assert (tokenizer.frame_rate, tokenizer.num_quantizers, tokenizer.hop_length) == (25, 8, 960)
    assert tokenizer.semantic_model_config.hidden_size == 768


def test_the_newcomer_arrives_after_n_decode_steps_and_watching_the_counter_does_not_advance_it(engine):
    """bench.concurrent_jobs polls scheduler.steps until N batched steps ran; reading it must
    not count as a step (it was an itertools.count, and next() on it advanced it)."""
    from dataclasses import replace

    from higgs_worker.devtools.bench import concurrent_jobs
    from higgs_worker.model.engine import Engine, Sampling
    from higgs_worker.model.prompt import SYSTEM_SINGLE, Prompt, Turn

    batched = Engine(engine.model, engine.audio_tokenizer, engine.tokenizer, engine.feature_extractor, "cpu", None, 4)
    batched.loop.rules = replace(batched.loop.rules, eos_id=engine.model.config.codebook_size + 100)
    scheduler = batched.scheduler
    forwards = {"n": 0}
    real = scheduler.step.plain  # the step is plain here (no compile on the CPU by default)

    def counting(codes, *rest):
        forwards["n"] += 1
        return real(codes, *rest)

    scheduler.step.plain = counting
    prompts = [Prompt(SYSTEM_SINGLE, ["A quiet room."], [Turn("user", f"Job {i}.")]) for i in range(3)]
    result = concurrent_jobs(batched, prompts, Sampling(max_new_tokens=40), late_after_rows=12)
    assert 12 <= result["newcomer_after_steps"] < 40
    assert scheduler.steps == forwards["n"]  # the counter counts batched forwards, nothing else


@pytest.mark.slow
def test_post_generation_benchmark_measures_every_step_on_espeak_speech():
    """benchmarks/post_generation.py on 3 s of espeak-ng speech (.ci/run installs espeak-ng)."""
    command = [sys.executable, "benchmarks/post_generation.py", "--seconds", "3", "--repeat", "1"]
    command += ["--no-codec-decode", "--no-scaling"]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["audio_s"] >= 3 and "cores@300" in proc.stdout
    rows = {row["step"]: row for row in result["rows"]}
    lossy = [rows[f"file: {fmt}"] for fmt in ("ogg", "opus", "mp3")]
    lossy += [rows["stream items (queue /stream, Ogg Opus + base64)"], rows["HTTP streamed body: mp3"]]
    for row in lossy:  # a bitrate and a spectral distance that say the speech survived
        assert 16 < row["kbit_s"] < 128 and 0 < row["distance_db"] < 5, row
    jobs = [row for row in result["rows"] if row["group"] == "job"]
    assert len(jobs) == 5 and all(row["ms_per_audio_s"] > 0 for row in jobs)
    for row in jobs:
        assert row["cores_needed"] == pytest.approx(row["ms_per_audio_s"] * 300 / 1000, abs=0.01)
    steps = ("join: trim silence + 0.3 s pauses", "loudness -16 LUFS (true-peak ceiling -1 dBTP)", "file: wav")
    assert all(step in rows for step in steps)


def test_timing_the_slot_lane_leaves_the_serving_scheduler_as_it_was(engine):
    """bench.time_steps borrows the worker's slot lane (scripts/gpu_check.py times the worker's own
    scheduler) through Scheduler.call and the lane's own forward: afterwards the lane holds none
    of its sequences and a job gets the same rows as before. (Its rows write where real rows
    live: it is for a scheduler with no job in flight.)"""
    from dataclasses import replace

    from higgs_worker.devtools.bench import time_steps
    from higgs_worker.model.engine import Engine, Sampling
    from higgs_worker.model.prompt import SYSTEM_SINGLE, Prompt, Turn

    batched = Engine(engine.model, engine.audio_tokenizer, engine.tokenizer, engine.feature_extractor, "cpu", None, 4)
    batched.loop.rules = replace(batched.loop.rules, eos_id=engine.model.config.codebook_size + 100)
    scheduler = batched.scheduler
    prompt = Prompt(SYSTEM_SINGLE, ["A quiet room."], [Turn("user", "Job after the timing.")])
    sampling = Sampling(max_new_tokens=30)

    def rows() -> torch.Tensor:
        return torch.stack(list(batched.generate_rows(prompt, sampling, generator=batched.generator(3))))

    before = rows()
    steps = scheduler.steps
    timed = [time_steps(scheduler, active=active, length=100, steps=5) for active in (1, 3)]
    assert all(ms > 0 for ms in timed)
    assert scheduler.slot_lane.active == [] and scheduler.steps == steps  # no serving step counted
    assert torch.equal(rows(), before)
