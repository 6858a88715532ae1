"""Whole jobs through ``Worker.run`` on the tiny real model (CPU), with real S3 (moto).

Random weights make noise, not speech: these tests assert shapes, durations,
formats, determinism and behaviour.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import soundfile as sf

from higgs_worker.contract.errors import CODES
from higgs_worker.contract.output import Timings
from tests.conftest import wav_bytes

SHORT = "Hello there."


def decode_output(out: dict) -> tuple[np.ndarray, int]:
    data = base64.b64decode(out["audio_base64"])
    if out["format"] == "pcm":
        return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32767, out["sample_rate"]
    audio, rate = sf.read(io.BytesIO(data))
    return audio, rate


def test_smart_voice_returns_the_contract_output(make_worker):
    out = make_worker().run({"id": "job-1", "input": {"text": SHORT, "seed": 7}}).as_output()
    assert "error" not in out, out
    for key in (
        "audio_base64",
        "format",
        "content_type",
        "sample_rate",
        "duration_s",
        "num_chunks",
        "seed",
        "model",
        "timings",
        "rtf",
    ):
        assert key in out
    assert out["format"] == "wav" and out["content_type"] == "audio/wav"
    assert out["seed"] == 7 and out["num_chunks"] == 1
    assert set(out["timings"]) == set(Timings.model_fields)
    audio, rate = decode_output(out)
    assert rate == 24000
    assert out["duration_s"] == pytest.approx(len(audio) / rate, abs=1e-3)
    assert out["duration_s"] > 0
    # 960 samples per frame at 24 kHz: whole frames only
    assert len(audio) % 960 == 0
    assert out["rtf"] == pytest.approx(out["timings"]["generate_s"] / out["duration_s"], rel=0.01)


@pytest.mark.parametrize(
    "fmt,content_type",
    [
        ("wav", "audio/wav"),
        ("mp3", "audio/mpeg"),
        ("flac", "audio/flac"),
        ("ogg", "audio/ogg"),
        ("opus", "audio/ogg"),
        ("pcm", "audio/pcm"),
    ],
)
def test_every_output_format_decodes_back(make_worker, fmt, content_type):
    out = make_worker().run({"id": f"f-{fmt}", "input": {"text": SHORT, "seed": 3, "output_format": fmt}}).as_output()
    assert "error" not in out, out
    assert out["format"] == fmt and out["content_type"] == content_type
    audio, rate = decode_output(out)
    assert rate == 24000
    # lossy codecs may pad a little; the duration reported is the encoded signal's
    assert len(audio) / rate == pytest.approx(out["duration_s"], abs=0.08)


def test_response_format_alias_and_resampling(make_worker):
    out = (
        make_worker()
        .run({"input": {"transcript": SHORT, "response_format": "FLAC", "sample_rate": 16000, "seed": 1}})
        .as_output()
    )
    assert out["format"] == "flac" and out["sample_rate"] == 16000
    audio, rate = decode_output(out)
    assert rate == 16000 and len(audio) / rate == pytest.approx(out["duration_s"], abs=1e-3)


def test_same_seed_same_bytes_and_different_seed_differs(make_worker):
    worker = make_worker()
    job = {"input": {"text": SHORT, "seed": 1234}}
    first, second = worker.run(dict(job)).as_output(), worker.run(dict(job)).as_output()
    other = worker.run({"input": {"text": SHORT, "seed": 99}}).as_output()
    assert first["audio_base64"] == second["audio_base64"]
    assert first["audio_base64"] != other["audio_base64"]


def test_seed_is_fresh_and_returned_when_not_given(make_worker):
    worker = make_worker()
    a = worker.run({"input": {"text": SHORT}}).as_output()
    b = worker.run({"input": {"text": SHORT}}).as_output()
    assert isinstance(a["seed"], int) and a["seed"] != b["seed"]
    replay = worker.run({"input": {"text": SHORT, "seed": a["seed"]}}).as_output()
    assert replay["audio_base64"] == a["audio_base64"]


def test_greedy_and_sampling_parameters_are_used(make_worker):
    worker = make_worker()
    greedy1 = worker.run({"input": {"text": SHORT, "temperature": 0, "ras_win_len": 0, "seed": 1}}).as_output()
    greedy2 = worker.run({"input": {"text": SHORT, "temperature": 0, "ras_win_len": 0, "seed": 2}}).as_output()
    assert greedy1["audio_base64"] == greedy2["audio_base64"]  # greedy ignores the seed
    sampled = worker.run(
        {"input": {"text": SHORT, "temperature": 1.3, "top_p": 0.5, "top_k": 5, "seed": 1}}
    ).as_output()
    assert sampled["audio_base64"] != greedy1["audio_base64"]


def test_max_new_tokens_bounds_the_audio(make_worker):
    out = make_worker().run({"input": {"text": SHORT, "max_new_tokens": 20, "seed": 5}}).as_output()
    # 20 steps = at most 20 - 8 delay/bos steps of 40 ms each
    assert 0 <= out["duration_s"] <= (20 - 8) * 0.04 + 1e-6


def test_voice_from_library_and_alias(make_worker):
    worker = make_worker()
    out = worker.run({"input": {"text": SHORT, "voice": "belinda", "seed": 2}}).as_output()
    assert "error" not in out, out
    alias = worker.run({"input": {"text": SHORT, "ref_audio": "belinda", "seed": 2}}).as_output()
    assert alias["audio_base64"] == out["audio_base64"]
    smart = worker.run({"input": {"text": SHORT, "seed": 2}}).as_output()
    assert smart["audio_base64"] != out["audio_base64"]  # the voice is in the prompt


def test_private_url_refused_by_default(make_worker, file_server):
    folder, url = file_server
    (folder / "ref.wav").write_bytes(wav_bytes(1.0))
    out = make_worker().run({"input": {"text": SHORT, "reference_audio": {"url": f"{url}/ref.wav"}}}).as_output()
    assert out["error"].startswith("reference_audio: ") and "ALLOW_PRIVATE_URLS" in out["error"]


def test_dialogue_with_per_speaker_voices(make_worker):
    text = "[SPEAKER0] I can't believe you did that. [SPEAKER1] Oh, come on! [SPEAKER0] Really."
    out = (
        make_worker()
        .run(
            {
                "input": {
                    "text": text,
                    "seed": 4,
                    "speakers": {"SPEAKER0": {"voice": "belinda"}, "SPEAKER1": {"description": "masculine, deep"}},
                }
            }
        )
        .as_output()
    )
    assert "error" not in out, out
    assert out["num_chunks"] == 3  # auto chunking: one generation per speaker turn
    assert out["duration_s"] > 0


def test_long_text_is_chunked_and_reports_chunks(make_worker):
    text = " ".join(f"Sentence number {i} is here." for i in range(12))
    progress = []
    out = (
        make_worker()
        .run(
            {"input": {"text": text, "chunk_max_words": 10, "seed": 8, "max_new_tokens": 30}},
            progress=lambda i, n: progress.append((i, n)),
        )
        .as_output()
    )
    assert "error" not in out, out
    assert out["num_chunks"] == len(progress) == 6
    assert progress[-1] == (6, 6)
    none = (
        make_worker()
        .run({"input": {"text": text, "chunk_method": "none", "seed": 8, "max_new_tokens": 30}})
        .as_output()
    )
    assert none["num_chunks"] == 1


def test_invalid_input_is_reported_and_worker_keeps_serving(make_worker):
    worker = make_worker()
    bad = worker.run({"input": {"text": SHORT, "colour": "blue"}}).as_output()
    assert bad["error"].startswith("invalid_input: unknown field(s) 'colour'")
    assert "known fields:" in bad["error"]
    good = worker.run({"input": {"text": SHORT, "seed": 1}}).as_output()
    assert "audio_base64" in good


def test_out_of_memory_is_reported_and_next_job_succeeds(make_worker, monkeypatch):
    """No GPU here: torch's OutOfMemoryError is raised where generation would meet it."""
    import torch

    worker = make_worker()
    original = worker.engine.generate_rows
    calls = {"n": 0}

    def oom_once(*args, **kwargs):  # the first job runs out of memory at its fourth decode step
        calls["n"] += 1
        for index, row in enumerate(original(*args, **kwargs)):
            if calls["n"] == 1 and index == 3:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            yield row

    monkeypatch.setattr(worker.engine, "generate_rows", oom_once)
    out = worker.run({"input": {"text": SHORT, "seed": 1}}).as_output()
    assert out["error"].startswith("out_of_memory: ")
    assert "audio_base64" in worker.run({"input": {"text": SHORT, "seed": 1}}).as_output()


def test_unexpected_failure_has_no_traceback(make_worker, monkeypatch):
    worker = make_worker()
    monkeypatch.setattr(worker.engine, "decode_codes", lambda codes: (_ for _ in ()).throw(RuntimeError("boom")))
    out = worker.run({"input": {"text": SHORT}}).as_output()
    assert out["error"].startswith("generation_failed: ")
    assert "Traceback" not in out["error"] and "boom" not in out["error"]


def test_cancel_stops_generation(make_worker):
    worker = make_worker()
    steps = {"n": 0}

    def stop_after_five():
        steps["n"] += 1
        return steps["n"] > 5

    out = worker.run({"input": {"text": "word " * 100, "seed": 1}}, should_stop=stop_after_five).as_output()
    assert out["error"].startswith("generation_failed: ") and "cancelled" in out["error"]
    assert steps["n"] == 6  # stopped at the next step, not at the end of the text
    assert "audio_base64" in worker.run({"input": {"text": SHORT, "seed": 1}}).as_output()


def test_error_codes_are_the_contract_ones():
    assert CODES == {
        "invalid_input",
        "model_unavailable",
        "reference_audio",
        "generation_failed",
        "out_of_memory",
        "storage",
    }
