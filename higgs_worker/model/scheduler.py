"""Continuous batching: one thread owns the model; every active sequence advances in one
batched forward per step.

Job threads call ``Scheduler.generate(batch, sampling, generator, should_stop)`` and read
rows (num_codebooks codes on the CPU) from it as they come. Each iteration the scheduler
thread:

1. takes new sequences into its FIFO queue and admits them while there is room (one
   sequence per slot: at most ``capacity`` in flight; at most ``solo_lanes`` of them too
   long for a slot, when that is limited: the memory plan reserves room for so many);
2. prefills one chunk (``PREFILL_CHUNK`` tokens) of the oldest admitted sequence alone,
   in its own ``DynamicCache``; when its prompt is done the first row is sampled from the
   prefill logits and its keys/values move into a free row of a lane (``lane.Lane``): the
   slot lane when prompt + max_new_tokens fit a slot, else the solo lane (preallocated, longer
   rows, on CUDA) when they fit there; a sequence longer still keeps its own cache and runs
   the plain step (the overflow: rare, it uses the memory plan's margin);
3. asks each sequence about to produce a row whether to stop (``should_stop``), and
   retires stopped ones at once;
4. runs one batched forward per lane over its active rows, attending over the live length
   only (the longest active sequence, rounded up to a length bucket), padded to a batch-size
   bucket when the step is compiled (at most ``MAX_BUCKETS`` compiled graphs in all, under
   dynamo's recompile limit), and one plain step per overflow sequence;
5. samples every row at once (``sample_many``: each sequence with its own generator), hands
   the rows out and retires finished sequences (compacting the lanes).

Each lane's step is a ``CompiledStep``: compiled where that works, the plain step where it
does not (a compile, capture or replay failure reruns that step plain: no sequence sees it).
It is built, compiled, warmed up, captured and replayed on the scheduler thread only (CUDA-graph
trees keep per-thread state); a replacement thread builds it again.

A failure while handling one sequence fails that sequence only; a failed batched forward fails
the sequences of that step, and the scheduler keeps serving. Out of memory there also lowers
``capacity`` (half the sequences that step had), so the next steps are smaller instead of failing
again. If the thread itself ever ends, every sequence in flight or waiting fails with the reason.

``timings`` adds up the seconds of each part of an iteration (prefill, forward, sampling,
hand-out, the rest) for the benchmark's shares (``python -m higgs_worker.devtools.bench --shares``).
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from ..contract.errors import Cancelled, is_out_of_memory
from . import torch_features
from .compiled_step import CompiledStep
from .decode_loop import DecodeLoop, SequenceState, sample_many
from .lane import MAX_BUCKETS, Lane, buckets_for
from .slot_attention import NAME as SLOT_ATTENTION
from .slot_cache import SlotCache
from .spec import SPEC

log = logging.getLogger(__name__)

PREFILL_CHUNK = SPEC.prefill_tokens  # prompt tokens per prefill piece between two decode steps (model/spec.py)
_END = object()

__all__ = ["MAX_BUCKETS", "PREFILL_CHUNK", "Scheduler", "Sequence", "buckets_for"]


@dataclass(eq=False)
class _Task:
    """A function to run on the scheduler thread between two iterations (warm-up)."""

    fn: Callable[[], None]
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


@dataclass(eq=False)
class Sequence:
    batch: dict
    state: SequenceState
    should_stop: Callable[[], bool] | None
    out: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    abandoned: bool = False  # the reader went away
    cache: object | None = None  # its own DynamicCache: while prefilling, and in the solo lane
    prefilled: int = 0  # prompt tokens prefilled so far
    logits: torch.Tensor | None = None  # the prefill's last logits, until the first row
    codes: torch.Tensor | None = None  # the last codes (next step's input), on the device
    position: int = 0  # the column the next step writes
    lane: Lane | None = None  # the lane whose cache holds it (None: prefilling, or the overflow)
    slot: int | None = None  # its row in that lane's cache
    solo: bool = False  # too long for a slot: in the solo lane or the overflow

    @property
    def prompt_len(self) -> int:
        return self.batch["input_ids"].shape[1]

    def needs(self) -> int:
        return self.prompt_len + self.state.sampling.max_new_tokens + 1


class Scheduler:
    def __init__(
        self,
        loop: DecodeLoop,
        slots: int,
        slot_len: int,
        compile_step: bool = False,
        solo_lanes: int | None = None,
        solo_len: int | None = None,
    ):
        """``slots`` rows of ``slot_len`` positions; with ``solo_len``, a solo lane of ``solo_lanes``
        (default 1) preallocated rows of that many positions (CUDA: the memory plan's)."""
        self.loop = loop
        self.model = loop.model
        config = self.model.config
        self.audio_placeholders = (config.audio_token_id, config.audio_delay_token_id)
        self.device = next(self.model.parameters()).device
        self.dtype = next(self.model.parameters()).dtype
        self.capacity = slots  # sequences in flight at most (lowered after an out-of-memory)
        self.solo_lanes = solo_lanes  # sequences too long for a slot in flight at most (None: any)
        self.compile_step = compile_step
        # the slot-sized mask is read by the slot attention only (slot_attention.py); with
        # another attention implementation every step covers the whole cache
        live = config._attn_implementation == SLOT_ATTENTION
        solo_rows = (solo_lanes or 1) if solo_len and solo_len > slot_len else 0
        solo_buckets = buckets_for(solo_rows) if compile_step and solo_rows else []
        self.buckets = buckets_for(slots, MAX_BUCKETS - len(solo_buckets)) if compile_step else None
        settings = loop.settings
        compiled = (compile_step, settings.compile_backend, settings.compile_mode, settings.fullgraph)
        self.slots = SlotCache(config, slots, slot_len, self.dtype, self.device)
        self.step = CompiledStep(self._slot_step, *compiled, group=self)
        self.lanes = [Lane("slot lane", self.slots, self.step, self.buckets, live)]
        self.solo_lane: Lane | None = None
        if solo_rows:
            cache = SlotCache(config, solo_rows, solo_len, self.dtype, self.device)
            step = CompiledStep(self._solo_step, *compiled, group=self, lane="solo lane")
            self.solo_lane = Lane("solo lane", cache, step, solo_buckets or None, live)
            self.lanes.append(self.solo_lane)
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._waiting: collections.deque[Sequence] = collections.deque()
        self._prefilling: collections.deque[Sequence] = collections.deque()
        self._solo: list[Sequence] = []  # too long for a slot (solo lane or overflow)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.steps = 0  # batched forwards of the slot lane (for tests and figures)
        self.timings: collections.Counter[str] = collections.Counter()  # seconds per part of an iteration

    @property
    def _active(self) -> list[Sequence]:
        """The slot lane's sequences (compact: ``_active[i].slot == i``)."""
        return self.lanes[0].active

    @_active.setter
    def _active(self, sequences: list[Sequence]) -> None:
        self.lanes[0].active = sequences

    @property
    def steps_compiled(self) -> list[CompiledStep]:
        return [lane.step for lane in self.lanes]

    @property
    def graphs(self) -> dict:
        """Compiled graphs and CUDA graphs of every lane (when the steps are compiled)."""
        per_lane = {lane.name: lane.graphs for lane in self.lanes}
        return {
            "compiled": sum(g["compiled"] for g in per_lane.values()),
            "cuda_graphs": sum(g["cuda_graphs"] for g in per_lane.values()),
            "lanes": {
                lane.name: {
                    **lane.graphs,
                    "rows": lane.rows,
                    "length": lane.cache.length,
                    "batch_buckets": lane.batch_buckets,
                    "length_buckets": lane.length_buckets,
                }
                for lane in self.lanes
            },
        }

    # -- the job threads' side ------------------------------------------------------------

    def generate(
        self,
        batch: dict,
        sampling,
        generator: torch.Generator | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[torch.Tensor]:
        """Yield the sequence's rows (CPU) as the scheduler produces them. Raises ``Cancelled``
        when ``should_stop`` answered True, or the error that failed the sequence."""
        state = self.loop.sequence(batch, sampling, generator)
        seq = Sequence(batch, state, should_stop)
        self._submit(seq)
        try:
            while True:
                item = seq.out.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            seq.abandoned = True

    def _submit(self, item) -> None:
        """Hand ``item`` to the scheduler thread, starting one if there is none. Under the same
        lock as a dying thread's last act, so an item is either failed by it or taken by a new one."""
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="decode-scheduler", daemon=True)
                self._thread.start()
            self._inbox.put(item)

    # -- the scheduler thread ---------------------------------------------------------------

    def _run(self) -> None:
        try:
            for lane in self.lanes:
                lane.step.bind()  # the compiled steps belong to this thread
            with torch.inference_mode():
                while True:
                    self._take(block=not (self._waiting or self._prefilling or self._active or self._solo))
                    try:
                        self._iteration()
                    except Exception as exc:  # a bookkeeping bug must not leave jobs hanging
                        log.exception("scheduler iteration failed; failing the sequences in flight")
                        for seq in [*self._prefilling, *self._active, *self._solo]:
                            self._finish(seq, exc)
        except BaseException as exc:  # the thread ends: nobody may wait for it
            log.error("the scheduler thread ended (%s); failing the sequences it held", type(exc).__name__)
            with self._start_lock:  # no new item slips in unseen: the next one starts a new thread
                self._thread = None
                self._fail_everything(RuntimeError(f"the decode scheduler thread ended ({type(exc).__name__})"))
            raise

    def _fail_everything(self, error: BaseException) -> None:
        for seq in [*self._prefilling, *self._active, *self._solo]:
            self._finish(seq, error)
        while self._waiting:
            self._waiting.popleft().out.put(error)
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Task):
                item.error = error
                item.done.set()
            else:
                item.out.put(error)

    def _take(self, block: bool) -> None:
        try:
            item = self._inbox.get() if block else self._inbox.get_nowait()
            while True:
                if isinstance(item, _Task):
                    try:
                        item.fn()
                    except BaseException as exc:
                        item.error = exc
                    item.done.set()
                else:
                    self._waiting.append(item)
                item = self._inbox.get_nowait()
        except queue.Empty:
            pass

    def call(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the scheduler thread (where CUDA graphs must be recorded) and wait."""
        task = _Task(fn)
        self._submit(task)
        task.done.wait()
        if task.error is not None:
            raise task.error

    def _in_flight(self) -> int:
        return len(self._prefilling) + len(self._active) + len(self._solo)

    def _admit(self) -> None:
        """Waiting sequences in arrival order while there is room; one too long for a slot
        waits (letting later ones pass) while the solo lanes are taken."""
        solos = sum(1 for seq in [*self._prefilling, *self._solo] if seq.needs() > self.slots.length)
        for seq in list(self._waiting):
            if self._in_flight() >= self.capacity:
                return
            solo = seq.needs() > self.slots.length
            if solo and self.solo_lanes is not None and solos >= self.solo_lanes:
                continue
            self._waiting.remove(seq)
            self._prefilling.append(seq)
            solos += solo

    def _iteration(self) -> None:
        clock = time.perf_counter
        started = clock()
        self._admit()
        ready: list[Sequence] = []  # sequences whose logits for the next row are ready
        if self._prefilling:
            seq = self._prefilling[0]
            mark = clock()
            done = self._prefill_piece(seq)
            self.timings["prefill"] += clock() - mark
            if done:
                self._prefilling.popleft()
                ready.append(seq)
        for seq in list(self._waiting):  # queued jobs can be cancelled too
            if seq.abandoned or (seq.should_stop is not None and seq.should_stop()):
                self._waiting.remove(seq)
                seq.out.put(Cancelled())
        stepping = [seq for seq in [*self._active, *self._solo] if self._keeps_going(seq)]
        mark = clock()
        if any(seq.lane is self.lanes[0] for seq in stepping):
            self._forward_slots()
        if any(seq.solo for seq in stepping):
            self._forward_solo()
        self.timings["forward"] += clock() - mark
        for seq in ready:
            if self._keeps_going(seq):
                self._place(seq)
        self._sample([seq for seq in [*self._active, *self._solo] if seq.logits is not None])
        self.timings["iteration"] += clock() - started
        self.timings["iterations"] += 1

    def _keeps_going(self, seq: Sequence) -> bool:
        """Ask the sequence's stop flag (once per row); retire it if it must stop."""
        try:
            stop = seq.abandoned or (seq.should_stop is not None and seq.should_stop())
        except Exception as exc:
            self._finish(seq, exc)
            return False
        if stop:
            self._finish(seq, Cancelled())
        return not stop

    # -- prefill and placement ----------------------------------------------------------------

    def _prefill_piece(self, seq: Sequence) -> bool:
        """One chunk of the sequence's prompt, alone; True when the prompt is done."""
        from transformers import DynamicCache

        try:
            if seq.cache is None:
                seq.cache = DynamicCache(config=self.model.config)
            ids = seq.batch["input_ids"]
            start, end = seq.prefilled, min(seq.prompt_len, seq.prefilled + PREFILL_CHUNK)
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
            if end < seq.prompt_len:
                return False
            seq.logits = out.logits[0, -1, :].float()
            seq.position = seq.prompt_len
            return True
        except Exception as exc:
            if is_out_of_memory(exc):
                self._lower_capacity(self._in_flight())
            self._finish(seq, exc)
            return False

    def _place(self, seq: Sequence) -> None:
        """A prefilled sequence joins the slot lane; one too long for a slot the solo lane
        (when there is one, it is long enough and a row is free), else the overflow (its own
        cache, the plain step)."""
        needs = seq.needs()
        lane = self.lanes[0]
        if not lane.fits(needs):
            seq.solo = True
            self._solo.append(seq)
            solo = self.solo_lane
            if solo is None or not solo.fits(needs) or not solo.has_room():
                return  # the overflow keeps its DynamicCache
            lane = solo
        try:
            lane.add(seq, seq.cache, seq.prompt_len)
            seq.cache = None
        except Exception as exc:
            self._finish(seq, exc)

    # -- the forwards ---------------------------------------------------------------------------

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
        return self._forward_model(self.lanes[0].cache, codes, columns)

    def _solo_step(self, codes: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        return self._forward_model(self.lanes[-1].cache, codes, columns)

    def _forward_lane(self, lane: Lane) -> bool:
        active = list(lane.active)
        try:
            logits = lane.forward(self.loop.rules.num_codebooks)
        except Exception as exc:
            log.warning("batched step over %d sequences (%s) failed: %s", len(active), lane.name, type(exc).__name__)
            if is_out_of_memory(exc):
                self._lower_capacity(len(active))
            for seq in active:
                self._finish(seq, exc)
            return False
        for index, seq in enumerate(active):
            seq.logits = logits[index]
            seq.position += 1
        return True

    def _forward_slots(self) -> None:
        if self._forward_lane(self.lanes[0]):
            self.steps += 1

    def _lower_capacity(self, stepping: int) -> None:
        """Out of memory with ``stepping`` sequences: at most half as many from now on."""
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        lowered = max(1, min(self.capacity, stepping) // 2)
        if lowered < self.capacity:
            log.warning(
                "out of GPU memory with %d sequences in a step: those jobs failed; at most %d jobs run "
                "at once from now on (was %d)",
                stepping,
                lowered,
                self.capacity,
            )
            self.capacity = lowered

    def _forward_solo(self) -> None:
        """The sequences too long for a slot: the solo lane's rows in one step, then each
        overflow sequence alone (its own cache, the plain step)."""
        if self.solo_lane is not None and self.solo_lane.active:
            self._forward_lane(self.solo_lane)
        for seq in [s for s in self._solo if s.lane is None]:
            self._forward_overflow(seq)

    def _forward_overflow(self, seq: Sequence) -> None:
        n = self.loop.rules.num_codebooks
        try:
            position = torch.full((1, 1), seq.position, dtype=torch.long, device=self.device)
            seq.logits = self.loop._eager_step(seq.codes.view(1, 1, n), position, seq.cache)[0]
            seq.position += 1
        except Exception as exc:
            self._finish(seq, exc)

    # -- rows out ---------------------------------------------------------------------------

    def _sample(self, sequences: list[Sequence]) -> None:
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
                    self._finish(seq, exc)
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
                    self._finish(seq, _END)
            except Exception as exc:
                self._finish(seq, exc)
        self.timings["hand-out"] += clock() - handing

    def _finish(self, seq: Sequence, outcome) -> None:
        """Retire a sequence: free its row (the lane's last active row moves into it) or cache."""
        if seq.lane is not None:
            seq.lane.remove(seq)
        if seq in self._solo:
            self._solo.remove(seq)
        if seq in self._prefilling:
            self._prefilling.remove(seq)
        seq.cache = None
        seq.logits = None
        seq.out.put(outcome)

    # -- warm-up -----------------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Run each lane's step at every batch bucket and length bucket (compilation, CUDA graph
        capture), on the scheduler thread. Rows write to each cache's scratch column, which no
        sequence uses, so sequences in flight are untouched."""
        self.call(self._warm_buckets)

    def _warm_buckets(self) -> None:
        n = self.loop.rules.num_codebooks
        if self.compile_step:
            graphs = self.graphs
            log.info(
                "decode step: recording up to %d CUDA graphs (%s) from %d compiled graph(s)",
                graphs["cuda_graphs"],
                ", ".join(
                    f"{name} {len(g['batch_buckets'] or [1])} batch x {len(g['length_buckets'])} length buckets"
                    for name, g in graphs["lanes"].items()
                ),
                graphs["compiled"],
            )
            # inductor warns past 50 CUDA graphs per compiled graph; these are planned
            torch_features.allow_cudagraph_shapes(max(g["cuda_graphs"] for g in graphs["lanes"].values()))
        for lane in self.lanes:
            lane.warm(n, self.device, self.compile_step)
            compiled = [size for size in lane.batch_buckets or [] if lane.step.runs_compiled(size)]
            log.info(
                "decode step (%s, %d x %d positions) warmed up at batch sizes %s and %d length bucket(s) %s (%s)",
                lane.name,
                lane.rows,
                lane.cache.length,
                lane.batch_buckets or [1],
                len(lane.length_buckets),
                _span(lane.length_buckets),
                f"compiled: {compiled}, {lane.graphs['cuda_graphs']} graphs" if compiled else "plain step",
            )


def _span(sizes: list[int]) -> str:
    return f"[{sizes[0]}]" if len(sizes) == 1 else f"[{sizes[0]}, {sizes[1]}, ... {sizes[-1]}]"
