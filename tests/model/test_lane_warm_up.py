"""The warm-up sweeps only what runs compiled (higgs_worker/model/lane.py ``Lane.warm``; issue
25 finding 5): after a compile fallback a batch size runs the plain step, which has nothing to
compile or capture, so it gets one call instead of three per length bucket (on a GPU, 16 slots
x 8192 positions: about 336 plain steps, 10-15 s of start-up for nothing).

Failures are injected with torch.compile backends that raise (dynamo traces the real function,
the backend stands for inductor or a CUDA-graph capture failing)."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from higgs_worker.model.compiled_step import CompiledStep
from higgs_worker.model.lane import Lane
from higgs_worker.model.slot_cache import SlotCache

CONFIG = SimpleNamespace(num_key_value_heads=1, head_dim=4, hidden_size=4, num_attention_heads=1, num_hidden_layers=1)
BUCKETS = [1, 2, 4]


def lane_with(backend) -> tuple[Lane, dict[int, int]]:
    """A 4-row lane of 1024 positions (length buckets 128 ... 1024: 8) whose step counts its
    plain calls per batch size."""
    cache = SlotCache(CONFIG, 4, 1024, torch.float32, "cpu")
    plain_calls: dict[int, int] = {}

    def step(codes: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        if not torch.compiler.is_compiling():
            plain_calls[codes.shape[0]] = plain_calls.get(codes.shape[0], 0) + 1
        return codes.flatten(1).float().sum(-1, keepdim=True) + columns.float().sum()

    compiled = CompiledStep(step, compile_on=True, backend=backend, group=object())
    compiled.bind()
    return Lane("slot lane", cache, compiled, BUCKETS, live_length=True, length_step=128), plain_calls


def test_after_a_compile_failure_every_size_gets_one_plain_call_not_a_sweep():
    def refusing(graph, example_inputs):
        raise RuntimeError("injected: inductor is broken")

    lane, plain_calls = lane_with(refusing)
    calls = lane.warm(8, "cpu", compiled=True)
    assert lane.step.all_plain and lane.step.fallbacks == 1
    # one call per batch size (the first one fell back and ran plain); before: 3 x 8 per size
    assert plain_calls == {1: 1, 2: 1, 4: 1}
    assert calls == len(BUCKETS), calls


def test_a_size_that_falls_back_mid_sweep_stops_while_the_others_are_swept_in_full():
    def failing_at_4(graph, example_inputs):
        def run(*args):
            if any(isinstance(a, torch.Tensor) and a.dim() == 3 and a.shape[0] == 4 for a in args):
                raise RuntimeError("injected: capture failed at batch size 4")
            return graph.forward(*args)

        return run

    lane, plain_calls = lane_with(failing_at_4)
    calls = lane.warm(8, "cpu", compiled=True)
    sweep = 3 * len(lane.length_buckets)
    assert lane.step.plain_sizes == {4} and lane.step.compiled_sizes == {1, 2}
    assert plain_calls == {4: 1}
    assert calls == 2 * sweep + 1, calls


def test_a_compiled_lane_is_swept_at_every_bucket_three_times():
    lane, plain_calls = lane_with("eager")
    assert lane.warm(8, "cpu", compiled=True) == len(BUCKETS) * 3 * len(lane.length_buckets)
    assert lane.step.fallbacks == 0 and plain_calls == {}
