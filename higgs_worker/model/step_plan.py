"""The plan of one scheduler step: pure bookkeeping, no model, no torch call.

Each iteration ``plan_step`` decides, from the sequences' phases and the lanes' sizes alone:

- ``admit``: waiting sequences that start, in arrival order, while fewer than ``capacity`` are in
  flight; one too long for a slot (``needs() > slot length``) waits, letting later ones pass,
  while ``solo_lanes`` of them are in flight already (the memory plan reserves room for so many);
- ``prefill``: one piece (``prefill_tokens`` prompt tokens) of the oldest admitted sequence;
- ``placement``: where that sequence decodes once its prompt is done: the slot lane when it fits
  a slot, else the solo lane when there is one and it fits (the runner takes the overflow
  instead when no solo row is free then), else the overflow (its own cache, the plain step);
- ``decode``: per lane (by its phase) the sequences its one batched forward steps, and the
  overflow's sequences, each stepped alone;
- ``ask_waiting``: the waiting sequences left waiting, whose stop test is asked (a queued job can
  be cancelled too). Every sequence in ``decode`` is asked too, once per row, before its step;
  those that stop are retired and not stepped.

Who finishes is known only while the step runs (a stop, an end of stream, a failure).

``StepRunner`` (``model/step_runner.py``) carries the plan out. ``lowered_capacity`` is the
out-of-memory policy: at most half the sequences of the step that ran out of memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .sequence import IN_FLIGHT, LANE_PHASES, Phase, Sequence


@dataclass(frozen=True)
class LaneSize:
    """What the planner knows of a lane: how long its rows are."""

    length: int  # positions per row


@dataclass(frozen=True)
class PrefillPiece:
    sequence: Sequence
    start: int  # prompt tokens [start, end) this piece
    end: int

    @property
    def last(self) -> bool:
        """The prompt is done after this piece (its first row is sampled from its logits)."""
        return self.end >= self.sequence.prompt_len


@dataclass
class StepPlan:
    admit: list[Sequence] = field(default_factory=list)
    prefill: PrefillPiece | None = None
    placement: Phase | None = None  # where ``prefill``'s sequence goes when its prompt is done
    decode: dict[Phase, list[Sequence]] = field(default_factory=dict)  # SLOT_LANE, SOLO_LANE, OVERFLOW
    ask_waiting: list[Sequence] = field(default_factory=list)


def plan_step(
    sequences: Iterable[Sequence],
    *,
    capacity: int,
    solo_lanes: int | None,
    lanes: Mapping[Phase, LaneSize],
    prefill_tokens: int,
) -> StepPlan:
    """The next step for ``sequences`` (the scheduler's, in arrival order). ``lanes``: the slot
    lane's size (``Phase.SLOT_LANE``) and the solo lane's when there is one."""
    by_phase: dict[Phase, list[Sequence]] = {phase: [] for phase in Phase}
    for seq in sequences:
        by_phase[seq.phase].append(seq)
    in_flight = [seq for phase in IN_FLIGHT for seq in by_phase[phase]]
    waiting = by_phase[Phase.WAITING]
    plan = StepPlan(admit=admissions(in_flight, waiting, capacity, solo_lanes, lanes[Phase.SLOT_LANE].length))
    plan.prefill = next_prefill(by_phase[Phase.PREFILLING], plan.admit, prefill_tokens)
    if plan.prefill is not None and plan.prefill.last:
        plan.placement = placement(plan.prefill.sequence, lanes)
    for phase in (*LANE_PHASES, Phase.OVERFLOW):
        if by_phase[phase]:
            plan.decode[phase] = by_phase[phase]
    starting = set(plan.admit)
    plan.ask_waiting = [seq for seq in waiting if seq not in starting]
    return plan


def too_long_for_a_slot(seq: Sequence, slot_length: int) -> bool:
    return seq.needs() > slot_length


def admissions(
    in_flight: list[Sequence], waiting: list[Sequence], capacity: int, solo_lanes: int | None, slot_length: int
) -> list[Sequence]:
    """Waiting sequences (arrival order) that start now, beside those ``in_flight``."""
    count = len(in_flight)
    if not waiting or count >= capacity:
        return []
    solos = sum(1 for seq in in_flight if too_long_for_a_slot(seq, slot_length))
    admitted = []
    for seq in waiting:
        if count >= capacity:
            break
        solo = too_long_for_a_slot(seq, slot_length)
        if solo and solo_lanes is not None and solos >= solo_lanes:
            continue  # waits for the solo lanes; later ones pass
        admitted.append(seq)
        count += 1
        solos += solo
    return admitted


def next_prefill(prefilling: list[Sequence], admitted: list[Sequence], prefill_tokens: int) -> PrefillPiece | None:
    """The next piece of the oldest admitted sequence still prefilling (those admitted now come
    after every earlier one)."""
    if prefilling:
        seq = min(prefilling, key=lambda seq: seq.admitted)
    elif admitted:
        seq = admitted[0]
    else:
        return None
    return PrefillPiece(seq, seq.prefilled, min(seq.prompt_len, seq.prefilled + prefill_tokens))


def placement(seq: Sequence, lanes: Mapping[Phase, LaneSize]) -> Phase:
    """Where a prefilled sequence decodes: the slot lane when it fits a slot (admission keeps a
    row free for every sequence in flight), else the solo lane when there is one and it fits,
    else the overflow."""
    needs = seq.needs()
    if needs <= lanes[Phase.SLOT_LANE].length:
        return Phase.SLOT_LANE
    solo = lanes.get(Phase.SOLO_LANE)
    if solo is not None and needs <= solo.length:
        return Phase.SOLO_LANE
    return Phase.OVERFLOW


def lowered_capacity(capacity: int, stepping: int) -> int:
    """Capacity after running out of memory with ``stepping`` sequences: half of them, at
    least 1, never above what it was."""
    return max(1, min(capacity, stepping) // 2)
