"""A book end to end: the client against the RunPod look-alike in front of two real workers
(``handler.py`` on the runpod SDK's worker loop, the tiny model on the CPU)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from higgs_tts import BookOptions, FanOutSettings, QueueEndpoint, make_book
from higgs_tts.assemble import CHAPTER_END_S, PAUSE_PARAGRAPH_S, PAUSE_SENTENCE_S, read_chapter_marks
from higgs_tts.manifest import Manifest

from tests.client.conftest import chapters_text, client_env

pytestmark = pytest.mark.slow

PIECE_WORDS = 12


def endpoint_for(fake) -> QueueEndpoint:
    return QueueEndpoint("fake-endpoint", fake.api_key, base_url=fake.base_url)


def options(**changes) -> BookOptions:
    base = dict(
        voice="belinda",
        seed=7,
        piece_words=PIECE_WORDS,
        fanout=FanOutSettings(parallel=3, poll_max_s=1.0, check_length=False),
    )
    return BookOptions(**{**base, **changes})


def test_twelve_chapters_come_back_whole_and_in_order(workers, tmp_path):
    book = tmp_path / "twelve.txt"
    book.write_text(chapters_text(12))
    out = tmp_path / "out"
    summary = make_book(book, out, endpoint_for(workers.fake), options())

    manifest = Manifest.load(out / "manifest.json")
    pieces = sorted(manifest.pieces, key=lambda p: p.index)
    assert [p.index for p in pieces] == list(range(len(pieces)))
    assert all(p.state == "done" for p in pieces)
    assert [p.chapter for p in pieces] == sorted(p.chapter for p in pieces)  # play order follows chapters
    assert {p.chapter for p in pieces} == set(range(12))
    # both workers took part
    assert {workers.fake.jobs[job.id].worker for p in pieces for job in p.jobs} == {"worker-1", "worker-2"}

    # each chapter file: its pieces in order, joined with the pauses
    assert len(summary.assembly.chapters) == 12
    book_seconds = 0.0
    for number, chapter in enumerate(summary.assembly.chapters):
        mine = [p for p in pieces if p.chapter == number]
        pauses = sum(PAUSE_PARAGRAPH_S if p.ends_paragraph else PAUSE_SENTENCE_S for p in mine[:-1]) + CHAPTER_END_S
        expected = sum(p.duration_s for p in mine) + pauses
        assert chapter.title == f"Chapter {number + 1}"
        assert chapter.duration_s == pytest.approx(expected, abs=0.01)
        info = sf.info(out / chapter.file)
        assert info.duration == pytest.approx(expected, abs=0.1)  # MP3 frames round the end
        book_seconds += chapter.duration_s
    assert summary.assembly.duration_s == pytest.approx(book_seconds, abs=0.01)
    assert sf.info(out / "book.mp3").duration == pytest.approx(book_seconds, abs=0.1)

    # the book file's chapter marks are the chapters
    marks = read_chapter_marks(out / "book.mp3")
    assert [title for title, _, _ in marks] == [c.title for c in summary.assembly.chapters]
    for (_, start, end), chapter in zip(marks, summary.assembly.chapters, strict=True):
        assert start == pytest.approx(chapter.start_s, abs=0.001)
        assert end == pytest.approx(chapter.start_s + chapter.duration_s, abs=0.001)

    # one subtitle file: every chapter's cues after its mark, in order
    import srt

    cues = list(srt.parse((out / "book.srt").read_text()))
    starts = [cue.start.total_seconds() for cue in cues]
    assert starts == sorted(starts)
    for number, (_, start, end) in enumerate(marks):
        own = [c for c in cues if f"Number {number + 1} is here" in c.content]
        assert own and all(start <= c.start.total_seconds() < end for c in own)

    # loudness: every piece (long enough to measure) to the target, so the book measures there too
    measured = [p.loudness_lufs for p in pieces if p.loudness_lufs is not None]
    assert measured and all(value == pytest.approx(-18.0, abs=0.5) for value in measured)
    import pyloudnorm

    audio, rate = sf.read(out / "book.mp3")
    assert pyloudnorm.Meter(rate).integrated_loudness(audio) == pytest.approx(-18.0, abs=1.5)
    assert summary.jobs_submitted == len(pieces) and summary.retries == 0
    assert summary.billed_gpu_s > 0


def test_a_worker_killed_mid_run_costs_one_retry_per_job_it_held_and_the_book_is_whole(workers, tmp_path):
    book = tmp_path / "kill.txt"
    book.write_text(chapters_text(4))
    fake = workers.fake
    victim = workers.workers["worker-1"]
    held: list[str] = []  # a worker takes MAX_CONCURRENCY + IO_JOBS jobs: it may hold more than one

    def on_victim():
        return [j.id for j in fake.jobs.values() if j.worker == "worker-1" and j.status == "IN_PROGRESS"]

    def kill_when_busy():
        fake.wait_for(lambda: on_victim(), 240, "a job on worker-1")
        victim.kill()
        held.extend(on_victim())  # after the kill: the jobs it held

    killer = threading.Thread(target=kill_when_busy, daemon=True)
    killer.start()
    summary = make_book(book, tmp_path / "out", endpoint_for(fake), options())
    killer.join(timeout=5)
    assert held, "worker-1 was killed while it held a job"

    manifest = Manifest.load(tmp_path / "out" / "manifest.json")
    lost = [job for p in manifest.pieces for job in p.jobs if job.error and "worker lost" in job.error]
    # the jobs it held, and one a take request left open by the dead worker may still have got
    assert set(held) <= {job.id for job in lost} and all(fake.jobs[job.id].worker == "worker-1" for job in lost)
    assert all(job.outcome == "FAILED" for job in lost)
    assert summary.retries == len(lost)
    assert summary.jobs_submitted == len(manifest.pieces) + len(lost)
    assert all(p.state == "done" for p in manifest.pieces)
    assert len(read_chapter_marks(tmp_path / "out" / "book.mp3")) == 4


def test_an_interrupted_run_continues_and_pays_only_for_missing_pieces(workers, tmp_path):
    book = tmp_path / "resume.txt"
    book.write_text(chapters_text(12))
    out = tmp_path / "out"
    fake = workers.fake
    env = client_env(fake)
    args = ["book", str(book), "-o", str(out), "--voice", "belinda", "--seed", "7"]
    args += ["--piece-words", str(PIECE_WORDS), "--parallel", "2", "--no-progress", "--no-length-check"]
    runs_before = fake.counts.runs
    first = subprocess.Popen(
        [str(Path(sys.executable).parent / "higgs-tts"), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    manifest_path = out / "manifest.json"

    def done_count() -> int:
        try:
            return sum(p.state == "done" for p in Manifest.load(manifest_path).pieces)  # snapshot + journal
        except (OSError, ValueError):
            return 0

    deadline = time.monotonic() + 240
    while done_count() < 3 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    first.send_signal(signal.SIGINT)  # Ctrl-C
    _, stderr = first.communicate(timeout=60)
    assert first.returncode == 130, stderr
    assert "Traceback" not in stderr and "run the same command again" in stderr

    stopped = Manifest.load(manifest_path)  # consistent: it loads, and every job sent is in it
    sent_first = fake.counts.runs - runs_before
    assert len(stopped.jobs()) == sent_first
    in_flight = [p for p in stopped.pieces if p.state == "submitted"]
    never_sent = [p for p in stopped.pieces if p.state == "pending"]
    assert never_sent, "the run was stopped too late to show a resume"
    assert all(p.job_id for p in in_flight)

    runs_before_second = fake.counts.runs
    second = subprocess.run(
        [str(Path(sys.executable).parent / "higgs-tts"), *args], env=env, capture_output=True, text=True, timeout=600
    )
    assert second.returncode == 0, second.stderr
    assert fake.counts.runs - runs_before_second == len(never_sent)  # in-flight jobs were collected, not resent
    done = Manifest.load(manifest_path)
    assert all(p.state == "done" for p in done.pieces)
    assert len(done.jobs()) == sent_first + len(never_sent)
    assert f"resumed {len(in_flight)}" in second.stdout


def test_an_epub_keeps_its_chapter_titles(workers, tmp_path):
    from tests.client.test_book_source import build_epub

    titles = ["The Harbour", "A Letter from Home", "Night Train"]
    epub = build_epub(tmp_path / "novel.epub", "Three Nights", titles)
    summary = make_book(epub, tmp_path / "out", endpoint_for(workers.fake), options())
    marks = read_chapter_marks(tmp_path / "out" / "book.mp3")
    assert [title for title, _, _ in marks] == titles
    assert [c.title for c in summary.assembly.chapters] == titles
    names = sorted(path.name for path in (tmp_path / "out" / "chapters").glob("*.mp3"))
    assert names == ["01 The Harbour.mp3", "02 A Letter from Home.mp3", "03 Night Train.mp3"]
    audio, _ = sf.read(tmp_path / "out" / "book.mp3")
    assert np.isfinite(audio).all()
