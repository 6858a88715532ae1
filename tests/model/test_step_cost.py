"""A decode step costs what its live sequences need (higgs_worker/model/slot_attention.py, lane.py),
on the tiny model: attention over the longest live sequence rounded up to a length bucket (not
the slot cache's capacity), grouped-query heads packed instead of repeated, one compiled graph per
batch bucket for every length bucket, and long sequences in a preallocated solo lane. Step times
are benchmark figures (``python -m higgs_worker.devtools.bench --step-lengths``), not asserted here;
what is asserted is what the step reads and computes."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from higgs_worker.devtools import numerics
from higgs_worker.model import slot_attention
from higgs_worker.model.decode_loop import LoopSettings
from higgs_worker.model.engine import Engine, Sampling
from higgs_worker.model.lane import LENGTH_STEP, MAX_BUCKETS, length_buckets
from higgs_worker.model.prompt import SYSTEM_SINGLE, AudioClip, Prompt, Turn
from higgs_worker.model.scheduler import Scheduler


def prompt(index: int, context_frames: int = 0) -> Prompt:
    turns = [Turn("user", f"Sentence number {index} is spoken here.")]
    if context_frames:
        codes = torch.randint(0, 1024, (8, context_frames), generator=torch.Generator().manual_seed(index))
        turns = [Turn("user", "Earlier words."), Turn("assistant", audio=AudioClip(codes)), *turns]
    return Prompt(SYSTEM_SINGLE, ["Audio is recorded from a quiet room."], turns)


def engine_with(engine, slots: int = 4, settings: LoopSettings | None = None) -> Engine:
    built = Engine(
        engine.model, engine.audio_tokenizer, engine.tokenizer, engine.feature_extractor, "cpu", settings, slots
    )
    built.loop.rules = replace(built.loop.rules, eos_id=engine.model.config.codebook_size + 100)  # exact lengths
    return built


def rows_of(engine, p, sampling, seed, scheduler=None) -> torch.Tensor:
    if scheduler is None:
        return torch.stack(list(engine.generate_rows(p, sampling, generator=engine.generator(seed))))
    batch = engine.batch_for(p)
    return torch.stack(list(scheduler.generate(batch, sampling, engine.generator(seed))))


class MaskSpy:
    """Records (batch, attended length, key columns in the cache) of every decode-step attention call."""

    def __init__(self, monkeypatch):
        self.calls: list[tuple[int, int, int]] = []
        real = slot_attention.packed_attention

        def spying(query, key, value, mask, scaling, dropout=0.0):
            self.calls.append((query.shape[0], mask.shape[-1], key.shape[2]))
            return real(query, key, value, mask, scaling, dropout)

        monkeypatch.setattr(slot_attention, "packed_attention", spying)


def test_the_engine_puts_the_model_on_the_slot_attention(engine):
    assert engine.model.config._attn_implementation == slot_attention.NAME


@pytest.mark.parametrize("heads, kv_heads", [(2, 1), (4, 2), (6, 2)])
def test_packed_attention_is_sdpa_with_repeated_keys_and_stable_over_length_and_batch(heads, kv_heads):
    """Packed GQA computes transformers' repeat_kv + SDPA. A row's result depends on the attended
    length (masked columns) and on the other rows of the batch by rounding at most: whether it is
    bit-equal is the kernel's business (CPU SDPA blocks by batch and length differently per
    instruction set), so it is asserted within fp32 rounding; the same call twice is bit-equal."""
    generator = torch.Generator().manual_seed(0)
    batch, dim, capacity = 4, 16, 2048
    groups = heads // kv_heads
    keys = torch.randn((batch, kv_heads, capacity, dim), generator=generator)
    values = torch.randn((batch, kv_heads, capacity, dim), generator=generator)
    query = torch.randn((batch, heads, 1, dim), generator=generator)
    positions = torch.tensor([100, 300, 700, 40])
    for row, position in enumerate(positions):  # as the slot cache keeps them: zero past the length
        keys[row, :, position + 1 :] = 0
        values[row, :, position + 1 :] = 0

    def mask(length: int) -> torch.Tensor:
        allowed = torch.arange(length)[None, :] <= positions[:, None]
        return torch.where(allowed, 0.0, torch.finfo(torch.float32).min)[:, None, None, :]

    full = slot_attention.packed_attention(query, keys, values, mask(capacity), None)
    repeated = F.scaled_dot_product_attention(
        query, keys.repeat_interleave(groups, dim=1), values.repeat_interleave(groups, dim=1), attn_mask=mask(capacity)
    ).transpose(1, 2)
    torch.testing.assert_close(full, repeated, rtol=1e-5, atol=1e-6)
    assert torch.equal(slot_attention.packed_attention(query, keys, values, mask(capacity), None), full)
    for length in (768, 1024, 1536):
        shorter = slot_attention.packed_attention(query, keys, values, mask(length), None)
        torch.testing.assert_close(shorter, full, rtol=1e-6, atol=1e-7)
    alone = slot_attention.packed_attention(query[:1], keys[:1], values[:1], mask(128)[:1], None)
    torch.testing.assert_close(alone, full[:1], rtol=1e-6, atol=1e-7)


def test_a_step_attends_over_the_longest_live_sequence_rounded_to_a_bucket_not_the_capacity(engine, monkeypatch):
    built = engine_with(engine, slots=4)
    scheduler = built.scheduler
    assert scheduler.slots.length == 8192  # the CPU's slots: long-form chunks fit
    spy = MaskSpy(monkeypatch)
    sampling = Sampling(max_new_tokens=20)
    rows_of(built, prompt(1), sampling, seed=1)
    prompt_len = built.batch_for(prompt(1))["input_ids"].shape[1]
    assert prompt_len + 20 < LENGTH_STEP
    attended = {length for _, length, _ in spy.calls}
    assert attended == {LENGTH_STEP}  # every step of a short job: the first bucket
    assert {columns for _, _, columns in spy.calls} == {8192 + 1}  # views of the whole cache, never copied

    # a long neighbour moves every step's length up to its own bucket, and back when it leaves
    spy.calls.clear()
    long_prompt = prompt(2, context_frames=700)
    long_len = built.batch_for(long_prompt)["input_ids"].shape[1]
    done = threading.Event()
    thread = threading.Thread(
        target=lambda: (rows_of(built, long_prompt, Sampling(max_new_tokens=30), seed=2), done.set())
    )
    thread.start()
    short = rows_of(built, prompt(1), Sampling(max_new_tokens=60), seed=1)
    thread.join()
    assert short.shape == (60, 8)
    expected = next(b for b in length_buckets(8192) if b >= long_len + 30)
    lengths = [length for batch, length, _ in spy.calls if batch == 2]
    assert lengths and set(lengths) <= {expected, next(b for b in length_buckets(8192) if b >= long_len)}
    assert max(length for batch, length, _ in spy.calls) < 8192 // 2
    assert [length for batch, length, _ in spy.calls if batch == 1][-1] == LENGTH_STEP


def test_logits_do_not_depend_on_the_attended_length(engine, monkeypatch):
    """The same job beside a long one (a longer bucket every step) draws each row from the
    logits of the plain batch-1 path fed the same codes, within rounding (docs/reproducibility.md)."""
    built = engine_with(engine, slots=4)
    sampling = Sampling(temperature=0.9, top_k=40, max_new_tokens=40)
    batch = built.batch_for(prompt(3))
    spy = MaskSpy(monkeypatch)
    thread = threading.Thread(
        target=rows_of, args=(built, prompt(4, context_frames=700), replace(sampling, max_new_tokens=80), 4)
    )
    thread.start()
    deadline = time.monotonic() + 60
    while not any(length > LENGTH_STEP for _, length, _ in spy.calls) and time.monotonic() < deadline:
        time.sleep(0.002)  # start once the long one is in the slots
    with numerics.LogitRecorder(built.scheduler, [batch]) as recorder:
        beside = torch.stack(list(built.scheduler.generate(batch, sampling, built.generator(3))))
    thread.join()
    assert max(length for _, length, _ in spy.calls) > LENGTH_STEP
    plain = numerics.plain_logits(built, batch, beside)
    figures = numerics.compare(recorder.stacked(0), plain, built.num_codebooks)
    assert figures["steps"] == 40 and figures["max_rel_diff"] < 1e-5, figures


@pytest.mark.parametrize(
    "length, step, expected",
    [(8192, 512, 16), (3968, 512, 8), (256, 512, 1), (1024, 512, 2), (16384, 512, 32)],
)
def test_length_buckets_end_at_the_cache_length(length, step, expected):
    buckets = length_buckets(length, step)
    assert len(buckets) == expected and buckets[-1] == length and buckets == sorted(set(buckets))
    assert all(b % step == 0 for b in buckets[:-1])


class CountingBackend:
    """A torch.compile backend that runs the traced graph and counts compiles per batch size."""

    def __init__(self):
        self.compiles: list[int] = []

    def __call__(self, graph, example_inputs):
        self.compiles.append(next(t.shape[0] for t in example_inputs if isinstance(t, torch.Tensor) and t.dim() == 3))
        return graph.forward


@pytest.mark.parametrize("slots", [2, 8])
def test_two_compiled_graphs_serve_every_batch_bucket_and_length_bucket(engine, slots):
    """Batch 1 and one graph with a dynamic batch and length for the rest (on CUDA: one CUDA graph
    recorded per batch bucket and length bucket)."""
    backend = CountingBackend()
    settings = LoopSettings(compile=True, compile_backend=backend)
    built = engine_with(engine, slots=slots, settings=settings)
    plain = engine_with(engine, slots=2)
    built.warm_up()  # every batch bucket at every length bucket
    scheduler = built.scheduler
    assert scheduler.buckets == [1, 2, 4, 8][: slots.bit_length()] and len(scheduler.slot_lane.length_buckets) == 16
    assert sorted(backend.compiles) == [1, 2]  # every (size, length) pair: 2 graphs
    assert scheduler.graphs["compiled"] == len(scheduler.buckets)  # at most (were the batch specialized)
    assert scheduler.graphs["cuda_graphs"] == len(scheduler.buckets) * 16
    sampling = Sampling(max_new_tokens=24)
    assert torch.equal(
        rows_of(built, prompt(5, context_frames=600), sampling, 5),
        rows_of(plain, prompt(5, context_frames=600), sampling, 5),
    )
    assert sorted(backend.compiles) == [1, 2] and built.compile_fallbacks == 0


def test_the_solo_lane_is_compiled_too_and_all_graphs_stay_within_the_recompile_limit(engine):
    backend = CountingBackend()
    settings = LoopSettings(compile=True, compile_backend=backend)
    built = engine_with(engine, slots=2, settings=settings)
    plain = engine_with(engine, slots=2)
    scheduler = Scheduler(built.loop, slots=100, slot_len=256, compile_step=True, solo_lanes=1, solo_len=1024)
    graphs = scheduler.graphs
    assert graphs["compiled"] <= MAX_BUCKETS <= torch._dynamo.config.recompile_limit
    assert graphs["lanes"]["solo lane"]["batch_buckets"] == [1]
    assert len(scheduler.buckets) == MAX_BUCKETS - 1
    scheduler.warm_up()
    assert sorted(backend.compiles) == [1, 1, 2]  # slot lane: batch 1 and the rest (dynamic); solo lane: 1
    long = Sampling(max_new_tokens=300)  # prompt ~150: too long for a 256-position slot
    got = rows_of(built, prompt(6), long, 6, scheduler=scheduler)
    assert torch.equal(got, rows_of(plain, prompt(6), long, 6))  # the same codes as in a slot
    assert scheduler.solo_lane.step.compiled_sizes == {1} and not scheduler.solo_lane.step.fallbacks
