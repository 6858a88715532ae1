"""How many CUDA graphs a worker records at start (issue 25 finding 7): the one-row solo lane
rounds its attended length to coarser buckets (``ONE_ROW_LENGTH_STEP``), and the warm-up logs
the count before it records them. Counted on the CPU from the real Scheduler's lanes (CUDA
graphs themselves need a GPU)."""

from __future__ import annotations

import logging

import torch

from higgs_worker.model.decode_loop import LoopSettings
from higgs_worker.model.engine import Engine
from higgs_worker.model.lane import LENGTH_STEP, ONE_ROW_LENGTH_STEP
from higgs_worker.model.scheduler import Scheduler


def loop(engine, compile_backend="eager"):
    built = Engine(
        engine.model,
        engine.audio_tokenizer,
        engine.tokenizer,
        engine.feature_extractor,
        "cpu",
        LoopSettings(compile=True, compile_backend=compile_backend),
        max_concurrency=2,
    )
    return built.loop


def test_sixteen_slots_of_8192_and_a_solo_lane_of_16384_record_88_graphs_not_112(engine):
    scheduler = Scheduler(loop(engine), slots=16, slot_len=8192, compile_step=True, solo_lanes=1, solo_len=16384)
    lanes = scheduler.graphs["lanes"]
    assert lanes["slot lane"]["batch_buckets"] == [1, 2, 4, 8, 16]
    assert len(lanes["slot lane"]["length_buckets"]) == 8192 // LENGTH_STEP == 16
    solo = lanes["solo lane"]["length_buckets"]
    assert solo == list(range(ONE_ROW_LENGTH_STEP, 16384 + 1, ONE_ROW_LENGTH_STEP)) and len(solo) == 8  # was 32
    assert scheduler.graphs["cuda_graphs"] == 5 * 16 + 8  # 112 with 512-position solo buckets
    assert all(length % 8 == 0 for lane in lanes.values() for length in lane["length_buckets"])


def test_the_warm_up_logs_the_graph_count_before_recording(engine, caplog):
    scheduler = Scheduler(loop(engine), slots=2, slot_len=1024, compile_step=True, solo_lanes=1, solo_len=4096)
    with caplog.at_level(logging.INFO, logger="higgs_worker.model.scheduler"):
        scheduler.warm_up()
    expected = 2 * 2 + 1 * 2  # slot lane: batches 1, 2 x lengths 512, 1024; solo lane: 1 x 2048, 4096
    assert scheduler.graphs["cuda_graphs"] == expected
    lines = [r.getMessage() for r in caplog.records if "CUDA graphs" in r.getMessage()]
    assert lines and lines[0].startswith(f"decode step: recording up to {expected} CUDA graphs"), lines
    assert "solo lane 1 batch x 2 length buckets" in lines[0]
    assert torch._inductor.config.triton.cudagraph_dynamic_shape_warn_limit >= 4
