"""Carries out a ``StepPlan`` (``model/step_plan.py``) on the scheduler thread: the model's
forwards, sampling and hand-out.

``StepRunner`` owns the lanes (``model/lane.py``), each with its preallocated cache and its
``CompiledStep``: the slot lane always, the solo lane when the scheduler has one. A step:

1. marks the admitted sequences ``PREFILLING``;
2. prefills the plan's piece of one sequence alone, in its own ``DynamicCache``;
3. asks the waiting sequences the plan names and every decoding one whether to stop
   (``should_stop``, or the reader went away), and retires those that stop;
4. runs one batched forward per lane that still has sequences, and one plain step per overflow
   sequence;
5. places the prefilled sequence (its prompt done, it did not stop) where the plan says: its
   keys/values move into a free row of that lane, or it keeps its cache (the overflow, also
   when that lane has no row free);
6. samples every row at once (``sample_many``: each sequence with its own generator), hands the
   rows out and retires finished sequences (the lane moves its last row into the hole).

A failure while handling one sequence fails that sequence only; a failed batched forward fails
the sequences of that lane's step. Out of memory there, or in a prefill, also calls
``out_of_memory`` with the sequences it held (``None``: every sequence in flight), so the
scheduler can lower its capacity. ``timings`` adds up the seconds of each part; ``steps``
counts the slot lane's batched forwards.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable

import torch

from ..contract.errors import Cancelled, is_out_of_memory
from .compiled_step import CompiledStep
from .decode_loop import DecodeLoop, sample_many
from .lane import MAX_BUCKETS, Lane, buckets_for
from .sequence import LANE_PHASES, Phase, Sequence
from .slot_attention import NAME as SLOT_ATTENTION
from .slot_cache import SlotCache
from .step_plan import LaneSize, PrefillPiece, StepPlan

log = logging.getLogger(__name__)

END = object()  # the last item of a sequence's output that finished normally


class StepRunner:
    def __init__(
        self,
        loop: DecodeLoop,
        slots: int,
        slot_len: int,
        compile_step: bool,
        solo_rows: int,
        solo_len: int | None,
        group: object,
        out_of_memory: Callable[[int | None], None],
    ):
        """A slot lane of ``slots`` rows of ``slot_len`` positions and, with ``solo_rows``, a solo
        lane of that many rows of ``solo_len`` positions; compiled steps share ``group``."""
        self.loop = loop
        self.model = loop.model
        config = self.model.config
        self.audio_placeholders = (config.audio_token_id, config.audio_delay_token_id)
        self.device = next(self.model.parameters()).device
        self.dtype = next(self.model.parameters()).dtype
        self.out_of_memory = out_of_memory
        # the slot-sized mask is read by the slot attention only (slot_attention.py); with
        # another attention implementation every step covers the whole cache
        live = config._attn_implementation == SLOT_ATTENTION
        solo_buckets = buckets_for(solo_rows) if compile_step and solo_rows else []
        self.buckets = buckets_for(slots, MAX_BUCKETS - len(solo_buckets)) if compile_step else None
        settings = loop.settings
        compiled = (compile_step, settings.compile_backend, settings.compile_mode, settings.fullgraph)
        cache = SlotCache(config, slots, slot_len, self.dtype, self.device)
        self.lanes: dict[Phase, Lane] = {
            Phase.SLOT_LANE: Lane(
                "slot lane", cache, CompiledStep(self._slot_step, *compiled, group=group), self.buckets, live
            )
        }
        if solo_rows:
            cache = SlotCache(config, solo_rows, solo_len, self.dtype, self.device)
            step = CompiledStep(self._solo_step, *compiled, group=group, lane="solo lane")
            self.lanes[Phase.SOLO_LANE] = Lane("solo lane", cache, step, solo_buckets or None, live)
        self.sizes = {phase: LaneSize(lane.cache.length) for phase, lane in self.lanes.items()}  # for the planner
        self.steps = 0  # batched forwards of the slot lane (for tests and figures)
        self.timings: collections.Counter[str] = collections.Counter()  # seconds per part of a step

    # -- one step ----------------------------------------------------------------------------------

    def run(self, plan: StepPlan, admissions: int) -> None:
        """Carry out ``plan``; ``admissions``: sequences admitted before it (their order)."""
        clock = time.perf_counter
        for number, seq in enumerate(plan.admit, start=admissions):
            seq.phase, seq.admitted = Phase.PREFILLING, number
        ready = None  # the sequence whose prompt is done (its first row's logits are ready)
        if plan.prefill is not None:
            mark = clock()
            if self.prefill(plan.prefill) and plan.prefill.last:
                ready = plan.prefill.sequence
            self.timings["prefill"] += clock() - mark
        for seq in plan.ask_waiting:  # queued jobs can be cancelled too
            self.keeps_going(seq)
        stepping = {
            phase: [seq for seq in sequences if self.keeps_going(seq)] for phase, sequences in plan.decode.items()
        }
        mark = clock()
        for phase in LANE_PHASES:
            if stepping.get(phase):
                self.forward_lane(self.lanes[phase])
        overflow = stepping.get(Phase.OVERFLOW, [])
        for seq in overflow:
            self.forward_overflow(seq)
        self.timings["forward"] += clock() - mark
        if ready is not None and self.keeps_going(ready):
            self.place(ready, plan.placement)
            if ready.phase is Phase.OVERFLOW:
                overflow.append(ready)
        decoded = [seq for lane in self.lanes.values() for seq in lane.active] + overflow
        self.sample([seq for seq in decoded if seq.logits is not None and seq.phase is not Phase.FINISHED])

    def keeps_going(self, seq: Sequence) -> bool:
        """Ask the sequence's stop test (once per row); retire it if it must stop."""
        outcome = stop_outcome(seq)
        if outcome is not None:
            self.finish(seq, outcome)
        return outcome is None

    # -- prefill and placement -----------------------------------------------------------------------

    def prefill(self, piece: PrefillPiece) -> bool:
        """One piece of the sequence's prompt, alone, in its own cache; False when it failed
        (the sequence is retired)."""
        from transformers import DynamicCache

        seq, start, end = piece.sequence, piece.start, piece.end
        try:
            if seq.cache is None:
                seq.cache = DynamicCache(config=self.model.config)
            ids = seq.batch["input_ids"]
            inputs = {"input_ids": ids[:, start:end]}
            audio = seq.batch.get("audio_input_ids")
            if audio is not None:
                placeholder = (ids[0] == self.audio_placeholders[0]) | (ids[0] == self.audio_placeholders[1])
                before, inside = int(placeholder[:start].sum()), int(placeholder[start:end].sum())
                if inside:
                    inputs["audio_input_ids"] = audio[:, before : before + inside]
                    inputs["audio_input_ids_mask"] = torch.ones((1, inside), dtype=torch.bool, device=audio.device)
            position_ids = torch.arange(start, end, device=ids.device)[None]
            out = self.model(**inputs, position_ids=position_ids, cache=seq.cache, use_cache=True, logits_to_keep=1)
            seq.prefilled = end
            if piece.last:
                seq.logits = out.logits[0, -1, :].float()
                seq.position = seq.prompt_len
            return True
        except Exception as exc:
            if is_out_of_memory(exc):
                self.out_of_memory(None)
            self.finish(seq, exc)
            return False

    def place(self, seq: Sequence, where: Phase) -> None:
        """A prefilled sequence joins ``where``: a lane (its keys/values copied into the lane's
        next row; the overflow when that lane has no row free) or the overflow (it keeps its
        own cache)."""
        lane = self.lanes.get(where)
        if lane is None or not lane.has_room():
            seq.phase = Phase.OVERFLOW
            return
        try:
            lane.add(seq, seq.cache, seq.prompt_len)
            seq.cache = None
            seq.phase = where
        except Exception as exc:
            self.finish(seq, exc)

    # -- the forwards ------------------------------------------------------------------------------

    def _forward_model(self, cache: SlotCache, codes: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        """One decode step of ``cache``'s first rows, attending over ``columns``."""
        batch = codes.shape[0]
        out = self.model(
            audio_input_ids=codes,
            attention_mask=cache.mask(batch, columns, self.dtype),
            position_ids=cache.positions[:batch, None],
            cache=cache,
            use_cache=True,
        )
        return out.logits[:, -1, :].float()

    # Two functions (two code objects), so each lane's compiled sizes count on their own.
    def _slot_step(self, codes: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        return self._forward_model(self.lanes[Phase.SLOT_LANE].cache, codes, columns)

    def _solo_step(self, codes: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        return self._forward_model(self.lanes[Phase.SOLO_LANE].cache, codes, columns)

    def forward_lane(self, lane: Lane) -> bool:
        """One batched forward over the lane's active rows: each sequence's logits. On failure
        the lane's sequences fail (out of memory: reported with their count)."""
        active = list(lane.active)
        try:
            logits = lane.forward(self.loop.rules.num_codebooks)
        except Exception as exc:
            log.warning("batched step over %d sequences (%s) failed: %s", len(active), lane.name, type(exc).__name__)
            if is_out_of_memory(exc):
                self.out_of_memory(len(active))
            for seq in active:
                self.finish(seq, exc)
            return False
        for index, seq in enumerate(active):
            seq.logits = logits[index]
            seq.position += 1
        if lane is self.lanes[Phase.SLOT_LANE]:
            self.steps += 1
        return True

    def forward_overflow(self, seq: Sequence) -> None:
        """One plain step of a sequence in its own cache."""
        n = self.loop.rules.num_codebooks
        try:
            position = torch.full((1, 1), seq.position, dtype=torch.long, device=self.device)
            seq.logits = self.loop._eager_step(seq.codes.view(1, 1, n), position, seq.cache)[0]
            seq.position += 1
        except Exception as exc:
            self.finish(seq, exc)

    # -- rows out ----------------------------------------------------------------------------------

    def sample(self, sequences: list[Sequence]) -> None:
        if not sequences:
            return
        clock = time.perf_counter
        started = clock()
        sampled: list[tuple[Sequence, torch.Tensor]] = []
        try:
            codes = sample_many([seq.state for seq in sequences], torch.stack([seq.logits for seq in sequences]))
            sampled = list(zip(sequences, codes, strict=True))
        except Exception:  # one sequence's trouble must not fail the others: one by one
            log.warning("batched sampling failed; sampling one by one", exc_info=True)
            for seq in sequences:
                try:
                    sampled.append((seq, seq.state.sample(seq.logits)))
                except Exception as exc:
                    self.finish(seq, exc)
        handing = clock()
        self.timings["sampling"] += handing - started
        if not sampled:
            return
        rows = torch.stack([codes for _, codes in sampled]).to("cpu")  # one transfer for the step
        for (seq, codes), row in zip(sampled, rows, strict=True):
            seq.logits = None
            try:
                seq.codes = codes
                seq.out.put(row)
                if seq.state.accept(row):
                    self.finish(seq, END)
            except Exception as exc:
                self.finish(seq, exc)
        self.timings["hand-out"] += clock() - handing

    def finish(self, seq: Sequence, outcome) -> None:
        """Retire a sequence: free its row (the lane's last active row moves into it) or its
        cache, and hand out its outcome."""
        if seq.lane is not None:
            seq.lane.remove(seq)
        seq.phase = Phase.FINISHED
        seq.cache = None
        seq.logits = None
        seq.out.put(outcome)


def stop_outcome(seq: Sequence) -> BaseException | None:
    """Why ``seq`` stops now (``Cancelled``, or what its stop test raised), or None."""
    try:
        stop = seq.abandoned or (seq.should_stop is not None and seq.should_stop())
    except Exception as exc:
        return exc
    return Cancelled() if stop else None
