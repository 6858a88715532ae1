"""Incremental decoding for /stream: joined pieces vs the one-piece decode, and timing."""

from __future__ import annotations

import base64
import io

import numpy as np
import soundfile as sf
import torch

from higgs_worker.audio import codecs as audio_codec
from higgs_worker.model.prompt import patterned_rows


def stream_all(engine, codes, **kwargs):
    decoder = engine.streaming_decoder()
    for key, value in kwargs.items():
        setattr(decoder, key, value)
    pieces = []
    for row in patterned_rows(codes, engine.processor):
        pieces += list(decoder.push(row))
    pieces += list(decoder.finish())
    return pieces


def test_joined_pieces_equal_the_one_piece_decode_within_tolerance(engine):
    codes = torch.randint(0, 1024, (8, 150), generator=torch.Generator().manual_seed(0))
    whole = engine.decode_codes(codes)
    pieces = stream_all(engine, codes)
    joined = np.concatenate(pieces)
    assert len(joined) == len(whole) == 150 * 960
    error = np.abs(joined - whole).max() / np.abs(whole).max()
    print(f"stream vs one-piece: {len(pieces)} pieces, max error {error:.2e} of full scale")
    assert error < 5e-3
    # without left context the seams are audibly wrong: the tolerance above is not trivially met
    rough = np.concatenate(stream_all(engine, codes, left_context=0, hold=0, fade=0))
    assert np.abs(rough - whole).max() / np.abs(whole).max() > 10 * error


def test_first_piece_is_small_and_later_ones_larger(engine):
    codes = torch.randint(0, 1024, (8, 120), generator=torch.Generator().manual_seed(1))
    sizes = [len(p) // 960 for p in stream_all(engine, codes)]
    assert sizes[0] == 10
    assert all(size >= 40 for size in sizes[1:-1])
    assert sum(sizes) == 120


def test_a_streamed_job_emits_audio_before_generation_ends(make_worker, monkeypatch):
    worker = make_worker()
    rows_seen = {"n": 0}
    original = worker.engine.generate_rows

    def counting_rows(*args, **kwargs):
        for row in original(*args, **kwargs):
            rows_seen["n"] += 1
            yield row

    monkeypatch.setattr(worker.engine, "generate_rows", counting_rows)
    emitted = []
    out = worker.run(
        {
            "input": {
                "text": "Streaming is fun to test.",
                "stream": True,
                "seed": 2,
                "max_new_tokens": 100,
                "delivery": "base64",
                "output_format": "pcm",
            }
        },
        emit=lambda item: emitted.append((rows_seen["n"], item)),
    ).as_output()
    assert "error" not in out, out
    assert len(emitted) > 1
    first_at = emitted[0][0]
    assert first_at < rows_seen["n"]  # the first audio left before the last row was generated
    assert first_at <= 1 + 10 + 7 + 3  # bos row + 10 frames + delay + held frames
    # each item is a complete Ogg Opus file (higgs_worker/audio/stream_items.py): lossy, the same length
    joined = np.concatenate(
        [sf.read(io.BytesIO(base64.b64decode(i["audio_base64"])), dtype="float32")[0] for _, i in emitted]
    )
    final = np.frombuffer(base64.b64decode(out["audio_base64"]), "<i2").astype(np.float32) / 32767
    assert all(i["format"] == "opus" and i["sample_rate"] == 24000 for _, i in emitted)
    assert len(joined) == len(final) and np.corrcoef(joined, final)[0, 1] > 0.5


def test_streamed_bytes_count_toward_the_inline_limit(make_worker, s3_env):
    """The aggregated result repeats every stream item: a streamed job whose chunks plus
    inline audio exceed INLINE_MAX_BYTES goes to S3, or fails clearly without S3."""
    job = {
        "id": "streamed",
        "input": {
            "text": "Streaming is fun to test.",
            "stream": True,
            "seed": 2,
            "max_new_tokens": 100,
            "output_format": "opus",
            "delivery": "base64",
        },
    }
    items = []
    full = make_worker().run(job, emit=items.append).as_output()
    streamed = sum(len(i["audio_base64"]) for i in items)
    assert len(full["audio_base64"]) > 10  # with the default limit everything fits inline
    tight = {"INLINE_MAX_BYTES": str(streamed + 10)}  # room for the chunks, not for the audio again
    out = make_worker(tight).run(job, emit=lambda item: None).as_output()
    assert list(out) == ["error"] and out["error"].startswith("storage: ") and "streamed chunks" in out["error"]
    moved = make_worker({**s3_env, **tight}).run(job, emit=lambda item: None).as_output()
    assert moved["s3_uri"].endswith("/streamed.opus") and "audio_base64" not in moved


def test_on_audio_gets_the_pieces_of_a_job_that_does_not_stream_to_runpod(make_worker):
    """A door that streams itself (HTTP) listens with ``on_audio``: it gets float pieces
    that join to the final audio, and no RunPod stream item is produced."""
    pieces, items = [], []
    out = (
        make_worker()
        .run(
            {
                "input": {
                    "text": "Streaming is fun to test.",
                    "seed": 2,
                    "max_new_tokens": 100,
                    "delivery": "base64",
                    "output_format": "pcm",
                }
            },
            emit=items.append,
            on_audio=pieces.append,
        )
        .as_output()
    )
    assert "error" not in out, out
    assert items == [] and len(pieces) > 1
    joined = audio_codec.to_pcm16(np.concatenate(pieces))
    final = np.frombuffer(base64.b64decode(out["audio_base64"]), "<i2")
    assert len(joined) // 2 == len(final)


def test_a_long_chunk_is_decoded_in_bounded_windows(engine, monkeypatch):
    """decode_codes never hands the audio tokenizer more than a window (+ its context) at once:
    its workspace is what the GPU memory plan reserves, whatever the chunk's length."""
    from higgs_worker.model import memory_plan

    codes = torch.randint(0, 1024, (8, 150), generator=torch.Generator().manual_seed(2))
    whole = engine._decode_piece(codes)
    sizes: list[int] = []
    real = engine._decode_piece

    def counting(piece):
        sizes.append(piece.shape[1])
        return real(piece)

    monkeypatch.setattr(memory_plan, "CODEC_WINDOW_FRAMES", 40)
    monkeypatch.setattr(engine, "_decode_piece", counting)
    windowed = engine.decode_codes(codes)
    assert len(windowed) == len(whole) == 150 * 960
    assert len(sizes) >= 4 and max(sizes) <= 40 + memory_plan.CODEC_CONTEXT_FRAMES
    error = np.abs(windowed - whole).max() / np.abs(whole).max()
    assert error < 5e-3  # the stream's tolerance (test above)
    sizes.clear()
    monkeypatch.setattr(memory_plan, "CODEC_WINDOW_FRAMES", 375)
    assert np.array_equal(engine.decode_codes(codes), whole) and sizes == [150]  # a chunk that fits: one call
