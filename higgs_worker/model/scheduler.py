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
   prefill logits and its keys/values move into a free slot of the ``SlotCache`` (or, if
   prompt + max_new_tokens exceed a slot, it keeps its own cache: the "solo lane");
3. asks each sequence about to produce a row whether to stop (``should_stop``), and
   retires stopped ones at once;
4. runs one batched forward over all slot sequences (padded to a batch-size bucket when
   the step is compiled: at most ``MAX_BUCKETS`` sizes, under dynamo's recompile limit) and
   one plain step per solo sequence;
5. samples each row with the sequence's own ``SequenceState`` (its own generator), hands
   the rows out and retires finished sequences (compacting the slots).

The batched step is a ``CompiledStep``: compiled where that works, the plain step where it
does not (a compile, capture or replay failure reruns that step plain: no sequence sees it).
It is built, compiled, warmed up, captured and replayed on the scheduler thread only (CUDA-graph
trees keep per-thread state); a replacement thread builds it again.

A failure while handling one sequence fails that sequence only; a failed batched forward fails
the sequences of that step, and the scheduler keeps serving. Out of memory there also lowers
``capacity`` (half the sequences that step had), so the next steps are smaller instead of failing
again. If the thread itself ever ends, every sequence in flight or waiting fails with the reason.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from ..contract.errors import Cancelled, is_out_of_memory
from .compiled_step import CompiledStep
from .decode_loop import DecodeLoop, SequenceState, sample_many
from .slot_cache import SlotCache

log = logging.getLogger(__name__)

PREFILL_CHUNK = 512  # prompt tokens per prefill piece between two decode steps
MAX_BUCKETS = 8  # batch sizes compiled at most: dynamo's recompile limit (8) counts them
_END = object()


def buckets_for(slots: int) -> list[int]:
    """Batch sizes the compiled step is padded to: powers of two below ``slots``, then
    ``slots``; at most ``MAX_BUCKETS`` of them (above 64 the next size is ``slots``)."""
    powers = [1 << i for i in range(MAX_BUCKETS - 1) if (1 << i) < slots]
    return powers + [slots]


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
    slot: int | None = None  # its row in the slot cache (slot lane)
    solo: bool = False

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
    ):
        self.loop = loop
        self.model = loop.model
        config = self.model.config
        self.audio_placeholders = (config.audio_token_id, config.audio_delay_token_id)
        self.device = next(self.model.parameters()).device
        self.dtype = next(self.model.parameters()).dtype
        self.slots = SlotCache(config, slots, slot_len, self.dtype, self.device)
        self.capacity = slots  # sequences in flight at most (lowered after an out-of-memory)
        self.solo_lanes = solo_lanes  # sequences too long for a slot in flight at most (None: any)
        self.compile_step = compile_step
        self.buckets = buckets_for(slots) if compile_step else None
        settings = loop.settings
        self.step = CompiledStep(
            self._batched_step, compile_step, settings.compile_backend, settings.compile_mode, settings.fullgraph
        )
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._waiting: collections.deque[Sequence] = collections.deque()
        self._prefilling: collections.deque[Sequence] = collections.deque()
        self._active: list[Sequence] = []  # slot lane, compact: _active[i].slot == i
        self._solo: list[Sequence] = []
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.steps = 0  # batched forwards run (for tests and figures)

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
            self.step.bind()  # the compiled step belongs to this thread
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
        self._admit()
        ready: list[Sequence] = []  # sequences whose logits for the next row are ready
        if self._prefilling:
            seq = self._prefilling[0]
            if self._prefill_piece(seq):
                self._prefilling.popleft()
                ready.append(seq)
        for seq in list(self._waiting):  # queued jobs can be cancelled too
            if seq.abandoned or (seq.should_stop is not None and seq.should_stop()):
                self._waiting.remove(seq)
                seq.out.put(Cancelled())
        stepping = [seq for seq in [*self._active, *self._solo] if self._keeps_going(seq)]
        if any(seq.slot is not None for seq in stepping):
            self._forward_slots()
        for seq in [s for s in stepping if s.solo]:
            self._forward_solo(seq)
        for seq in ready:
            if self._keeps_going(seq):
                self._place(seq)
        self._sample([seq for seq in [*self._active, *self._solo] if seq.logits is not None])

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
        """A prefilled sequence joins the slots, or the solo lane when it is too long for one."""
        if seq.needs() > self.slots.length:
            seq.solo = True
            self._solo.append(seq)
            return
        try:
            seq.slot = len(self._active)
            self.slots.load(seq.slot, seq.cache, seq.prompt_len)
            seq.cache = None
            self._active.append(seq)
        except Exception as exc:
            seq.slot = None
            self._finish(seq, exc)

    # -- the forwards ---------------------------------------------------------------------------

    def _batched_step(self, codes: torch.Tensor) -> torch.Tensor:
        batch = codes.shape[0]
        positions = self.slots.positions[:batch]
        mask = self.slots.mask(batch, self.dtype)
        out = self.model(
            audio_input_ids=codes,
            attention_mask=mask,
            position_ids=positions[:, None],
            cache=self.slots,
            use_cache=True,
        )
        return out.logits[:, -1, :].float()

    def _bucket(self, active: int) -> int:
        if not self.buckets or self.step.all_plain:  # padding only helps compiled sizes
            return active
        return next(b for b in self.buckets if b >= active)

    def _forward_slots(self) -> None:
        active = self._active
        size = self._bucket(len(active))
        n = self.loop.rules.num_codebooks
        positions = [seq.position for seq in active] + [0] * (size - len(active))
        codes = [seq.codes for seq in active]
        codes += [torch.zeros_like(codes[0])] * (size - len(active))
        try:
            self.slots.positions[:size].copy_(torch.tensor(positions), non_blocking=True)
            logits = self.step(torch.stack(codes).view(size, 1, n))
        except Exception as exc:
            log.warning("batched step over %d sequences failed: %s", len(active), type(exc).__name__)
            if is_out_of_memory(exc):
                self._lower_capacity(len(active))
            for seq in list(active):
                self._finish(seq, exc)
            return
        self.steps += 1
        for index, seq in enumerate(active):
            seq.logits = logits[index]
            seq.position += 1

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

    def _forward_solo(self, seq: Sequence) -> None:
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

    def _finish(self, seq: Sequence, outcome) -> None:
        """Retire a sequence: free its slot (moving the last active one into it) or lane."""
        if seq.slot is not None and seq in self._active:
            hole, last = seq.slot, self._active[-1]
            self._active.pop()
            if last is not seq:
                self.slots.move(last.slot, hole, last.position)
                last.slot = hole
                self._active[hole] = last
            seq.slot = None
        if seq in self._solo:
            self._solo.remove(seq)
        if seq in self._prefilling:
            self._prefilling.remove(seq)
        seq.cache = None
        seq.logits = None
        seq.out.put(outcome)

    # -- warm-up -----------------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Run the batched step at every batch bucket (compilation, CUDA graph capture), on
        the scheduler thread. Rows write to the last column, which no slot sequence uses (a
        sequence goes to a slot only if prompt + max_new_tokens + 1 fit), so sequences in
        flight are untouched."""
        self.call(self._warm_buckets)

    def _warm_buckets(self) -> None:
        n = self.loop.rules.num_codebooks
        scratch = self.slots.length - 1
        for size in self.buckets or [1]:
            codes = torch.zeros((size, 1, n), dtype=torch.long, device=self.device)
            for _ in range(3 if self.compile_step else 1):  # cudagraph trees record on a later call
                self.slots.positions[:size].fill_(scratch)
                self.step(codes)
        compiled = [size for size in self.buckets or [] if self.step.runs_compiled(size)]
        log.info(
            "decode step warmed up at batch sizes %s (%s)",
            self.buckets or [1],
            f"compiled: {compiled}" if compiled else "plain step",
        )
