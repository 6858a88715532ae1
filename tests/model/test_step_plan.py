"""The scheduler's planner on its own (higgs_worker/model/step_plan.py): admission, the prefill
piece, placement, the lanes' steps and the out-of-memory policy, from the sequences' phases and
the lanes' sizes alone: no model, no forward.

A sequence here carries a prompt of zeros and, as its decode state, only its sampling bound
(``needs()`` reads ``state.sampling.max_new_tokens``; the planner reads nothing else of it)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from higgs_worker.model.engine import Sampling
from higgs_worker.model.sequence import Phase, Sequence
from higgs_worker.model.step_plan import LaneSize, lowered_capacity, plan_step

SLOT = 256
SOLO = 1024
LANES = {Phase.SLOT_LANE: LaneSize(SLOT)}
WITH_SOLO = {Phase.SLOT_LANE: LaneSize(SLOT), Phase.SOLO_LANE: LaneSize(SOLO)}


def seq(prompt: int = 10, bound: int = 50, phase: Phase = Phase.WAITING, admitted: int | None = None) -> Sequence:
    """A sequence of ``prompt`` tokens that may generate ``bound`` rows (needs prompt + bound + 1)."""
    state = SimpleNamespace(sampling=Sampling(max_new_tokens=bound))
    return Sequence(
        {"input_ids": torch.zeros((1, prompt), dtype=torch.long)}, state, None, phase=phase, admitted=admitted
    )


def long_seq(**kwargs) -> Sequence:
    return seq(prompt=10, bound=400, **kwargs)  # needs 411 > SLOT, fits SOLO


def plan(sequences, capacity=4, solo_lanes=None, lanes=LANES, prefill_tokens=8):
    return plan_step(sequences, capacity=capacity, solo_lanes=solo_lanes, lanes=lanes, prefill_tokens=prefill_tokens)


def test_waiting_sequences_are_admitted_in_arrival_order_while_fewer_than_capacity_are_in_flight():
    decoding = seq(phase=Phase.SLOT_LANE)
    waiting = [seq() for _ in range(4)]
    step = plan([decoding, *waiting], capacity=3)
    assert step.admit == waiting[:2]
    assert step.ask_waiting == waiting[2:]  # those left waiting are asked whether to stop
    assert all(s.phase is Phase.WAITING for s in waiting)  # planning changes nothing


def test_finished_sequences_hold_no_place():
    done = [seq(phase=Phase.FINISHED) for _ in range(3)]
    waiting = seq()
    step = plan([*done, waiting], capacity=1)
    assert step.admit == [waiting] and not step.decode


def test_a_sequence_too_long_for_a_slot_waits_for_the_solo_lanes_and_later_ones_pass():
    running = long_seq(phase=Phase.SOLO_LANE)
    second_long, short = long_seq(), seq()
    step = plan([running, second_long, short], capacity=4, solo_lanes=1, lanes=WITH_SOLO)
    assert step.admit == [short]
    assert step.ask_waiting == [second_long]
    # a long one still prefilling counts as well
    step = plan([long_seq(phase=Phase.PREFILLING, admitted=0), second_long], solo_lanes=1, lanes=WITH_SOLO)
    assert step.admit == []
    # without a limit (the CPU: no solo lane, longer sequences run in their own cache) it starts
    assert plan([running, second_long, short], capacity=4).admit == [second_long, short]


def test_two_long_sequences_arriving_together_take_turns_for_one_solo_lane():
    first, second, short = long_seq(), long_seq(), seq()
    assert plan([first, second, short], solo_lanes=1, lanes=WITH_SOLO).admit == [first, short]


def test_the_oldest_admitted_sequence_prefills_one_piece():
    older = seq(prompt=20, phase=Phase.PREFILLING, admitted=5)
    older.prefilled = 16
    newer = seq(prompt=20, phase=Phase.PREFILLING, admitted=7)
    # arrival order puts the newer one first (a long one admitted after later arrivals passed it)
    step = plan([newer, older, seq()], prefill_tokens=8)
    piece = step.prefill
    assert piece.sequence is older and (piece.start, piece.end) == (16, 20) and piece.last
    assert step.placement is Phase.SLOT_LANE


def test_a_newly_admitted_sequence_prefills_when_none_was_prefilling_and_its_first_piece_is_not_its_last():
    waiting = seq(prompt=20)
    step = plan([seq(phase=Phase.SLOT_LANE), waiting], prefill_tokens=8)
    assert step.prefill.sequence is waiting and (step.prefill.start, step.prefill.end) == (0, 8)
    assert not step.prefill.last and step.placement is None


@pytest.mark.parametrize(
    ("bound", "lanes", "where"),
    [
        (50, WITH_SOLO, Phase.SLOT_LANE),  # fits a slot
        (SLOT - 10 - 1, LANES, Phase.SLOT_LANE),  # exactly a slot's length
        (SLOT - 10, WITH_SOLO, Phase.SOLO_LANE),  # one position more: the solo lane
        (400, LANES, Phase.OVERFLOW),  # no solo lane (the CPU)
        (SOLO, WITH_SOLO, Phase.OVERFLOW),  # longer than the solo lane too
    ],
)
def test_a_prefilled_sequence_goes_to_the_first_lane_it_fits(bound, lanes, where):
    prefilling = seq(prompt=10, bound=bound, phase=Phase.PREFILLING, admitted=0)
    step = plan([prefilling], lanes=lanes, prefill_tokens=64)
    assert step.prefill.last and step.placement is where


def test_each_lane_steps_its_own_sequences_and_the_overflow_steps_alone():
    slot = [seq(phase=Phase.SLOT_LANE) for _ in range(3)]
    solo = long_seq(phase=Phase.SOLO_LANE)
    overflow = seq(bound=5000, phase=Phase.OVERFLOW)
    step = plan([slot[0], solo, slot[1], overflow, slot[2], seq(phase=Phase.FINISHED)], lanes=WITH_SOLO)
    assert step.decode == {Phase.SLOT_LANE: slot, Phase.SOLO_LANE: [solo], Phase.OVERFLOW: [overflow]}
    assert plan([seq()], lanes=WITH_SOLO).decode == {}  # nothing decodes: no lane steps


@pytest.mark.parametrize(
    ("capacity", "stepping", "lowered"),
    [(16, 16, 8), (16, 5, 2), (4, 16, 2), (2, 1, 1), (1, 1, 1), (8, 3, 1)],
)
def test_out_of_memory_leaves_half_the_sequences_of_that_step(capacity, stepping, lowered):
    assert lowered_capacity(capacity, stepping) == lowered
