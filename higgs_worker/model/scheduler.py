"""Continuous batching: one thread owns the model; every active sequence advances in one
batched forward per step.

Job threads call ``Scheduler.generate(batch, sampling, generator, should_stop)`` and read
rows (num_codebooks codes on the CPU) from it as they come. Each iteration the scheduler
thread:

1. takes new sequences into its FIFO queue and admits them while there is room (one
   sequence per slot: at most ``slots`` in flight);
2. prefills one chunk (``PREFILL_CHUNK`` tokens) of the oldest admitted sequence alone,
   in its own ``DynamicCache``; when its prompt is done the first row is sampled from the
   prefill logits and its keys/values move into a free slot of the ``SlotCache`` (or, if
   prompt + max_new_tokens exceed a slot, it keeps its own cache: the "solo lane");
3. asks each sequence about to produce a row whether to stop (``should_stop``), and
   retires stopped ones at once;
4. runs one batched forward over all slot sequences (padded to a batch-size bucket when
   the step is compiled) and one plain step per solo sequence;
5. samples each row with the sequence's own ``SequenceState`` (its own generator), hands
   the rows out and retires finished sequences (compacting the slots).

A failure while handling one sequence fails that sequence only; a failed batched forward
(e.g. CUDA out of memory) fails the sequences of that step, and the scheduler keeps serving.
"""

from __future__ import annotations

import collections
import itertools
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from ..contract.errors import Cancelled
from .decode_loop import DecodeLoop, SequenceState, sample_many
from .slot_cache import SlotCache

log = logging.getLogger(__name__)

PREFILL_CHUNK = 512  # prompt tokens per prefill piece between two decode steps
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
_END = object()


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
    def __init__(self, loop: DecodeLoop, slots: int, slot_len: int, compile_step: bool = False):
        self.loop = loop
        self.model = loop.model
        config = self.model.config
        self.audio_placeholders = (config.audio_token_id, config.audio_delay_token_id)
        self.device = next(self.model.parameters()).device
        self.dtype = next(self.model.parameters()).dtype
        self.slots = SlotCache(config, slots, slot_len, self.dtype, self.device)
        self.capacity = slots
        self.compile_step = compile_step
        self.buckets = [b for b in BATCH_BUCKETS if b < slots] + [slots] if compile_step else None
        self._step = self._batched_step
        if compile_step:
            self._step = torch.compile(self._batched_step, mode="reduce-overhead", dynamic=False)
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._waiting: collections.deque[Sequence] = collections.deque()
        self._prefilling: collections.deque[Sequence] = collections.deque()
        self._active: list[Sequence] = []  # slot lane, compact: _active[i].slot == i
        self._solo: list[Sequence] = []
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.steps = itertools.count()  # batched forwards run (for tests and figures)

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
        self._ensure_thread()
        self._inbox.put(seq)
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

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="decode-scheduler", daemon=True)
                self._thread.start()

    # -- the scheduler thread ---------------------------------------------------------------

    def _run(self) -> None:
        with torch.inference_mode():
            while True:
                self._take(block=not (self._waiting or self._prefilling or self._active or self._solo))
                try:
                    self._iteration()
                except Exception as exc:  # a bookkeeping bug must not leave jobs hanging
                    log.exception("scheduler iteration failed; failing the sequences in flight")
                    for seq in [*self._prefilling, *self._active, *self._solo]:
                        self._finish(seq, exc)

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
        self._ensure_thread()
        self._inbox.put(task)
        task.done.wait()
        if task.error is not None:
            raise task.error

    def _in_flight(self) -> int:
        return len(self._prefilling) + len(self._active) + len(self._solo)

    def _iteration(self) -> None:
        while self._waiting and self._in_flight() < self.capacity:
            self._prefilling.append(self._waiting.popleft())
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
        return next(b for b in self.buckets if b >= active) if self.buckets else active

    def _forward_slots(self) -> None:
        active = self._active
        size = self._bucket(len(active))
        n = self.loop.rules.num_codebooks
        positions = [seq.position for seq in active] + [0] * (size - len(active))
        codes = [seq.codes for seq in active]
        codes += [torch.zeros_like(codes[0])] * (size - len(active))
        try:
            self.slots.positions[:size].copy_(torch.tensor(positions), non_blocking=True)
            logits = self._step(torch.stack(codes).view(size, 1, n))
            if self.compile_step:
                logits = logits.clone()  # CUDA graph outputs are overwritten by the next replay
        except Exception as exc:
            log.warning("batched step over %d sequences failed: %s", len(active), type(exc).__name__)
            if isinstance(exc, torch.OutOfMemoryError) and torch.cuda.is_available():
                torch.cuda.empty_cache()
            for seq in list(active):
                self._finish(seq, exc)
            return
        next(self.steps)
        for index, seq in enumerate(active):
            seq.logits = logits[index]
            seq.position += 1

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
                self._step(codes)
        log.info("decode step warmed up at batch sizes %s", self.buckets or [1])
