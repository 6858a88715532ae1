"""A lane: the rows of one ``SlotCache`` that advance together in one decode step.

The scheduler has two: the slot lane (one row per job, ``slots`` rows of the planned length)
and, on CUDA, the solo lane (``SOLO_LANES`` rows, longer: for the rare sequence too long for
a slot). A lane keeps its sequences compact at the front of its cache (``add`` puts a newcomer
in the next row, ``remove`` moves the last row into the hole) and steps them with its
``CompiledStep``:

- the batch is padded to a batch-size bucket when the step is compiled (``batch_buckets``);
- attention covers the live length only: the columns up to the longest active sequence,
  rounded up to a length bucket (multiples of ``LENGTH_STEP``, of ``ONE_ROW_LENGTH_STEP`` in a
  one-row lane, the last one the cache's length), so a step costs what its sequences hold, not
  the cache's capacity.

Graphs. The compiled step takes the key columns as an input whose length is marked dynamic, and
its batch dimension may be dynamic too (``maybe_mark_dynamic``: dynamo specializes batch 1, and
any size it cannot keep symbolic): a lane compiles 2 graphs (batch 1, and batches of 2 and more),
at most ``len(batch_buckets)`` (``MAX_BUCKETS`` with the solo lane's, dynamo's recompile limit).
On CUDA, CUDA-graph trees record one CUDA graph per batch bucket and length bucket, all at
warm-up: ``len(batch_buckets) x len(length_buckets)`` (64 for 8 slots of 8192 positions, 80 for
16; the solo lane's 1 x 8 more at 16384 positions, 1 x 4 at 8192). ``Lane.graphs`` and
``Scheduler.graphs`` count them; the warm-up logs the count before it records them.
"""

from __future__ import annotations

import torch

from . import torch_features
from .compiled_step import CompiledStep
from .slot_cache import SlotCache

LENGTH_STEP = 512  # length buckets: multiples of this (chosen by measurement: README "Step cost")
# A one-row lane (the solo lane; the slot lane of a one-job worker) rounds its attended length up
# to multiples of this instead: its step is bound by reading the weights (about 6 GB in bf16),
# beside which up to 2047 extra columns of one row's keys and values (at most 0.23 GB, half that
# on average) cost a few per cent, while 16384 positions in 512s meant 32 CUDA graphs to record
# at start (8 now; 4 at 8192).
ONE_ROW_LENGTH_STEP = 2048
MAX_BUCKETS = 8  # compiled graphs per scheduler at most: dynamo's recompile limit (8) counts them


def buckets_for(slots: int, most: int = MAX_BUCKETS) -> list[int]:
    """Batch sizes the compiled step is padded to: powers of two below ``slots``, then
    ``slots``; at most ``most`` of them (the last step up is then to ``slots``)."""
    powers = [1 << i for i in range(most - 1) if (1 << i) < slots]
    return powers + [slots]


def length_step_for(rows: int) -> int:
    """Length buckets' step for a lane of ``rows`` rows (``ONE_ROW_LENGTH_STEP`` for one row)."""
    return ONE_ROW_LENGTH_STEP if rows == 1 else LENGTH_STEP


def length_buckets(length: int, step: int = LENGTH_STEP) -> list[int]:
    """Attention lengths a step is rounded up to: multiples of ``step`` below ``length``, then
    ``length`` (the cache's usable length)."""
    return [size for size in range(step, length, step)] + [length]


def mark_inputs(codes: torch.Tensor, columns: torch.Tensor | None) -> None:
    """Mark the compiled step's batch (``codes``' first dimension) and attended length
    (``columns``' length) dynamic, so one graph serves the batch buckets above 1 and every length
    bucket.

    Never with a strict range (``mark_dynamic(min=, max=)``): kernels add guards while they are
    traced, and torch refuses any guard that narrows a strict range (ConstraintViolationError,
    after the whole compile). On CUDA the memory-efficient SDPA kernel's mask preprocessing
    tests every stride of the mask for divisibility by 8 (ATen ``preprocess_mask`` ->
    ``aligned_tensor``; inductor ``sdpa_constraint``), which traced is the guard ``L % 8 == 0``
    on the attended length; every length bucket is a multiple of ``LENGTH_STEP`` (and the last one,
    the cache's length, of ``memory_plan.SLOT_ROUNDING``), so that guard holds for every bucket
    and costs no recompile. ``maybe_mark_dynamic`` starts the dimension symbolic and lets any
    guard narrow it (tests/model/test_lane_marking.py)."""
    torch_features.maybe_mark_dynamic(codes, 0)  # dynamo specializes batch 1: a graph for it, one above
    if columns is not None:  # the scratch column lies outside every length bucket
        torch_features.maybe_mark_dynamic(columns, 0)


class Lane:
    def __init__(
        self,
        name: str,
        cache: SlotCache,
        step: CompiledStep,
        batch_buckets: list[int] | None,
        live_length: bool = True,
        length_step: int | None = None,
    ):
        self.name = name
        self.cache = cache
        self.step = step
        self.batch_buckets = batch_buckets  # None: not compiled, no padding
        self.live_length = live_length  # False: the model's attention needs the whole cache
        step = length_step or length_step_for(cache.slots)
        self.length_buckets = length_buckets(cache.length, step) if live_length else [cache.columns.shape[0]]
        self.active: list = []  # compact: active[i].slot == i

    @property
    def rows(self) -> int:
        return self.cache.slots

    def has_room(self) -> bool:
        return len(self.active) < self.cache.slots

    def fits(self, needs: int) -> bool:
        return needs <= self.cache.length

    @property
    def graphs(self) -> dict:
        """Graphs this lane compiles (at most; 2 when dynamo keeps the batch symbolic) and CUDA
        graphs it records, when compiled."""
        sizes = self.batch_buckets or []
        return {"compiled": len(sizes), "cuda_graphs": len(sizes) * len(self.length_buckets)}

    # -- membership ------------------------------------------------------------------------

    def add(self, seq, prompt_cache, length: int) -> None:
        """``seq`` takes the next row; its prompt's keys/values are copied there."""
        seq.slot = len(self.active)
        try:
            self.cache.load(seq.slot, prompt_cache, length)
        except BaseException:
            seq.slot = None
            raise
        seq.lane = self
        self.active.append(seq)

    def remove(self, seq) -> None:
        """Free ``seq``'s row: the last active row moves into it (the cache's rows stay compact)."""
        if seq.slot is None or seq not in self.active:
            return
        hole, last = seq.slot, self.active[-1]
        self.active.pop()
        if last is not seq:
            self.cache.move(last.slot, hole, last.position)
            last.slot = hole
            self.active[hole] = last
        seq.slot = None
        seq.lane = None

    # -- the step ------------------------------------------------------------------------------

    def batch_bucket(self, count: int) -> int:
        if not self.batch_buckets or self.step.all_plain:  # padding only helps compiled sizes
            return count
        return next(b for b in self.batch_buckets if b >= count)

    def columns(self, longest: int) -> torch.Tensor:
        """The key columns a step attends to: ``longest`` (the longest active sequence's length
        after this step's write) rounded up to a length bucket."""
        length = next(b for b in self.length_buckets if b >= longest)
        return self.cache.columns[:length]

    def run(self, codes: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        """The step over ``codes`` (size, 1, num_codebooks) with the cache's positions set."""
        if self.step.runs_compiled(codes.shape[0]):
            mark_inputs(codes, columns if self.live_length else None)
        return self.step(codes, columns)

    def forward(self, num_codebooks: int) -> torch.Tensor:
        """One step for every active row: their logits (active, vocabulary). Raises what the
        step raised (the scheduler fails the lane's sequences)."""
        active = self.active
        size = self.batch_bucket(len(active))
        positions = [seq.position for seq in active] + [0] * (size - len(active))
        codes = [seq.codes for seq in active]
        codes += [torch.zeros_like(codes[0])] * (size - len(active))
        columns = self.columns(max(positions) + 1)
        self.cache.positions[:size].copy_(torch.tensor(positions), non_blocking=True)
        return self.run(torch.stack(codes).view(size, 1, num_codebooks), columns)

    def warm(self, num_codebooks: int, device, compiled: bool) -> int:
        """Run the step at every batch bucket and length bucket (compilation, CUDA-graph capture:
        three calls each) while that batch size runs compiled; a size that runs plain (never
        compiled, or fallen back during this sweep) gets one call and no sweep (nothing to
        capture). Rows write to the cache's scratch column, which no sequence and no length
        bucket uses, so sequences in flight are untouched. Returns the calls made."""
        calls = 0
        for size in self.batch_buckets or [1]:
            codes = torch.zeros((size, 1, num_codebooks), dtype=torch.long, device=device)
            sweep = [length for length in self.length_buckets for _ in range(3)]  # trees record on a later call
            for length in sweep:
                self.cache.positions[:size].fill_(self.cache.scratch)
                self.run(codes, self.cache.columns[:length])
                calls += 1
                if not (compiled and self.step.runs_compiled(size)):
                    break  # runs plain (never compiled, or fell back just now): nothing to capture
        return calls
