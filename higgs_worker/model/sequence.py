"""One sequence the scheduler generates (one chunk of a job), and where it stands.

A sequence's place in the scheduler is one value, ``Sequence.phase``:

- ``WAITING``: in the queue, not admitted yet (no memory held);
- ``PREFILLING``: admitted; its prompt is prefilled piece by piece in its own ``DynamicCache``;
- ``SLOT_LANE`` / ``SOLO_LANE``: decoding in a row of that lane's preallocated cache
  (``lane`` and ``slot`` say which row; the lane keeps them, ``model/lane.py``);
- ``OVERFLOW``: decoding in its own cache with the plain step (too long for every lane);
- ``FINISHED``: retired (its last outcome is in ``out``); it holds nothing any more.

Only the scheduler thread changes ``phase``. ``abandoned`` is apart on purpose: the job's own
thread sets it when it stops reading (the one field another thread writes), and the scheduler
retires such a sequence at its next step.
"""

from __future__ import annotations

import enum
import queue
from collections.abc import Callable
from dataclasses import dataclass, field

import torch


class Phase(enum.Enum):
    WAITING = "waiting"
    PREFILLING = "prefilling"
    SLOT_LANE = "slot lane"
    SOLO_LANE = "solo lane"
    OVERFLOW = "overflow"
    FINISHED = "finished"

    @property
    def in_flight(self) -> bool:
        """Admitted and not finished: counts against the scheduler's capacity."""
        return self in IN_FLIGHT


LANE_PHASES = (Phase.SLOT_LANE, Phase.SOLO_LANE)  # the phases that decode in a lane, in stepping order
IN_FLIGHT = (Phase.PREFILLING, *LANE_PHASES, Phase.OVERFLOW)


@dataclass(eq=False)
class Sequence:
    batch: dict  # the tokenized prompt (input_ids, and audio_input_ids when it holds audio)
    state: object  # decode_loop.SequenceState: sampling rules, generator, stop test
    should_stop: Callable[[], bool] | None
    out: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)  # rows, then the outcome
    phase: Phase = Phase.WAITING
    admitted: int | None = None  # admission order (the oldest admitted prefills first)
    abandoned: bool = False  # the reader went away (set by the job's thread)
    cache: object | None = None  # its own DynamicCache: while prefilling, and in the overflow
    prefilled: int = 0  # prompt tokens prefilled so far
    logits: torch.Tensor | None = None  # the last step's logits, until its row is sampled
    codes: torch.Tensor | None = None  # the last codes (next step's input), on the device
    position: int = 0  # the column the next step writes
    lane: object | None = None  # the Lane whose cache holds it (set by Lane.add / Lane.remove)
    slot: int | None = None  # its row in that lane's cache

    @property
    def prompt_len(self) -> int:
        return self.batch["input_ids"].shape[1]

    def needs(self) -> int:
        """Cache positions it may take: its prompt, its bound, one more."""
        return self.prompt_len + self.state.sampling.max_new_tokens + 1
