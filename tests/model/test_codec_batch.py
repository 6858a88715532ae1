"""Windows due at once are decoded in one audio-tokenizer call (higgs_worker/model/codec_batch.py),
with the tiny model's real audio tokenizer: equal-length windows share a call, within the frame
budget, other lengths wait for their own; each window gets its own audio; an error fails only the
windows of its call; a window alone is decoded at once."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from higgs_worker.model.codec_batch import CodecBatcher


def windows(count: int, frames: int, seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 1024, (8, frames), generator=generator) for _ in range(count)]


class Slow:
    """The engine's batch decode, recording each call's batch size; the first call waits until
    released, so the others queue up behind it (as behind a decode on the GPU)."""

    def __init__(self, engine, fail_at: int | None = None):
        self.engine = engine
        self.sizes: list[tuple[int, int]] = []
        self.release = threading.Event()
        self.started = threading.Event()
        self.fail_at = fail_at

    def __call__(self, codes: torch.Tensor) -> np.ndarray:
        self.sizes.append((codes.shape[0], codes.shape[2]))
        if len(self.sizes) == 1:
            self.started.set()
            assert self.release.wait(30)
        if self.fail_at == len(self.sizes):
            raise RuntimeError("injected decode failure")
        return self.engine._decode_batch(codes)


def decode_all(batcher: CodecBatcher, slow: Slow, first: torch.Tensor, others: list[torch.Tensor]) -> dict:
    results: dict[int, object] = {}

    def job(index: int, codes: torch.Tensor) -> None:
        try:
            results[index] = batcher.decode(codes)
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=job, args=(0, first))]
    threads[0].start()
    assert slow.started.wait(30)
    threads += [threading.Thread(target=job, args=(i + 1, codes)) for i, codes in enumerate(others)]
    for thread in threads[1:]:
        thread.start()
    deadline = time.monotonic() + 30
    while len(batcher._pending) < len(others) and time.monotonic() < deadline:
        time.sleep(0.001)
    slow.release.set()
    for thread in threads:
        thread.join()
    return results


def test_equal_windows_that_wait_together_share_one_call_and_each_gets_its_audio(engine):
    slow = Slow(engine)
    batcher = CodecBatcher(slow, max_frames=405)
    first, *others = windows(6, 55)
    results = decode_all(batcher, slow, first, others)
    assert slow.sizes == [(1, 55), (5, 55)]  # the first alone, the five that waited in one call
    assert batcher.calls == 2 and batcher.windows == 6
    for index, codes in enumerate([first, *others]):
        alone = engine._decode_batch(codes[None])[0]
        np.testing.assert_allclose(results[index], alone, atol=1e-6)


def test_other_lengths_get_their_own_call_and_the_frame_budget_holds(engine):
    slow = Slow(engine)
    batcher = CodecBatcher(slow, max_frames=3 * 55)
    first, *others = windows(5, 55)
    odd = windows(1, 13, seed=1)[0]
    results = decode_all(batcher, slow, first, [*others, odd])
    assert slow.sizes[0] == (1, 55)
    assert sorted(slow.sizes[1:]) == [(1, 13), (1, 55), (3, 55)]  # 4 waiting windows of 55: 3 + 1
    assert all(isinstance(audio, np.ndarray) for audio in results.values())
    assert len(results[5]) == 13 * engine.samples_per_frame


def test_a_failed_call_fails_its_windows_only_and_the_codec_keeps_serving(engine):
    slow = Slow(engine, fail_at=2)
    batcher = CodecBatcher(slow, max_frames=405)
    first, *others = windows(4, 55)
    results = decode_all(batcher, slow, first, others)
    assert isinstance(results[0], np.ndarray)
    assert all(isinstance(results[i], RuntimeError) for i in (1, 2, 3))
    again = batcher.decode(first)  # nothing left busy or waiting
    np.testing.assert_allclose(again, results[0], atol=1e-6)
    assert not batcher._busy and not batcher._pending


def test_the_engine_decodes_streams_of_concurrent_jobs_through_it(engine):
    assert engine._decode_piece.__func__ is type(engine)._decode_piece
    codes = windows(1, 30)[0]
    before = engine.codec.calls
    audio = engine.decode_codes(codes)
    assert engine.codec.calls == before + 1 and len(audio) == 30 * engine.samples_per_frame


@pytest.mark.parametrize("count", [1, 8])
def test_many_threads_all_get_an_answer(engine, count):
    batcher = CodecBatcher(engine._decode_batch, max_frames=405)
    got: dict[int, np.ndarray] = {}
    codes = windows(count, 20, seed=3)
    threads = [threading.Thread(target=lambda i=i: got.__setitem__(i, batcher.decode(codes[i]))) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(got) == count and batcher.windows == count and batcher.calls <= count
