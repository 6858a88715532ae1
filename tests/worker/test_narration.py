"""Segments, subtitles, loudness, pauses and trimming on whole jobs (tiny model, CPU, moto S3).

Random weights make a quiet, even noise: tests assert positions, lengths, levels and
file contents, not speech. Where a test needs what the tiny model cannot make
(silence around a chunk, a loud voice), it wraps the engine's real decoder and says so.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import requests
import soundfile as sf
import srt
import webvtt

from higgs_worker import narration
from higgs_worker.audio.loudness import CEILING_DBTP, integrated_lufs
from higgs_worker.audio.segments import output_position
from tests.conftest import BUCKET

DIALOGUE = "[SPEAKER0] I can't believe you did that. [SPEAKER1] Oh, come on! [SPEAKER0] Really."
LONG = " ".join(f"This is sentence number {n}." for n in ("one", "two", "three", "four"))
TEXTS = {  # (speaker, text) of each segment
    "single": [(None, "Hello there, how are you today?")],
    "dialogue": [("SPEAKER0", "I can't believe you did that."), ("SPEAKER1", "Oh, come on!"), ("SPEAKER0", "Really.")],
    "long": [(None, f"This is sentence number {n}.") for n in ("one", "two", "three", "four")],
}
JOBS = {
    "single": {"text": "Hello there, how are you today?"},
    "dialogue": {"text": DIALOGUE, "pause_s": 0.25},
    # five words a chunk: every chunk, and so every segment, is one sentence
    "long": {"text": LONG, "chunk_method": "word", "chunk_max_words": 5, "pause_s": 0.4},
}


def run_with_chunks(worker, monkeypatch, job_input: dict, emit=None) -> tuple[dict, list[int]]:
    """Run a job and record the length of every generated chunk (a pass-through spy on
    ``narration.render``, which receives the synthesis result)."""
    lengths: list[int] = []
    real = narration.render

    def spy(result, request):
        lengths[:] = [len(chunk.audio) for chunk in result.chunks]
        return real(result, request)

    monkeypatch.setattr(narration, "render", spy)
    out = worker.run(
        {"id": "narration", "input": {"seed": 5, "max_new_tokens": 20, **job_input}}, emit=emit
    ).as_output()
    assert "error" not in out, out
    return out, lengths


def decoded(out: dict) -> tuple[np.ndarray, int]:
    audio, rate = sf.read(io.BytesIO(base64.b64decode(out["audio_base64"])), dtype="float32")
    return audio, rate


@pytest.mark.parametrize("rate", [24000, 44100])
@pytest.mark.parametrize("kind", list(JOBS))
def test_segments_are_the_positions_of_the_chunks_in_the_file(make_worker, monkeypatch, kind, rate):
    job = {**JOBS[kind], "sample_rate": rate}
    out, lengths = run_with_chunks(make_worker(), monkeypatch, job)
    audio, file_rate = decoded(out)
    segments = out["segments"]
    assert file_rate == rate and len(segments) == len(lengths) == out["num_chunks"]
    assert [(s["speaker"], s["text"]) for s in segments] == TEXTS[kind]
    assert not any("approximate" in s for s in segments)
    # where each chunk starts and ends in the joined audio at 24 kHz, then in the file
    pause = round(job.get("pause_s", 0) * 24000)
    starts = [sum(lengths[:i]) + i * pause for i in range(len(lengths))]
    expected = [
        (output_position(s, 24000, rate), output_position(s + n, 24000, rate))
        for s, n in zip(starts, lengths, strict=True)
    ]
    assert [(s["start_sample"], s["end_sample"]) for s in segments] == expected
    assert segments[0]["start_s"] == 0 and segments[-1]["end_sample"] == len(audio)
    assert segments[-1]["end_s"] == pytest.approx(out["duration_s"], abs=1e-3)
    for seg in segments:
        assert seg["start_s"] == round(seg["start_sample"] / rate, 6)
        assert seg["end_s"] == round(seg["end_sample"] / rate, 6)
    for before, after in zip(segments, segments[1:], strict=False):
        gap = after["start_sample"] - before["end_sample"]
        assert abs(gap - job.get("pause_s", 0) * rate) <= 1  # no gap or overlap beyond the pause
    if rate == 24000 and pause:  # the pauses are silence in the file, the segments are not
        for before, after in zip(segments, segments[1:], strict=False):
            assert not audio[before["end_sample"] : after["start_sample"]].any()
            assert audio[after["start_sample"] : after["start_sample"] + 480].any()
            assert audio[before["end_sample"] - 480 : before["end_sample"]].any()


def test_turns_sharing_one_generation_share_its_time_by_characters(make_worker, monkeypatch):
    shared, lengths = run_with_chunks(make_worker(), monkeypatch, {"text": DIALOGUE, "chunk_method": "none"})
    assert len(lengths) == 1 and [(s["speaker"], s["text"]) for s in shared["segments"]] == TEXTS["dialogue"]
    assert all(s["approximate"] for s in shared["segments"]) and shared["segments"][-1]["end_sample"] == lengths[0]
    spans = [s["end_sample"] - s["start_sample"] for s in shared["segments"]]
    chars = [len(text) for _, text in TEXTS["dialogue"]]
    assert spans == pytest.approx([lengths[0] * c / sum(chars) for c in chars], abs=1)


def test_trim_silence_and_pause_replace_the_silence_around_chunks(make_worker, monkeypatch):
    """The tiny model makes no silence: the engine's real decoder is wrapped to put 0.3 s of
    digital silence before and after every chunk."""
    worker = make_worker()
    real_decode = worker.engine.decode_codes
    pad = np.zeros(7200, dtype=np.float32)
    monkeypatch.setattr(worker.engine, "decode_codes", lambda codes: np.concatenate([pad, real_decode(codes), pad]))
    job = {**JOBS["long"], "pause_s": 0.1}
    padded, padded_lengths = run_with_chunks(worker, monkeypatch, job)
    assert [s["end_sample"] - s["start_sample"] for s in padded["segments"]] == padded_lengths
    trimmed, _ = run_with_chunks(worker, monkeypatch, {**job, "trim_silence": True})
    audio, _ = decoded(trimmed)
    segments = trimmed["segments"]
    keep = 2 * 240  # at most 10 ms of silence kept each side, in whole 10 ms frames
    for seg, length in zip(segments, padded_lengths, strict=True):
        assert length - 2 * 7200 <= seg["end_sample"] - seg["start_sample"] <= length - 2 * 7200 + keep
    for before, after in zip(segments, segments[1:], strict=False):
        assert after["start_sample"] - before["end_sample"] == 2400
    assert audio[:480].any() and audio[-480:].any()  # at most the 10 ms margin left at the file's ends
    assert trimmed["duration_s"] < padded["duration_s"] - 0.5


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_inline_subtitles_parse_in_order_with_the_jobs_text(make_worker, monkeypatch, fmt):
    out, _ = run_with_chunks(make_worker(), monkeypatch, {**JOBS["dialogue"], "subtitles": fmt, "sample_rate": 44100})
    subs = out["subtitles"]
    assert subs["format"] == fmt and "url" not in subs
    spoken = "I can't believe you did that. Oh, come on! Really.".split()
    if fmt == "srt":
        cues = list(srt.parse(subs["text"]))
        times = [(c.start.total_seconds(), c.end.total_seconds()) for c in cues]
        words = [w for c in cues for w in c.content.split() if not w.startswith("[SPEAKER")]
        assert cues[0].content.startswith("[SPEAKER0]") and cues[-1].content.startswith("[SPEAKER0]")
    else:
        cues = webvtt.from_buffer(io.StringIO(subs["text"])).captions
        times = [
            (c.start_in_seconds + int(c.start[-3:]) / 1000, c.end_in_seconds + int(c.end[-3:]) / 1000) for c in cues
        ]
        words = [w for c in cues for w in c.text.split()]
        assert [c.voice for c in cues][:1] == ["SPEAKER0"]
    assert words == spoken
    assert all(start < end for start, end in times)
    assert all(a[1] <= b[0] for a, b in zip(times, times[1:], strict=False))
    assert times[0][0] == 0 and times[-1][1] == pytest.approx(out["duration_s"], abs=0.002)


def test_s3_subtitles_sit_next_to_the_audio_with_their_own_url(make_worker, s3_env, s3_client, monkeypatch):
    worker = make_worker(s3_env)
    out, _ = run_with_chunks(
        worker, monkeypatch, {**JOBS["long"], "subtitles": "vtt", "output_format": "mp3", "output_name": "chapter-1"}
    )
    assert out["s3_uri"] == f"s3://{BUCKET}/higgs-audio/chapter-1.mp3"
    subs = out["subtitles"]
    assert subs["s3_uri"] == f"s3://{BUCKET}/higgs-audio/chapter-1.vtt" and "text" not in subs
    assert s3_client.head_object(Bucket=BUCKET, Key="higgs-audio/chapter-1.vtt")["ContentType"].startswith("text/vtt")
    assert s3_client.head_object(Bucket=BUCKET, Key="higgs-audio/chapter-1.mp3")["ContentType"] == "audio/mpeg"
    vtt = requests.get(subs["url"], timeout=10)
    assert vtt.status_code == 200
    captions = webvtt.from_buffer(io.StringIO(vtt.text)).captions
    assert " ".join(c.text for c in captions).split() == LONG.split()
    mp3 = requests.get(out["audio_url"], timeout=10)
    audio, rate = sf.read(io.BytesIO(mp3.content))
    assert rate == 24000 and len(audio) / rate == pytest.approx(out["duration_s"], abs=0.08)
    srt_out, _ = run_with_chunks(worker, monkeypatch, {**JOBS["single"], "subtitles": "srt", "output_name": "one"})
    body = s3_client.get_object(Bucket=BUCKET, Key="higgs-audio/one.srt")["Body"].read().decode()
    assert [c.content for c in srt.parse(body)] == [JOBS["single"]["text"]]


@pytest.mark.parametrize("scale", [1.0, 300.0], ids=["quiet", "loud"])
def test_loudness_reaches_the_target_under_the_ceiling(make_worker, monkeypatch, scale):
    """The tiny model's noise is quiet (about -55 LUFS). For the loud job the engine's real
    decoder is wrapped to amplify it 300x, past full scale."""
    worker = make_worker()
    if scale != 1.0:
        real_decode = worker.engine.decode_codes
        monkeypatch.setattr(worker.engine, "decode_codes", lambda codes: real_decode(codes) * np.float32(scale))
    out, _ = run_with_chunks(
        worker, monkeypatch, {**JOBS["single"], "max_new_tokens": 40, "sample_rate": 44100, "loudness_lufs": -16}
    )
    audio, rate = decoded(out)
    report = out["loudness"]
    assert (report["before_lufs"] < -40) if scale == 1.0 else (report["before_lufs"] > -10)
    assert integrated_lufs(audio, rate) == pytest.approx(-16, abs=0.5)
    assert report["after_lufs"] == pytest.approx(-16, abs=0.5)
    assert np.abs(audio).max() <= 10 ** (CEILING_DBTP / 20) + 1 / 32767  # 16-bit rounding
    assert report["true_peak_dbtp"] <= CEILING_DBTP
    assert out["segments"][-1]["end_sample"] == len(audio)


def test_stream_items_are_the_raw_chunks_and_the_file_gets_the_pauses(make_worker, monkeypatch):
    items: list[dict] = []
    job = {**JOBS["long"], "stream": True, "loudness_lufs": -20}
    out, lengths = run_with_chunks(make_worker(), monkeypatch, job, emit=items.append)
    # each item is a complete Ogg Opus file (higgs_worker/audio/stream_items.py): decoded lengths add up
    streamed = sum(len(sf.read(io.BytesIO(base64.b64decode(i["audio_base64"])))[0]) for i in items)
    assert streamed == sum(lengths)  # no pauses in the stream
    assert len(decoded(out)[0]) == sum(lengths) + 3 * round(0.4 * 24000)
    assert "loudness" in out and out["segments"][1]["start_sample"] - out["segments"][0]["end_sample"] == 9600


def test_without_the_options_the_audio_is_the_plain_join(make_worker, monkeypatch):
    out, lengths = run_with_chunks(
        make_worker(), monkeypatch, {"text": LONG, "chunk_method": "word", "chunk_max_words": 5}
    )
    assert "loudness" not in out and "subtitles" not in out
    assert len(decoded(out)[0]) == sum(lengths)
    assert [s["end_sample"] for s in out["segments"]] == list(np.cumsum(lengths))


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("subtitles", "ass", "subtitles: Input should be 'srt' or 'vtt'"),
        ("loudness_lufs", -80, "loudness_lufs: Input should be greater than or equal to -70"),
        ("loudness_lufs", 0, "loudness_lufs: Input should be less than or equal to -5"),
        ("loudness_lufs", "loud", "loudness_lufs: Input should be a valid number"),
        ("pause_s", -0.1, "pause_s: Input should be greater than or equal to 0"),
        ("pause_s", 6, "pause_s: Input should be less than or equal to 5"),
        ("trim_silence", "maybe", "trim_silence: Input should be a valid boolean"),
    ],
)
def test_bad_narration_fields_are_invalid_input(make_worker, field, value, message):
    out = make_worker().run({"input": {"text": "Hi.", field: value}}).as_output()
    assert list(out) == ["error"] and out["error"].startswith(f"invalid_input: {message}"), out


def test_narration_fields_are_accepted_in_any_case(make_worker, monkeypatch):
    out, _ = run_with_chunks(
        make_worker(),
        monkeypatch,
        {**JOBS["single"], "subtitles": " VTT ", "pause_s": 0, "trim_silence": False, "loudness_lufs": None},
    )
    assert out["subtitles"]["format"] == "vtt" and out["subtitles"]["text"].startswith("WEBVTT")


@pytest.mark.slow
def test_smoke_script_on_a_fresh_checkout_leaves_a_decodable_file_in_out(tmp_path):
    """The README's first command, in a copy of the checkout (tracked and unignored files
    only, the existing .venv linked in so that setup-dev.sh only checks the pins)."""
    import os
    import subprocess

    from tests.conftest import ROOT

    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    clone = tmp_path / "clone"
    for name in filter(None, listed):
        source = ROOT / name
        if name == ".venv" or not source.is_file():
            continue
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        (clone / name).write_bytes(source.read_bytes())
        (clone / name).chmod(source.stat().st_mode)
    (clone / ".venv").symlink_to((ROOT / ".venv").resolve())
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "S3_", "BUCKET_", "HF_", "MODEL_", "TOKENIZER_", "VOICES_"))
    }
    env["HF_HUB_OFFLINE"] = "1"
    job = '{"input": {"text": "Hello there.", "output_format": "mp3", "subtitles": "vtt", "seed": 3}}'
    proc = subprocess.run(
        ["bash", "scripts/smoke.sh", job], cwd=clone, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    mp3s, vtts = list((clone / "out").glob("*.mp3")), list((clone / "out").glob("*.vtt"))
    assert len(mp3s) == 1 and len(vtts) == 1
    audio, rate = sf.read(str(mp3s[0]))
    assert rate == 24000 and len(audio) > 0
    assert f"audio      out/{mp3s[0].name}" in proc.stdout and f"subtitles  out/{vtts[0].name}" in proc.stdout
    assert "timings    " in proc.stdout and "format     mp3, 24000 Hz" in proc.stdout
    assert "audio_base64" not in proc.stdout and max(len(line) for line in proc.stdout.splitlines()) < 300
    assert [c.text for c in webvtt.read(str(vtts[0])).captions] == ["Hello there."]


def test_smoke_summary_takes_a_result_dict_or_a_list_ending_with_it():
    import asyncio
    import importlib.util

    from tests.conftest import ROOT

    spec = importlib.util.spec_from_file_location("smoke_summary", ROOT / "scripts" / "smoke_summary.py")
    smoke = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(smoke)
    result = {"format": "wav", "duration_s": 1.0}
    stream = [{"chunk": 0, "audio_base64": "AAAA"}, result]

    async def plain(job):
        return result

    async def generator(job):
        for item in stream:
            yield item

    assert smoke.result_of(asyncio.run(smoke.call(plain, {}))) == result
    assert smoke.result_of(asyncio.run(smoke.call(generator, {}))) == result
    assert smoke.result_of(asyncio.run(smoke.call(lambda job: stream, {}))) == result
    with pytest.raises(SystemExit):
        smoke.result_of("not a result")


def test_the_guides_narration_example_is_valid_and_consistent():
    import json
    import re

    from higgs_worker.contract.config import Settings
    from higgs_worker.contract.schema import parse_request
    from tests.conftest import ROOT

    section = (ROOT / "docs" / "narration.md").read_text()
    request = json.loads(re.search(r"-d '(\{.*?\})'\n", section, re.S).group(1))
    parsed = parse_request(request["input"], Settings.from_env({"S3_BUCKET": "my-bucket"}))
    assert parsed.subtitles.value == "vtt" and parsed.loudness_lufs == -16 and parsed.pause_s == 0.4
    result = json.loads(re.search(r"```json\n(.*?)\n```", section, re.S).group(1))
    rate, segments = result["sample_rate"], result["segments"]
    for seg in segments:
        assert seg["start_sample"] == round(seg["start_s"] * rate) and seg["end_sample"] == round(seg["end_s"] * rate)
        assert (seg["end_sample"] - seg["start_sample"]) * 24000 % rate == 0  # whole model samples
    for before, after in zip(segments, segments[1:], strict=False):
        assert after["start_sample"] - before["end_sample"] == round(parsed.pause_s * rate)
    assert segments[-1]["end_s"] == result["duration_s"] and result["num_chunks"] == len(segments)
    vtt = re.search(r"and `ep1-intro.vtt`:\n\n```\n(.*?)```", section, re.S).group(1)
    captions = webvtt.from_buffer(io.StringIO(vtt)).captions
    assert [(c.voice, c.text) for c in captions] == [(s["speaker"], s["text"]) for s in segments]
