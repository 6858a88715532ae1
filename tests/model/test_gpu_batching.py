"""On CUDA only (skipped without it): the compiled static path and the batched scheduler
path give generate()'s codes in bf16. scripts/gpu-check.sh runs these at full size."""

from __future__ import annotations

import threading

import pytest
import torch

from higgs_worker.model.decode_loop import DecodeLoop, LoopSettings
from higgs_worker.model.engine import Sampling
from higgs_worker.model.prompt import SYSTEM_SINGLE, Prompt, Turn

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (run scripts/gpu-check.sh on a GPU machine)"),
]

GREEDY = Sampling(temperature=0, max_new_tokens=60)


def prompt(i: int) -> Prompt:
    return Prompt(SYSTEM_SINGLE, ["Audio is recorded from a quiet room."], [Turn("user", f"Hello number {i}.")])


@pytest.fixture(scope="module")
def cuda_engine():
    from higgs_worker.devtools.bench import full_size_engine

    return full_size_engine("cuda", max_concurrency=8)


def reference(engine, p, sampling):
    batch = engine.batch_for(p)
    skip = batch["audio_input_ids"].shape[1] if "audio_input_ids" in batch else 0
    torch.manual_seed(0)
    return engine.model.generate(**batch, generation_config=engine._generation_config(sampling))[0, skip:].cpu()


def test_compiled_static_path_equals_generate(cuda_engine):
    loop = DecodeLoop(cuda_engine.model, LoopSettings(static_cache=True, compile=True))
    torch.manual_seed(0)
    got = torch.stack(list(loop.rows(cuda_engine.batch_for(prompt(0)), GREEDY)))
    assert torch.equal(got, reference(cuda_engine, prompt(0), GREEDY))


def test_batched_compiled_path_equals_generate(cuda_engine):
    cuda_engine.warm_up()
    expected = {i: reference(cuda_engine, prompt(i), GREEDY) for i in range(4)}
    got: dict[int, torch.Tensor] = {}

    def job(i: int) -> None:
        got[i] = torch.stack(list(cuda_engine.generate_rows(prompt(i), GREEDY)))

    threads = [threading.Thread(target=job, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i in range(4):
        assert torch.equal(got[i], expected[i]), i
