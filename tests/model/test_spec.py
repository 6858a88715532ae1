"""The model specification (``model/spec.py``): the release's facts agree with the configs
of the (tiny, real-architecture) model the tests load, and every reader uses it."""

from __future__ import annotations

from types import SimpleNamespace

from higgs_worker.contract.schema import MODEL_SAMPLE_RATE
from higgs_worker.model import memory_plan, scheduler
from higgs_worker.model.spec import HIGGS_AUDIO_V2, SPEC


def test_the_loaded_configs_agree_with_the_release(engine):
    assert engine.spec.model_type == SPEC.model_type == "higgs_audio_v2"
    assert engine.spec.frames_per_second == SPEC.frames_per_second == 25
    assert engine.spec.sample_rate == SPEC.sample_rate == MODEL_SAMPLE_RATE == engine.sample_rate
    assert engine.spec.num_codebooks == SPEC.num_codebooks == engine.num_codebooks
    assert engine.samples_per_frame * engine.spec.frames_per_second == engine.spec.sample_rate


def test_values_the_configs_state_win_over_the_release_defaults():
    loaded = HIGGS_AUDIO_V2.from_configs(
        SimpleNamespace(num_codebooks=12), SimpleNamespace(frame_rate=50, sample_rate=44100)
    )
    assert (loaded.num_codebooks, loaded.frames_per_second, loaded.sample_rate) == (12, 50, 44100)
    kept = HIGGS_AUDIO_V2.from_configs(SimpleNamespace(), SimpleNamespace())
    assert kept == HIGGS_AUDIO_V2


def test_one_prefill_piece_for_the_scheduler_and_the_memory_plan():
    assert scheduler.PREFILL_CHUNK == memory_plan.PREFILL_TOKENS == SPEC.prefill_tokens
    assert memory_plan.DECODE_BYTES_PER_FRAME == SPEC.decode_bytes_per_frame
