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
