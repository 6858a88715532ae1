"""How close the batched (and, on CUDA, compiled) decode step comes to the plain batch-1 path.

Batched bf16 on a GPU is not bit-identical to a batch of one (the kernels differ by batch size,
norms are fused, attention backends differ), so sampled codes may part ways after a while and
comparing codes says little. Teacher forcing compares what matters at each step: the logits.
Jobs run through the scheduler as in the worker (at once, sharing steps; the compiled step on
the scheduler thread), each step's logits recorded per job; then each job is replayed alone on
the plain path (one prefill, then the plain single-row step with a ``DynamicCache``) fed the same
codes, and the two logit sequences are compared: the largest difference relative to the largest
logit, and how often the top code of a codebook agrees.

Used by tests/model/test_numerics.py (CPU, fp32: equal to rounding), tests/model/test_gpu_batching.py
(CUDA, bf16: within a tolerance) and scripts/gpu_check.py (figures).
"""

from __future__ import annotations

import threading

import torch

from ..model.engine import Engine, Sampling
from ..model.prompt import Prompt
from .reference import generation_config


class LogitRecorder:
    """While entered, records the logits each row of a job was sampled from, for the jobs whose
    batch dict (``engine.batch_for``'s) is in ``batches``: ``logits[i]`` for ``batches[i]``."""

    def __init__(self, scheduler, batches: list[dict]):
        self.scheduler = scheduler
        self.index_of = {id(batch): i for i, batch in enumerate(batches)}
        self.logits: list[list[torch.Tensor]] = [[] for _ in batches]

    def __enter__(self) -> LogitRecorder:
        runner = self.scheduler.runner  # StepRunner.sample: every row of a step is drawn there
        sample = runner.sample

        def recording(sequences):  # on the scheduler thread, before the rows are drawn
            for seq in sequences:
                if id(seq.batch) in self.index_of and seq.logits is not None:
                    self.logits[self.index_of[id(seq.batch)]].append(seq.logits.detach().float().cpu())
            return sample(sequences)

        runner.sample = recording
        return self

    def __exit__(self, *exc) -> None:
        del self.scheduler.runner.sample  # back to the class's method

    def stacked(self, i: int) -> torch.Tensor:
        return torch.stack(self.logits[i])


def scheduled_logits(engine: Engine, prompts: list[Prompt], sampling: Sampling, seeds: list[int]) -> list[dict]:
    """Run ``prompts`` at once through the engine's scheduler; per job: its rows (the codes,
    on the CPU) and the logits each row was sampled from."""
    scheduler = engine.scheduler
    batches = [engine.batch_for(prompt) for prompt in prompts]
    rows: list[list[torch.Tensor]] = [[] for _ in prompts]
    errors: list[BaseException] = []

    def job(i: int) -> None:
        try:
            for row in scheduler.generate(batches[i], sampling, engine.generator(seeds[i])):
                rows[i].append(row)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    with LogitRecorder(scheduler, batches) as recorder:
        threads = [threading.Thread(target=job, args=(i,)) for i in range(len(prompts))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return [
        {"batch": batches[i], "rows": torch.stack(rows[i]), "logits": recorder.stacked(i)} for i in range(len(prompts))
    ]


@torch.inference_mode()
def plain_logits(engine: Engine, batch: dict, rows: torch.Tensor) -> torch.Tensor:
    """The plain batch-1 path fed ``rows``: the logits before each row (prefill, then one
    plain step per row but the last)."""
    from transformers import DynamicCache

    model = engine.model
    cache = DynamicCache(config=model.config)
    out = model(**batch, cache=cache, use_cache=True, logits_to_keep=1)
    found = [out.logits[0, -1].float().cpu()]
    n = engine.num_codebooks
    position = batch["input_ids"].shape[1]
    device = batch["input_ids"].device
    for row in rows[:-1]:
        codes = row.to(device).view(1, 1, n)
        step = torch.full((1, 1), position, dtype=torch.long, device=device)
        found.append(engine.loop._eager_step(codes, step, cache)[0].float().cpu())
        position += 1
    return torch.stack(found)


def compare(ours: torch.Tensor, reference: torch.Tensor, num_codebooks: int) -> dict:
    """Figures for two (steps, num_codebooks * codebook_size) logit sequences."""
    steps = min(len(ours), len(reference))
    ours, reference = ours[:steps], reference[:steps]
    scale = reference.abs().max().item() or 1.0
    difference = (ours - reference).abs()
    top_ours = ours.view(steps, num_codebooks, -1).argmax(-1)
    top_reference = reference.view(steps, num_codebooks, -1).argmax(-1)
    return {
        "steps": steps,
        "max_abs_diff": difference.max().item(),
        "max_rel_diff": difference.max().item() / scale,
        "mean_rel_diff": difference.mean().item() / scale,
        "top1_agreement": (top_ours == top_reference).float().mean().item(),
    }


def teacher_forced(engine: Engine, prompts: list[Prompt], sampling: Sampling, seeds: list[int] | None = None) -> dict:
    """The batched path (all ``prompts`` at once) against the plain batch-1 path, per job and worst."""
    seeds = seeds or list(range(len(prompts)))
    jobs = scheduled_logits(engine, prompts, sampling, seeds)
    per_job = [
        compare(job["logits"], plain_logits(engine, job["batch"], job["rows"]), engine.num_codebooks) for job in jobs
    ]
    return {
        "jobs": len(prompts),
        "max_rel_diff": max(j["max_rel_diff"] for j in per_job),
        "min_top1_agreement": min(j["top1_agreement"] for j in per_job),
        "per_job": per_job,
    }


def greedy_against_generate(engine: Engine, prompt: Prompt, steps: int) -> dict:
    """Greedy codes of one job through the scheduler against transformers' ``generate()``:
    how many leading rows agree (on a GPU they may part ways after a near tie)."""
    sampling = Sampling(temperature=0, max_new_tokens=steps)
    ours = torch.stack(list(engine.generate_rows(prompt, sampling, generator=engine.generator(0))))
    batch = engine.batch_for(prompt)
    skip = batch["audio_input_ids"].shape[1] if "audio_input_ids" in batch else 0
    with torch.inference_mode():
        reference = engine.model.generate(**batch, generation_config=generation_config(engine, sampling))[0, skip:]
    reference = reference.cpu()
    count = min(len(ours), len(reference))
    equal = (ours[:count] == reference[:count]).all(dim=1)
    first_difference = int((~equal).nonzero()[0, 0]) if not bool(equal.all()) else count
    return {
        "rows": count,
        "rows_equal": int(equal.sum()),
        "leading_rows_equal": first_difference,
        "identical": bool(equal.all()) and len(ours) == len(reference),
    }


def reproducibility(engine: Engine, prompts: list[Prompt], sampling: Sampling) -> dict:
    """The same seeded job alone twice, and beside the other prompts: are its codes the same?"""

    def alone() -> torch.Tensor:
        return torch.stack(list(engine.generate_rows(prompts[0], sampling, generator=engine.generator(42))))

    first, second = alone(), alone()
    beside = scheduled_logits(engine, prompts, sampling, [42, *range(1, len(prompts))])[0]["rows"]
    return {
        "alone_twice_identical": torch.equal(first, second),
        "beside_others_identical": torch.equal(first, beside),
        "rows": len(first),
    }
