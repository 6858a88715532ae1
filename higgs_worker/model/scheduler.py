"""Continuous batching: one thread owns the model; every active sequence advances in one
batched forward per step.

Job threads call ``Scheduler.generate(batch, sampling, generator, should_stop)`` and read
rows (num_codebooks codes on the CPU) from it as they come. The scheduler thread keeps every
sequence it holds in arrival order, each with its phase (``model/sequence.py``: waiting,
prefilling, in the slot lane, in the solo lane, in the overflow, finished), and loops:

1. takes new sequences (and tasks: ``call``) from its inbox;
2. plans the step (``model/step_plan.py``, bookkeeping only): who is admitted (one sequence
   per slot: at most ``capacity`` in flight; at most ``solo_lanes`` of them too long for a
   slot, when that is limited: the memory plan reserves room for so many), which piece of
   whose prompt is prefilled (``PREFILL_CHUNK`` tokens of the oldest admitted sequence),
   where that sequence decodes once its prompt is done, which sequences each lane steps;
3. runs it (``model/step_runner.py``): the prefill piece; asks each waiting and decoding
   sequence whether to stop (``should_stop``, or its reader went away) and retires stopped
   ones; one batched forward per lane over its active rows (attending over the live length
   only, padded to a batch-size bucket when the step is compiled: at most ``MAX_BUCKETS``
   compiled graphs in all, under dynamo's recompile limit), one plain step per overflow
   sequence; the placement; then samples every row at once, hands the rows out and retires
   finished sequences.

Each lane's step is a ``CompiledStep``: compiled where that works, the plain step where it
does not (a compile, capture or replay failure reruns that step plain: no sequence sees it).
It is built, compiled, warmed up, captured and replayed on the scheduler thread only (CUDA-graph
trees keep per-thread state); a replacement thread builds it again.

A failure while handling one sequence fails that sequence only; a failed batched forward fails
the sequences of that step, and the scheduler keeps serving. Out of memory there also lowers
``capacity`` (half the sequences that step had: ``step_plan.lowered_capacity``), so the next
steps are smaller instead of failing again. If the thread itself ever ends, every sequence in
flight or waiting fails with the reason.

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

from . import torch_features
from .compiled_step import CompiledStep
from .decode_loop import DecodeLoop
from .lane import MAX_BUCKETS, Lane, buckets_for
from .sequence import Phase, Sequence
from .slot_cache import SlotCache
from .spec import SPEC
from .step_plan import lowered_capacity, plan_step
from .step_runner import END, StepRunner

log = logging.getLogger(__name__)

PREFILL_CHUNK = SPEC.prefill_tokens  # prompt tokens per prefill piece between two decode steps (model/spec.py)

__all__ = ["MAX_BUCKETS", "PREFILL_CHUNK", "Phase", "Scheduler", "Sequence", "buckets_for"]


@dataclass(eq=False)
class _Task:
    """A function to run on the scheduler thread between two iterations (warm-up)."""

    fn: Callable[[], None]
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


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
        self.capacity = slots  # sequences in flight at most (lowered after an out-of-memory)
        self.solo_lanes = solo_lanes  # sequences too long for a slot in flight at most (None: any)
        self.compile_step = compile_step
        solo_rows = (solo_lanes or 1) if solo_len and solo_len > slot_len else 0
        self.runner = StepRunner(
            loop, slots, slot_len, compile_step, solo_rows, solo_len, group=self, out_of_memory=self._out_of_memory
        )
        self.device = self.runner.device
        self.buckets = self.runner.buckets
        self.slot_lane: Lane = self.runner.lanes[Phase.SLOT_LANE]
        self.solo_lane: Lane | None = self.runner.lanes.get(Phase.SOLO_LANE)
        self.slots: SlotCache = self.slot_lane.cache
        self.step: CompiledStep = self.slot_lane.step
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._sequences: list[Sequence] = []  # every sequence held, in arrival order (none finished)
        self._admissions = 0  # sequences admitted so far (their admission order)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    @property
    def lanes(self) -> list[Lane]:
        """The slot lane, then the solo lane when there is one."""
        return list(self.runner.lanes.values())

    @property
    def steps(self) -> int:
        """Batched forwards of the slot lane so far (for tests and figures)."""
        return self.runner.steps

    @property
    def timings(self) -> collections.Counter[str]:
        """Seconds spent in each part of an iteration so far."""
        return self.runner.timings

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

    def held(self, phase: Phase) -> list[Sequence]:
        """The sequences in ``phase`` now, in arrival order (a snapshot; for tests and figures)."""
        return [seq for seq in list(self._sequences) if seq.phase is phase]

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
                if item is END:
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

    def call(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the scheduler thread (where CUDA graphs must be recorded) and wait."""
        task = _Task(fn)
        self._submit(task)
        task.done.wait()
        if task.error is not None:
            raise task.error

    # -- the scheduler thread ---------------------------------------------------------------

    def _run(self) -> None:
        try:
            for lane in self.lanes:
                lane.step.bind()  # the compiled steps belong to this thread
            with torch.inference_mode():
                while True:
                    self._take(block=not self._sequences)
                    try:
                        self._iteration()
                    except Exception as exc:  # a bookkeeping bug must not leave jobs hanging
                        log.exception("scheduler iteration failed; failing the sequences in flight")
                        for seq in self._sequences:
                            if seq.phase.in_flight:
                                self.runner.finish(seq, exc)
                        self._forget_finished()
        except BaseException as exc:  # the thread ends: nobody may wait for it
            log.error("the scheduler thread ended (%s); failing the sequences it held", type(exc).__name__)
            with self._start_lock:  # no new item slips in unseen: the next one starts a new thread
                self._thread = None
                self._fail_everything(RuntimeError(f"the decode scheduler thread ended ({type(exc).__name__})"))
            raise

    def _fail_everything(self, error: BaseException) -> None:
        for seq in self._sequences:
            if seq.phase is not Phase.FINISHED:
                self.runner.finish(seq, error)
        self._sequences = []
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
                    self._sequences.append(item)
                item = self._inbox.get_nowait()
        except queue.Empty:
            pass

    def _iteration(self) -> None:
        """Plan the step, run it."""
        clock = time.perf_counter
        started = clock()
        plan = plan_step(
            self._sequences,
            capacity=self.capacity,
            solo_lanes=self.solo_lanes,
            lanes=self.runner.sizes,
            prefill_tokens=PREFILL_CHUNK,
        )
        self.runner.run(plan, self._admissions)
        self._admissions += len(plan.admit)
        self._forget_finished()
        self.timings["iteration"] += clock() - started
        self.timings["iterations"] += 1

    def _forget_finished(self) -> None:
        self._sequences = [seq for seq in self._sequences if seq.phase is not Phase.FINISHED]

    def _out_of_memory(self, stepping: int | None) -> None:
        """Out of memory with ``stepping`` sequences in the step (None: every one in flight):
        at most half as many from now on."""
        if stepping is None:
            stepping = sum(1 for seq in self._sequences if seq.phase.in_flight)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        lowered = lowered_capacity(self.capacity, stepping)
        if lowered < self.capacity:
            log.warning(
                "out of GPU memory with %d sequences in a step: those jobs failed; at most %d jobs run "
                "at once from now on (was %d)",
                stepping,
                lowered,
                self.capacity,
            )
            self.capacity = lowered

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
