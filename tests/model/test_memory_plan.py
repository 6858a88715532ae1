"""The GPU memory plan (higgs_worker/model/memory_plan.py) for the cards we deploy on, from the
real model's shapes: the weights counted on the meta device (no memory), the plan's arithmetic
checked for 24, 48, 80 and 141 GB cards, and a plan never eats into its reserve."""

from __future__ import annotations

import logging

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from higgs_worker.model import memory_plan
from higgs_worker.model.memory_plan import GB, MAX_SLOT_TOKENS, MIN_SLOT_TOKENS, ModelShapes, plan

CONTEXT_BYTES = int(0.6 * GB)  # the CUDA context and cuBLAS handles, about 0.5-0.7 GB


@pytest.fixture(scope="module")
def real():
    """(shapes, bytes in use after loading) of the real checkpoint: bf16 model + fp32 audio tokenizer."""
    from higgs_worker.devtools.bench import real_checkpoint_sizes

    shapes, llm, tokenizer = real_checkpoint_sizes()
    return shapes, llm + tokenizer + CONTEXT_BYTES


def test_the_real_shapes():
    from transformers import HiggsAudioV2Config

    shapes = ModelShapes.from_config(HiggsAudioV2Config(), dtype_bytes=2)
    assert (shapes.layers, shapes.kv_heads, shapes.head_dim, shapes.attention_heads) == (28, 8, 128, 24)
    assert shapes.kv_per_position == 2 * 28 * 8 * 128 * 2 == 114_688  # ~115 kB a position
    # the slot attention reads keys and values in place: scores (fp32) per head, no repeat_kv copy
    assert shapes.step_per_position == 2 * 24 * 4 < 2 * 24 * 128 * 2 // 60


@pytest.mark.parametrize(
    "card_gb, slots, length, solo_length",
    [(24, 16, 2688, 8192), (48, 16, 8192, 16384), (80, 16, 8192, 16384), (141, 16, 8192, 16384)],
)
def test_sixteen_jobs_fit_every_card_we_deploy_on_with_the_reserve_kept(real, card_gb, slots, length, solo_length):
    """Slots follow the plan up to MAX_SLOT_TOKENS (8192): from 48 GB up a long-form chunk with
    its context (~4,500-6,000 positions) stays in the batch; on 24 GB it takes the solo lane."""
    shapes, in_use = real
    assert 11 * GB < in_use < 12.5 * GB  # "about 11 GB go to weights" (+ audio tokenizer, context)
    total = int(card_gb * GB)
    got = plan(shapes, total, in_use, concurrency=16)
    print(got.describe())
    assert (got.slots, got.length, got.solo_length) == (slots, length, solo_length)
    assert got.length <= MAX_SLOT_TOKENS and got.solo_length >= 2 * min(got.length, 4096)
    assert got.fits and got.spare >= 0
    # what the KV slots and their workspace take never eats into the reserve
    assert got.free - (got.kv_bytes + got.step_bytes + got.prompt_cache_bytes) >= got.reserve.total
    assert got.kv_bytes == slots * length * 114_688
    reserve = got.reserve
    assert reserve.codec >= memory_plan.ENCODE_BYTES_PER_SECOND * 60  # one 60-second reference encode
    assert reserve.solo == solo_length * 114_688
    assert reserve.margin >= 0.04 * total and reserve.prefill > 0


def test_the_plan_is_logged_with_every_part(real):
    shapes, in_use = real
    line = plan(shapes, int(24 * GB), in_use, 16).describe()
    parts = ("24.0 GB card", "16 slots x 2688 positions", "audio tokenizer 1.87", "solo lane 0.94 for 8192", "spare")
    for part in parts:
        assert part in line, line


def test_every_plan_keeps_a_gigabyte_spare_and_reserves_the_solo_prompt_and_graph_pools(real):
    """Issue 25 finding 6: the 24 GB plan left 0.09-0.23 GB; a solo job's prompt cache was planned
    at a slot's length (0.46 GB) though it may reach the solo length (0.94 GB), and CUDA-graph
    pools and cuDNN workspaces were unplanned."""
    shapes, in_use = real
    for card_gb in (24, 48, 80, 141):
        got = plan(shapes, int(card_gb * GB), in_use, concurrency=16)
        assert got.spare >= memory_plan.MIN_SPARE_BYTES, got.describe()
        # one prompt cache of the solo length in all: the slot-length one and the solo rest
        assert got.prompt_cache_bytes + got.reserve.solo_prompt == max(got.length, got.solo_length) * 114_688
        assert got.reserve.graphs == memory_plan.GRAPH_POOL_BYTES + memory_plan.CUDNN_WORKSPACE_BYTES
        assert got.in_use < got.resident < got.busy <= got.in_use + got.planned


def test_fewer_slots_than_asked_are_said_in_the_plans_line(real):
    shapes, in_use = real
    got = plan(shapes, int(19.5 * GB), in_use, concurrency=16)
    assert got.slots < 16 and got.fits and got.spare >= memory_plan.MIN_SPARE_BYTES
    assert f"{got.slots} slots, fewer than the 16 asked (MAX_CONCURRENCY)" in got.describe()
    assert "fewer than" not in plan(shapes, int(48 * GB), in_use, concurrency=16).describe()


def test_too_many_jobs_for_the_card_get_fewer_longer_slots(real):
    shapes, in_use = real
    got = plan(shapes, int(24 * GB), in_use, concurrency=256)
    assert got.slots < 256 and got.length >= MIN_SLOT_TOKENS and got.fits
    assert got.free - got.planned + got.reserve.total >= got.reserve.total


def test_a_card_too_small_for_the_model_says_so(real):
    shapes, in_use = real
    got = plan(shapes, int(16 * GB), in_use, concurrency=16)
    assert not got.fits and got.slots == 1


def test_a_longer_reference_limit_reserves_more_for_the_audio_tokenizer(real):
    shapes, in_use = real
    short = plan(shapes, int(48 * GB), in_use, 16, max_reference_seconds=5)
    long = plan(shapes, int(48 * GB), in_use, 16, max_reference_seconds=300)
    assert long.reserve.codec > short.reserve.codec
    # a 5-second encode is smaller than one decode window: the window decides
    assert short.reserve.codec == memory_plan.codec_workspace(0)


@settings(max_examples=300, deadline=None)
@given(
    card_gb=st.floats(min_value=8, max_value=200),
    weights_gb=st.floats(min_value=1, max_value=60),
    concurrency=st.integers(min_value=1, max_value=256),
    fraction=st.floats(min_value=0.05, max_value=1.0),
    reference_s=st.floats(min_value=1, max_value=600),
)
def test_a_plan_that_fits_never_leaves_less_than_the_reserve(card_gb, weights_gb, concurrency, fraction, reference_s):
    shapes = ModelShapes(layers=28, kv_heads=8, attention_heads=24, head_dim=128, hidden=3072, dtype_bytes=2)
    got = plan(shapes, int(card_gb * GB), int(weights_gb * GB), concurrency, fraction, reference_s)
    assert 1 <= got.slots <= concurrency and got.length <= MAX_SLOT_TOKENS
    assert got.solo_length in memory_plan.SOLO_POSITIONS
    if got.fits:
        assert got.free - (got.kv_bytes + got.step_bytes + got.prompt_cache_bytes) >= got.reserve.total
        assert got.kv_bytes + got.step_bytes + got.prompt_cache_bytes <= fraction * got.free + 1


def test_the_engine_plans_from_the_devices_memory_and_logs_it(engine, monkeypatch, caplog):
    """Engine._plan_slots on "CUDA": torch.cuda.mem_get_info stands for a 24 GB card here
    (no GPU on this machine); the plan, its log line and the solo-lane limit are the engine's."""
    monkeypatch.setattr(engine, "device", "cuda")
    monkeypatch.setattr(engine, "memory_plan", None)  # restored after the test (a session engine)
    total = int(24 * GB)
    in_use = sum(p.numel() * p.element_size() for p in engine.model.parameters()) + int(11.7 * GB)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (total - in_use, total))
    with caplog.at_level(logging.INFO):
        slots, length, solo_lanes, solo_len = engine._plan_slots()
    assert engine.memory_plan is not None and engine.memory_plan.fits
    plan = engine.memory_plan
    assert (slots, length, solo_len) == (plan.slots, plan.length, plan.solo_length)
    assert solo_lanes == memory_plan.SOLO_LANES
    assert "memory plan: 24.0 GB card" in caplog.text
