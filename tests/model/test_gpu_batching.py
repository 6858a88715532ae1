"""On CUDA only (skipped without it): the real architecture (random weights, bf16) behind the
worker's scheduler, its batched step compiled, warmed up, captured and replayed on the
scheduler thread, as in the worker.

Batched bf16 is not bit-identical to a batch of one (kernel choice per batch size, fused norms,
attention backends), so these tests compare teacher-forced logits within a tolerance
(higgs_worker/devtools/numerics.py) instead of codes. The tolerances are first estimates:
scripts/gpu-check.sh prints the measured figures (its "numerics" stage) to size them.
``pytest -m gpu`` runs them on a GPU machine; scripts/gpu-check.sh runs the same checks in
its one process (no second full-size model within its time budget).
"""

from __future__ import annotations

import pytest
import torch

from higgs_worker.devtools import numerics
from higgs_worker.model.engine import Sampling
from higgs_worker.model.prompt import SYSTEM_SINGLE, Prompt, Turn

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (run scripts/gpu-check.sh on a GPU machine)"),
]

MAX_REL_DIFF = 0.05  # of the largest logit
MIN_TOP1_AGREEMENT = 0.95


def prompt(i: int) -> Prompt:
    return Prompt(SYSTEM_SINGLE, ["Audio is recorded from a quiet room."], [Turn("user", f"Hello number {i}.")])


@pytest.fixture(scope="module")
def cuda_engine():
    from higgs_worker.devtools.bench import full_size_engine

    engine = full_size_engine("cuda", max_concurrency=8)
    engine.warm_up()  # compiles and captures buckets 1, 2, 4, 8 on the scheduler thread
    return engine


def test_the_step_compiled_and_replays_on_the_scheduler_thread_only(cuda_engine):
    scheduler = cuda_engine.scheduler
    step = scheduler.step
    assert step.fallbacks == 0, step.note  # compiled for real: no fallback to the plain step
    assert step.owner is scheduler._thread and step.builds == 1
    assert all(step.runs_compiled(size) for size in scheduler.buckets)
    assert set(step.compiled_sizes) == set(scheduler.buckets)


@pytest.mark.parametrize("jobs", [1, 4])
def test_batched_compiled_logits_match_the_plain_batch1_path_teacher_forced(cuda_engine, jobs):
    result = numerics.teacher_forced(cuda_engine, [prompt(i) for i in range(jobs)], Sampling(max_new_tokens=48))
    print(result)
    assert result["max_rel_diff"] < MAX_REL_DIFF, result
    assert result["min_top1_agreement"] >= MIN_TOP1_AGREEMENT, result
    assert cuda_engine.compile_fallbacks == 0
