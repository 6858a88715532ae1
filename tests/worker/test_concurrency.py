"""Jobs at once in one worker (the path both doors take, ``Worker.run`` in threads), with real
parts: the voice upload code replacing a voice while jobs read it, a stalling HTTP server
(tests/support/hostile_servers.py), moto's S3 behind a proxy that hangs (tests/support/s3_proxy.py).

The assertions are about order, not time: a plain job completes while the stalled one is
still waiting on the network; bad input is refused while the only generation slot is held.
The figures (seconds before and after) come from benchmarks/concurrency_faults.py."""

from __future__ import annotations

import base64
import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import soundfile as sf

from higgs_worker.http.voice_admin import save_voice
from tests.conftest import BUCKET, FAKE_AWS
from tests.support.hostile_servers import HostileServer, stall
from tests.support.s3_proxy import S3Proxy

SHORT = {"text": "Hello there.", "seed": 1, "max_new_tokens": 20, "delivery": "base64"}
NOT_AUDIO = base64.b64encode(b"valid base64, but not audio " * 40).decode()
TRANSCRIPTS = ("The sun rises in the east.", "A different sentence, said by the second clip of the voice.")


def clip(freq: float, seconds: float) -> bytes:
    """24 kHz mono 16-bit: what an upload stores, so reference_audio of it gives the same samples."""
    t = np.arange(int(seconds * 24000)) / 24000
    buffer = io.BytesIO()
    sf.write(buffer, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 24000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def wait_until(predicate, timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout:.0f}s")
        time.sleep(0.02)


class Background:
    """``worker.run(job).as_output()`` in a thread, its phases recorded."""

    def __init__(self, worker, job_input: dict, **kwargs):
        self.phases: list[str] = []
        self.output: dict | None = None
        self.stop = threading.Event()

        def run() -> None:
            self.output = worker.run(
                {"input": job_input}, should_stop=self.stop.is_set, on_phase=self.phases.append, **kwargs
            ).as_output()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def join(self) -> dict:
        self.thread.join(timeout=120)
        assert self.output is not None, "the job did not end"
        return self.output


@pytest.mark.slow
def test_a_voice_replaced_while_jobs_use_it_never_gives_a_mixed_pair(make_worker, voices_dir):
    """The voice is replaced between two clips, each with its own transcript, for as long as the
    jobs run; each job's audio must be one version's own. (Before voices were read as one
    version, about 7% of such jobs got one version's clip with the other's transcript.)"""
    worker = make_worker({"MAX_CONCURRENCY": "4"})
    clips = (clip(220.0, 1.5), clip(330.0, 1.2))
    job = {"text": "Hello there.", "voice": "vx", "seed": 7, "max_new_tokens": 40, "output_format": "pcm"}

    def upload(version: int) -> None:
        save_voice(str(voices_dir), "vx", clips[version], TRANSCRIPTS[version], 10**7, 60)

    def audio(job_input: dict) -> str:
        out = worker.run({"input": job_input}).as_output()
        assert "audio_base64" in out, out
        return out["audio_base64"]

    own = []
    for version in (0, 1):
        upload(version)
        own.append(audio(job))
    mixed = []
    for clip_of, text_of in ((0, 1), (1, 0)):
        reference = {"base64": base64.b64encode(clips[clip_of]).decode(), "transcript": TRANSCRIPTS[text_of]}
        mixed.append(audio({**{k: v for k, v in job.items() if k != "voice"}, "reference_audio": reference}))
    assert len({*own, *mixed}) == 4  # a mixed pair would be told apart from both versions

    stop, replaced = threading.Event(), [0]

    def replace() -> None:
        while not stop.is_set():
            upload(replaced[0] % 2)
            replaced[0] += 1

    writer = threading.Thread(target=replace)
    writer.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: audio(job), range(40)))
    finally:
        stop.set()
        writer.join()
    counts = {"A": results.count(own[0]), "B": results.count(own[1])}
    counts["mixed"] = sum(results.count(m) for m in mixed)
    print(f"40 jobs while vx was replaced {replaced[0]} times: {counts}")
    assert replaced[0] >= 40  # the voice really changed under the jobs
    assert counts["A"] + counts["B"] == len(results), counts


def test_bad_input_is_refused_while_the_only_slot_generates(make_worker):
    worker = make_worker({"MAX_CONCURRENCY": "1"})
    release, holding = threading.Event(), threading.Event()

    def hold(_piece) -> None:  # the busy job stays in its generation slot until released
        holding.set()
        release.wait(120)

    busy = Background(worker, {**SHORT, "max_new_tokens": 100}, on_audio=hold)
    queued = Background(worker, SHORT)  # and a good job waits for that slot
    try:
        wait_until(holding.is_set, what="the busy job generating")
        wait_until(lambda: queued.phases[-1:] == ["waiting"], what="the second job waiting for the slot")
        metadata = "http://169.254.169.254/latest/meta-data/iam/"
        for bad, error in [
            ({"text": "x", "nope": 1}, "invalid_input: unknown field(s) 'nope'"),
            ({"text": "x", "reference_audio": {"base64": "@@@not base64"}}, "reference_audio: reference_audio.base64"),
            ({"text": "x", "reference_audio": {"url": metadata}}, "reference_audio: reference_audio.url points to"),
            ({"text": "x", "reference_audio": {"base64": NOT_AUDIO}}, "reference_audio: reference audio:"),
            ({"text": "x", "speakers": {"SPEAKER1": {"voice": "nobody"}}}, "invalid_input: unknown voice 'nobody'"),
            ({"text": "x", "temperature": 9}, "invalid_input: temperature"),
        ]:
            out = worker.run({"input": bad}).as_output()
            assert list(out) == ["error"] and out["error"].startswith(error), out
        assert busy.running and busy.phases[-1] == "generating" and queued.phases[-1] == "waiting"
    finally:
        release.set()
    assert "audio_base64" in busy.join() and "audio_base64" in queued.join()
    assert queued.output["timings"]["wait_s"] > 0


def test_a_stalled_reference_url_does_not_hold_the_slot(make_worker):
    extra = {"MAX_CONCURRENCY": "1", "ALLOW_PRIVATE_URLS": "true", "REFERENCE_URL_TIMEOUT_SECONDS": "60"}
    worker = make_worker(extra)
    with HostileServer(stall(give_up_after=60)) as server:
        reference = {"url": f"{server.url}/clip.wav", "transcript": "Hi."}
        stalled = Background(worker, {**SHORT, "reference_audio": reference})
        wait_until(lambda: server.requests, what="the stalled download")
        plain = [
            worker.run({"input": {**SHORT, "seed": seed}}).as_output() for seed in (1, 2)
        ]  # one slot, two plain jobs
        assert all("audio_base64" in out for out in plain), plain
        assert stalled.running and stalled.phases == ["inputs"]  # still downloading, holding no slot
    out = stalled.join()  # the server went away: the download fails cleanly
    assert list(out) == ["error"] and out["error"].startswith("reference_audio: reference_audio.url"), out


def test_a_hanging_s3_upload_does_not_hold_the_slot(make_worker, moto_server, s3_client, monkeypatch):
    for key, value in FAKE_AWS.items():
        monkeypatch.setenv(key, value)
    with S3Proxy(moto_server) as proxy:
        extra = {"S3_BUCKET": BUCKET, "S3_ENDPOINT_URL": proxy.url, "S3_TIMEOUT_SECONDS": "120", "S3_ATTEMPTS": "1"}
        worker = make_worker({"MAX_CONCURRENCY": "1", **extra})
        proxy.stall_seconds = 120.0  # S3 hangs
        stored = Background(worker, {**SHORT, "delivery": "s3", "output_name": "after-the-hang"})
        wait_until(lambda: stored.phases[-1:] == ["delivering"], what="the S3 job delivering")
        plain = [worker.run({"input": {**SHORT, "seed": seed}}).as_output() for seed in (1, 2)]
        assert all("audio_base64" in out for out in plain), plain
        assert stored.running and stored.phases[-1] == "delivering"  # still uploading, holding no slot
        proxy.unstall()  # S3 comes back: the result is stored, nothing lost
        out = stored.join()
    assert out.get("s3_uri") == f"s3://{BUCKET}/higgs-audio/after-the-hang.wav", out
    s3_client.head_object(Bucket=BUCKET, Key="higgs-audio/after-the-hang.wav")


def test_a_job_stopped_while_it_waits_for_a_slot_leaves_at_once(make_worker):
    worker = make_worker({"MAX_CONCURRENCY": "1"})
    release, holding = threading.Event(), threading.Event()
    busy = Background(worker, {**SHORT, "max_new_tokens": 100}, on_audio=lambda _p: (holding.set(), release.wait(120)))
    try:
        wait_until(holding.is_set, what="the busy job generating")
        waiting = Background(worker, SHORT)
        wait_until(lambda: waiting.phases[-1:] == ["waiting"], what="the job waiting")
        waiting.stop.set()
        out = waiting.join()  # while the slot is still held
        assert list(out) == ["error"] and out["error"].startswith("generation_failed: the job was cancelled")
        assert busy.running
    finally:
        release.set()
    assert "audio_base64" in busy.join()
