"""The engine's decode loop against transformers' reference ``generate()`` on the tiny model."""

from __future__ import annotations

import pytest
import torch

from higgs_worker.contract.errors import Cancelled
from higgs_worker.devtools.reference import generation_config
from higgs_worker.model.decode_loop import DecodeLoop, LoopSettings
from higgs_worker.model.engine import Sampling
from higgs_worker.model.prompt import SYSTEM_SINGLE, AudioClip, Prompt, Turn

SMART = Prompt(SYSTEM_SINGLE, ["Audio is recorded from a quiet room."], [Turn("user", "Hello there, how are you?")])
CLONE = Prompt(
    SYSTEM_SINGLE,
    ["Audio is recorded from a quiet room."],
    [
        Turn("user", "Reference words."),
        Turn("assistant", audio=AudioClip(torch.randint(0, 1024, (8, 20), generator=torch.Generator().manual_seed(1)))),
        Turn("user", "Hi."),
    ],
)


def reference_rows(engine, prompt, sampling, seed):
    batch = engine.batch_for(prompt)
    skip = batch["audio_input_ids"].shape[1] if "audio_input_ids" in batch else 0
    torch.manual_seed(seed)
    return engine.model.generate(**batch, generation_config=generation_config(engine, sampling))[0, skip:]


def loop_rows(engine, prompt, sampling, seed, settings=None):
    torch.manual_seed(seed)
    return torch.stack(list(DecodeLoop(engine.model, settings).rows(engine.batch_for(prompt), sampling)))


@pytest.mark.parametrize("prompt", [SMART, CLONE], ids=["smart-voice", "cloning"])
@pytest.mark.parametrize(
    "sampling",
    [
        Sampling(temperature=0, ras_win_len=0, max_new_tokens=80),
        Sampling(temperature=0, max_new_tokens=80),
        Sampling(max_new_tokens=80),
        Sampling(temperature=0.7, top_k=20, top_p=0.8, max_new_tokens=80),
    ],
    ids=["greedy", "greedy-ras", "sampled", "sampled-warped"],
)
@pytest.mark.parametrize("static", [False, True], ids=["dynamic-cache", "static-cache"])
def test_codes_equal_the_reference_generate(engine, prompt, sampling, static):
    expected = reference_rows(engine, prompt, sampling, seed=5)
    got = loop_rows(engine, prompt, sampling, seed=5, settings=LoopSettings(static_cache=static))
    assert got.shape == expected.shape
    assert torch.equal(got, expected)


def test_the_single_step_compiles_without_graph_breaks(engine):
    """fullgraph=True fails on any graph break: on CUDA the whole step is one graph."""
    sampling = Sampling(temperature=0, max_new_tokens=30)
    expected = loop_rows(engine, SMART, sampling, seed=1, settings=LoopSettings(static_cache=True))
    compiled = LoopSettings(static_cache=True, compile=True, compile_backend="eager", fullgraph=True)
    loop = DecodeLoop(engine.model, compiled)
    for _ in range(2):  # the second run reuses the compiled graph and the same static cache
        torch.manual_seed(1)
        assert torch.equal(torch.stack(list(loop.rows(engine.batch_for(SMART), sampling))), expected)


def test_a_failing_compiler_falls_back_to_the_plain_step(engine, caplog):
    def broken_backend(graph, example_inputs):
        raise RuntimeError("no compiler on this host")

    sampling = Sampling(temperature=0, max_new_tokens=30)
    expected = loop_rows(engine, SMART, sampling, seed=1, settings=LoopSettings(static_cache=True))
    settings = LoopSettings(static_cache=True, compile=True, compile_backend=broken_backend)
    got = loop_rows(engine, SMART, sampling, seed=1, settings=settings)
    assert torch.equal(got, expected)
    assert "using the plain step" in caplog.text


def test_stop_is_checked_every_step(engine):
    asked = {"n": 0}

    def stop():
        asked["n"] += 1
        return asked["n"] > 3

    rows = []
    with pytest.raises(Cancelled):
        for row in DecodeLoop(engine.model).rows(engine.batch_for(SMART), Sampling(max_new_tokens=500), stop):
            rows.append(row)
    assert len(rows) == 3


def test_the_stream_ends_with_an_all_eos_row_or_the_step_limit(engine):
    rows = loop_rows(engine, SMART, Sampling(max_new_tokens=400), seed=3)
    ended = bool((rows[-1] == engine.eos_id).all())
    assert ended or len(rows) == 400
    assert bool((rows[0] == engine.bos_id).all())  # the first row opens the stream in every codebook


@pytest.mark.parametrize("prompt", [SMART, CLONE], ids=["smart-voice", "cloning"])
def test_a_sequence_generator_draws_what_the_seeded_default_generator_draws(engine, prompt):
    """Each sequence owns a torch.Generator: seeded with s, it gives generate()'s codes after
    torch.manual_seed(s), whatever the default generator has drawn meanwhile."""
    sampling = Sampling(max_new_tokens=80)
    expected = reference_rows(engine, prompt, sampling, seed=9)
    torch.manual_seed(123)  # the default generator is elsewhere: it must not matter
    generator = torch.Generator().manual_seed(9)
    got = torch.stack(list(DecodeLoop(engine.model).rows(engine.batch_for(prompt), sampling, generator=generator)))
    assert torch.equal(got, expected)
