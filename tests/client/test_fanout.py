"""The client's fan-out against the RunPod look-alike with simulated workers.

What needs a model is tested on real workers (test_book_on_workers.py). Here the workers
are threads of the look-alike (tests/support/fake_endpoint.py: SimulatedWorkers) that answer
with real FLAC audio after a chosen time, so that what only a fault or timing shows can be
made to happen: 429s, failing and timed-out jobs, results too short for their text, jobs
RunPod no longer knows. The client's side is all real: the runpod SDK over HTTP, the
manifest on disk, the assembly."""

from __future__ import annotations

import json
import threading

import pytest
import soundfile as sf
from higgs_tts import BookFailed, BookOptions, FanOutSettings, InputError, QueueEndpoint, make_book
from higgs_tts.assemble import read_chapter_marks
from higgs_tts.manifest import Manifest

from tests.client.conftest import chapters_text


def endpoint_for(fake) -> QueueEndpoint:
    return QueueEndpoint("fake-endpoint", fake.api_key, base_url=fake.base_url)


def options(**changes) -> BookOptions:
    fanout = changes.pop("fanout", {})
    base = dict(voice="belinda", seed=11, piece_words=40)
    return BookOptions(**{**base, **changes}, fanout=FanOutSettings(**{"parallel": 4, "poll_max_s": 0.5, **fanout}))


@pytest.fixture
def book(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text(chapters_text(4))
    return path


def test_429_on_run_is_waited_out_and_every_piece_is_sent_once(simulated, book, tmp_path):
    fake, _ = simulated
    fake.throttle_runs(3)
    summary = make_book(book, tmp_path / "out", endpoint_for(fake), options())
    assert fake.counts.throttled == 3 and summary.throttled == 3
    assert fake.counts.runs == summary.pieces == summary.jobs_submitted  # nothing sent twice
    assert len(read_chapter_marks(tmp_path / "out" / "book.mp3")) == 4


def test_failing_pieces_are_retried_then_the_book_stops_with_what_failed_and_why(simulated, book, tmp_path):
    fake, workers = simulated
    workers.behave = lambda job: {"error": "generation_failed: boom"} if "Number 2 is" in job["text"] else None
    out = tmp_path / "out"
    with pytest.raises(BookFailed) as failure:
        make_book(book, out, endpoint_for(fake), options(fanout={"max_attempts": 2}))
    message = str(failure.value)
    assert "1 piece(s) failed" in message and "(Chapter 2): 2 attempt(s)" in message
    assert "generation_failed: boom" in message and "run the same command again" in message
    assert not (out / "book.mp3").exists() and not (out / "chapters").exists()
    manifest = Manifest.load(out / "manifest.json")
    failed = [p for p in manifest.pieces if p.state == "failed"]
    assert len(failed) == 1 and [j.outcome for j in failed[0].jobs] == ["FAILED", "FAILED"]

    # the cause is gone: the rerun sends only what is not done yet, and finishes
    not_done = sum(p.state != "done" for p in manifest.pieces)
    workers.behave = lambda job: None
    runs = fake.counts.runs
    summary = make_book(book, out, endpoint_for(fake), options(fanout={"max_attempts": 2}))
    assert fake.counts.runs - runs == not_done == summary.jobs_submitted
    assert summary.jobs_total == len(manifest.jobs()) + not_done


def test_invalid_input_is_not_retried(simulated, book, tmp_path):
    fake, workers = simulated
    workers.behave = lambda job: {"error": "invalid_input: voice 'x' not found"} if "Number 3" in job["text"] else None
    with pytest.raises(BookFailed, match=r"\(Chapter 3\): 1 attempt\(s\).*invalid_input: voice 'x' not found"):
        make_book(book, tmp_path / "out", endpoint_for(fake), options(fanout={"max_attempts": 3}))


def test_audio_too_short_for_its_text_is_made_again_with_another_seed(simulated, book, tmp_path):
    fake, workers = simulated
    workers.behave = lambda job: {"audio_s": 0.3} if "Number 1" in job["text"] and job["seed"] == 11 else None
    out = tmp_path / "out"
    summary = make_book(book, out, endpoint_for(fake), options())
    assert summary.retries == 1
    piece = next(p for p in Manifest.load(out / "manifest.json").pieces if len(p.jobs) > 1)
    assert [j.seed for j in piece.jobs] == [11, 11 + 1_000_003]
    assert piece.jobs[0].outcome == "rejected" and "too short" in piece.jobs[0].error
    assert piece.seed == 11 + 1_000_003 and piece.duration_s > 1


def test_a_job_past_the_timeout_is_cancelled_and_retried(simulated, book, tmp_path):
    fake, workers = simulated
    slow_once = threading.Event()

    def behave(job):
        if "Number 4" in job["text"] and not slow_once.is_set():
            slow_once.set()
            return {"run_s": 30}
        return None

    workers.behave = behave
    summary = make_book(book, tmp_path / "out", endpoint_for(fake), options(fanout={"job_timeout_s": 1.0}))
    assert fake.counts.cancels == 1 and summary.retries == 1
    cancelled = [job for job in fake.jobs.values() if job.status == "CANCELLED"]
    assert len(cancelled) == 1 and "Number 4" in cancelled[0].input["text"]


def test_a_job_the_endpoint_forgot_is_sent_again(simulated, book, tmp_path):
    fake, _ = simulated
    out = tmp_path / "out"
    make_book(book, out, endpoint_for(fake), options())
    manifest = json.loads((out / "manifest.json").read_text())
    piece = manifest["pieces"][0]
    (out / piece["file"]).unlink()
    piece.update(state="submitted", job_id="job-gone", file=None, sha256=None)  # as if stopped mid-job
    (out / "manifest.json").write_text(json.dumps(manifest))
    runs = fake.counts.runs
    summary = make_book(book, out, endpoint_for(fake), options())
    assert fake.counts.runs - runs == 1 and summary.resumed == 1 and summary.retries == 1
    errors = Manifest.load(out / "manifest.json").pieces[0].errors
    assert any("unknown to the endpoint" in error for error in errors)


def test_a_changed_piece_file_is_not_trusted(simulated, book, tmp_path):
    fake, _ = simulated
    out = tmp_path / "out"
    make_book(book, out, endpoint_for(fake), options())
    victim = next(out.glob("pieces/00001.flac"))
    victim.write_bytes(victim.read_bytes()[:100])  # truncated by something outside the client
    runs = fake.counts.runs
    make_book(book, out, endpoint_for(fake), options())
    assert fake.counts.runs - runs == 1
    assert sf.info(victim).duration > 1


def test_a_folder_made_with_other_settings_is_refused(simulated, book, tmp_path):
    fake, _ = simulated
    make_book(book, tmp_path / "out", endpoint_for(fake), options())
    with pytest.raises(InputError, match="other text or settings.*differ in: seed"):
        make_book(book, tmp_path / "out", endpoint_for(fake), options(seed=12))


def test_without_a_voice_the_first_words_become_every_pieces_reference(simulated, book, tmp_path):
    fake, _ = simulated
    out = tmp_path / "out"
    summary = make_book(book, out, endpoint_for(fake), options(voice=None))
    jobs = sorted(fake.jobs.values(), key=lambda job: int(job.id.split("-")[1]))
    sample, pieces = jobs[0], jobs[1:]
    assert "reference_audio" not in sample.input and "voice" not in sample.input
    assert sample.input["text"].startswith("Chapter 1 The lamp was lit")
    import base64

    expected = base64.b64encode((out / "pieces" / "voice-sample.flac").read_bytes()).decode()
    assert len(pieces) == summary.pieces
    reference = {"base64": expected, "transcript": sample.input["text"]}
    assert all(job.input["reference_audio"] == reference for job in pieces)
    assert any("voice: the model's pick" in notice for notice in summary.notices)


def test_reference_audio_is_uploaded_once_and_named_by_its_s3_key(simulated, book, tmp_path, moto_server, monkeypatch):
    from tests.conftest import BUCKET, FAKE_AWS, wav_bytes

    fake, _ = simulated
    for key, value in {**FAKE_AWS, "S3_BUCKET": BUCKET, "S3_ENDPOINT_URL": moto_server}.items():
        monkeypatch.setenv(key, value)
    reference = tmp_path / "me.wav"
    reference.write_bytes(wav_bytes(2.0))
    opts = options(voice=None, reference_audio=str(reference), reference_text="Hello there.")
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")

    def references() -> set[str]:  # the bucket is the session's: other tests' references are there too
        listing = s3.list_objects_v2(Bucket=BUCKET, Prefix="higgs-audio/references/")
        return {o["Key"] for o in listing.get("Contents", [])}

    before = references()
    make_book(book, tmp_path / "one", endpoint_for(fake), opts)
    make_book(book, tmp_path / "two", endpoint_for(fake), opts)

    keys = sorted(references() - before)
    assert len(keys) == 1 and keys[0].endswith(".wav")
    assert s3.get_object(Bucket=BUCKET, Key=keys[0])["Body"].read() == reference.read_bytes()
    refs = {json.dumps(job.input["reference_audio"], sort_keys=True) for job in fake.jobs.values()}
    assert refs == {json.dumps({"s3_key": keys[0], "transcript": "Hello there."}, sort_keys=True)}
