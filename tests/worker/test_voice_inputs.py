"""A job's voices (``higgs_worker/voice_inputs.py``) on the tiny real model: library voices
and reference audio checked when the job arrives (no decoding, no download), fetched and decoded
once admitted, held to the job's totals (MAX_JOB_REFERENCE_BYTES, MAX_JOB_REFERENCE_SECONDS) by
their headers first and by their real bytes and seconds later. Real HTTP (a file server on
127.0.0.1) and moto's S3 server for the references that are fetched."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import soundfile as sf

from higgs_worker.audio.codecs import AudioDecodeError
from higgs_worker.contract.errors import AUDIO_TOO_LONG, INVALID_INPUT, NOT_FOUND, WorkerError
from higgs_worker.io import reference_audio
from higgs_worker.voice_inputs import MAX_LISTED
from tests.conftest import BUCKET, wav_bytes

SHORT = "Hello there."


def flac_b64(seconds: float) -> str:
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(int(seconds * 24000), dtype=np.float32), 24000, format="FLAC")
    return base64.b64encode(buffer.getvalue()).decode()


def dialogue(*references: dict) -> dict:
    """A job with one speaker for each reference."""
    speakers = {f"SPEAKER{i}": {"reference_audio": ref} for i, ref in enumerate(references)}
    return {"text": " ".join(f"[SPEAKER{i}] word" for i in range(len(references))), "seed": 3, "speakers": speakers}


def test_unknown_voice_lists_the_library(make_worker):
    out = make_worker().run({"input": {"text": SHORT, "voice": "nobody"}}).as_output()
    assert out["error"].startswith("invalid_input: unknown voice 'nobody'")
    assert "belinda" in out["error"] and "broom" in out["error"]


def test_cloning_from_base64_url_and_s3_key_agree(make_worker, file_server, s3_env, s3_client):
    data = wav_bytes(1.2, rate=44100, channels=2)  # stereo at another rate must work
    folder, url = file_server
    (folder / "ref.wav").write_bytes(data)
    s3_client.put_object(Bucket=BUCKET, Key="higgs-audio/references/ref.wav", Body=data)
    worker = make_worker({**s3_env, "ALLOW_PRIVATE_URLS": "true"})
    common = {"text": SHORT, "seed": 11, "delivery": "base64"}
    outs = [
        worker.run(
            {
                "input": {
                    **common,
                    "reference_audio": {"base64": base64.b64encode(data).decode(), "transcript": "A tone."},
                }
            }
        ).as_output(),
        worker.run(
            {"input": {**common, "reference_audio": {"url": f"{url}/ref.wav", "transcript": "A tone."}}}
        ).as_output(),
        worker.run(
            {
                "input": {
                    **common,
                    "reference_audio": {"s3_key": "higgs-audio/references/ref.wav", "transcript": "A tone."},
                }
            }
        ).as_output(),
    ]
    for out in outs:
        assert "error" not in out, out
    assert outs[0]["audio_base64"] == outs[1]["audio_base64"] == outs[2]["audio_base64"]


def test_audio_whose_header_is_no_audio_is_still_refused_before_admission(make_worker):
    from higgs_worker.contract.errors import WorkerError

    not_audio = base64.b64encode(b"valid base64, but not audio " * 40).decode()
    with pytest.raises(WorkerError, match="reference_audio: reference audio: not a readable audio file"):
        make_worker().prepare({"text": "x", "reference_audio": {"base64": not_audio}})


def test_a_jobs_reference_audio_is_capped_in_seconds_in_both_doors(make_worker):
    worker = make_worker({"MAX_JOB_REFERENCE_SECONDS": "5"})
    speakers = {f"SPEAKER{i}": {"reference_audio": {"base64": flac_b64(2.0)}} for i in range(3)}
    job = {"text": "[SPEAKER0] a [SPEAKER1] b [SPEAKER2] c", "speakers": speakers}
    output = worker.run({"id": "q", "input": job}).as_output()  # the queue door's path
    assert output["error"].startswith("invalid_input: the job's reference audio is 6.0 s in all; at most 5 s")
    assert "MAX_JOB_REFERENCE_SECONDS" in output["error"]
    two = {"text": "[SPEAKER0] a [SPEAKER1] b", "speakers": dict(list(speakers.items())[:2])}
    assert worker.prepare(two).voices.items()  # 4 s: within the total


def test_a_jobs_reference_audio_is_capped_in_bytes_before_decoding(make_worker):
    worker = make_worker({"MAX_JOB_REFERENCE_BYTES": "20KB"})
    noise = io.BytesIO()
    sf.write(noise, np.random.default_rng(1).uniform(-0.5, 0.5, 24000).astype(np.float32), 24000, format="WAV")
    clip = base64.b64encode(noise.getvalue()).decode()  # 48 KB of WAV
    output = worker.run({"id": "q", "input": {"text": "x", "reference_audio": {"base64": clip}}}).as_output()
    assert output["error"].startswith("invalid_input: the job's reference audio is")
    assert "MAX_JOB_REFERENCE_BYTES" in output["error"]


def test_a_voice_named_twice_in_one_job_is_read_once(make_worker):
    prepared = make_worker().prepare(
        {
            "text": "[SPEAKER0] a [SPEAKER1] b",
            "voice": "belinda",
            "speakers": {"SPEAKER0": {"voice": "belinda"}, "SPEAKER1": {"voice": "belinda"}},
        }
    )
    assert list(prepared.voices.by_name) == ["belinda"] and not prepared.voices.by_reference


def test_a_library_voice_is_encoded_once_across_jobs(make_worker):
    worker = make_worker()
    first = worker.run({"input": {"text": SHORT, "voice": "belinda", "seed": 2}}).as_output()
    assert len(worker.voice_clips) == 1
    second = worker.run({"input": {"text": SHORT, "voice": "belinda", "seed": 2}}).as_output()
    assert len(worker.voice_clips) == 1  # the same version: its cached clip, not a second entry
    assert first["audio_base64"] == second["audio_base64"]


def test_an_unknown_voice_in_a_large_library_lists_some_names_and_says_how_many_more(make_worker, voices_dir):
    for i in range(MAX_LISTED + 5):
        (voices_dir / f"extra{i:03d}.wav").write_bytes(wav_bytes(0.5))
    worker = make_worker()
    names = sorted(set(worker.voices.names()) | set(worker.presets))  # the library's and the presets'
    with pytest.raises(WorkerError) as refused:
        worker.prepare({"text": "x", "voice": "nobody"})
    assert refused.value.kind == NOT_FOUND and refused.value.parameter == "voice"
    message = refused.value.message
    assert f"and {len(names) - MAX_LISTED} more (GET /v1/audio/voices, or the list_voices action)" in message
    assert all(name in message for name in names[:MAX_LISTED]) and names[-1] not in message


def test_url_references_are_held_to_the_jobs_bytes_once_fetched(make_worker, file_server):
    """A URL's size is unknown when the job arrives: the total holds on the bytes fetched."""
    folder, url = file_server
    (folder / "a.wav").write_bytes(wav_bytes(1.0))  # 48 KB each
    (folder / "b.wav").write_bytes(wav_bytes(1.0))
    worker = make_worker({"ALLOW_PRIVATE_URLS": "true", "MAX_JOB_REFERENCE_BYTES": "80KB"})
    job = dialogue({"url": f"{url}/a.wav"}, {"url": f"{url}/b.wav"})
    assert worker.prepare(job).voices.by_reference  # nothing fetched yet: accepted
    out = worker.run({"input": job}).as_output()
    assert (
        out["error"].startswith("invalid_input: the job's reference audio is")
        and "MAX_JOB_REFERENCE_BYTES" in (out["error"])
    ), out


def reworded_decoder(monkeypatch) -> list[str]:
    """The real decoder, whose refusals come back in other words (none of the old ones: no
    "limit", no "long") with the same kind. Returns the original messages it replaced."""
    real = reference_audio.decode
    replaced: list[str] = []

    def decode(*args, **kwargs):
        try:
            return real(*args, **kwargs)
        except AudioDecodeError as exc:
            replaced.append(str(exc))
            raise AudioDecodeError("this clip cannot be used as it is", kind=exc.kind) from None

    monkeypatch.setattr(reference_audio, "decode", decode)
    return replaced


def test_the_jobs_seconds_left_refuse_a_fetched_clip_whatever_the_decoders_words(make_worker, file_server, monkeypatch):
    """Two fetched 2 s clips with MAX_JOB_REFERENCE_SECONDS=3: the second may decode only 1 s,
    and its refusal is the job's total (invalid_input), chosen by the refusal's kind
    (AUDIO_TOO_LONG); the decoder's message is reworded so that no word of it can choose."""
    folder, url = file_server
    for name in ("a", "b"):
        (folder / f"{name}.wav").write_bytes(wav_bytes(2.0))
    worker = make_worker({"ALLOW_PRIVATE_URLS": "true", "MAX_JOB_REFERENCE_SECONDS": "3", "MAX_NEW_TOKENS": "8"})
    replaced = reworded_decoder(monkeypatch)
    out = worker.run({"input": dialogue({"url": f"{url}/a.wav"}, {"url": f"{url}/b.wav"})}).as_output()
    assert replaced, "the decoder was not reached: the test proves nothing"
    assert out["error"].startswith(f"{INVALID_INPUT}: the job's reference audio is"), out
    assert "MAX_JOB_REFERENCE_SECONDS" in out["error"]


def test_a_clip_over_max_reference_seconds_names_the_setting_whatever_the_decoders_words(
    make_worker, file_server, monkeypatch
):
    """One fetched clip longer than MAX_REFERENCE_SECONDS: reference_audio, kind AUDIO_TOO_LONG,
    and the message names the setting, though the decoder's words no longer say "limit"."""
    folder, url = file_server
    (folder / "long.wav").write_bytes(wav_bytes(3.0))
    worker = make_worker({"ALLOW_PRIVATE_URLS": "true", "MAX_REFERENCE_SECONDS": "2"})
    replaced = reworded_decoder(monkeypatch)
    failure = worker.run({"input": {"text": SHORT, "reference_audio": {"url": f"{url}/long.wav"}}})
    assert replaced and "limit" in replaced[0]  # what the real decoder said
    assert failure.code == "reference_audio" and failure.kind == AUDIO_TOO_LONG, failure
    assert failure.message == "reference audio: this clip cannot be used as it is (MAX_REFERENCE_SECONDS)"
