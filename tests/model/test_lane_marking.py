"""How a lane marks its step's inputs dynamic survives the guards a CUDA kernel adds
(higgs_worker/model/lane.py, issue 25 finding 1).

On CUDA, SDPA with a mask runs the memory-efficient kernel, whose mask preprocessing
(``preprocess_mask`` -> ``aligned_tensor`` in ATen, ``sdpa_constraint`` in inductor's lowering)
tests every stride of the mask for divisibility by 8. Traced, that test becomes the guard
``L % 8 == 0`` on the attended length; a strict ``mark_dynamic(min=, max=)`` range refuses any
guard that narrows it (ConstraintViolationError after the whole compile), so every compiled
step fell back to the plain one. CPU SDPA never runs that preprocessing, so here the step is a
function that evaluates the same divisibility on the real slot mask, passed through the real
``Lane.run`` (the marking under test) and a real ``CompiledStep``; only the kernel is absent.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace

import torch

from higgs_worker.model.compiled_step import CompiledStep
from higgs_worker.model.lane import Lane, buckets_for
from higgs_worker.model.slot_cache import SlotCache

ALIGNMENT = 8  # ATen's preprocess_mask / inductor's sdpa_constraint
CONFIG = SimpleNamespace(num_key_value_heads=1, head_dim=4, hidden_size=4, num_attention_heads=1, num_hidden_layers=1)


class CountingBackend:
    """Runs the traced graph as it is (torch.compile's "eager"), counting compiles per thread."""

    def __init__(self):
        self.compiles = 0

    def __call__(self, graph, example_inputs):
        self.compiles += 1
        return graph.forward


def lane_with_sdpa_like_step(slots: int = 4, length: int = 1024, step: int = 128) -> tuple[Lane, CountingBackend]:
    cache = SlotCache(CONFIG, slots, length, torch.float32, "cpu")

    def sdpa_like(codes: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        mask = cache.mask(codes.shape[0], columns, torch.float32)  # (batch, 1, 1, L), as the model gets it
        if any(mask.stride(i) % ALIGNMENT for i in range(mask.dim() - 1)):  # aligned_tensor's test
            padded = torch.zeros((*mask.shape[:-1], mask.shape[-1] + ALIGNMENT), dtype=mask.dtype)
            mask = padded[..., : mask.shape[-1]].copy_(mask)
        return mask.flatten(1).sum(-1, keepdim=True) + codes.flatten(1).float().sum(-1, keepdim=True)

    backend = CountingBackend()
    compiled = CompiledStep(sdpa_like, compile_on=True, backend=backend, group=object())
    compiled.bind()
    return Lane("slot lane", cache, compiled, buckets_for(slots), live_length=True, length_step=step), backend


def test_a_stride_divisibility_guard_keeps_the_step_compiled_at_every_length_bucket():
    lane, backend = lane_with_sdpa_like_step()
    assert all(length % ALIGNMENT == 0 for length in lane.length_buckets)  # why the guard holds everywhere
    expected = {}
    for size in lane.batch_buckets:
        for length in lane.length_buckets:
            lane.cache.positions[:size].copy_(torch.arange(size) * 7 % length)
            codes = torch.ones((size, 1, 8), dtype=torch.long)
            got = lane.run(codes, lane.cache.columns[:length])
            expected = lane.step.plain(codes, lane.cache.columns[:length])
            assert torch.equal(got, expected)
    step = lane.step
    assert step.fallbacks == 0, step.last_fallback  # before the fix: ConstraintViolationError, all plain
    assert step.compiled_sizes == set(lane.batch_buckets)
    # one graph serves every length bucket: batch 1, and the batches above it (at most one each)
    assert backend.compiles <= len(lane.batch_buckets), backend.compiles
    assert backend.compiles <= 2


def test_the_lanes_warm_up_compiles_the_same_step_without_a_fallback():
    lane, backend = lane_with_sdpa_like_step(slots=2, length=512)
    lane.warm(8, "cpu", compiled=True)
    assert lane.step.fallbacks == 0, lane.step.last_fallback
    assert lane.step.compiled_sizes == {1, 2} and backend.compiles <= 2
    assert threading.current_thread() is lane.step.owner
