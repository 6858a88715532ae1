"""``higgs-tts`` as a user runs it: bad input and refusing endpoints give one clear message and
leave nothing behind; ``say`` and ``book`` against the look-alike (simulated workers); the
client runs without torch and without the worker's package."""

from __future__ import annotations

import subprocess
import sys

import pytest
import soundfile as sf
from higgs_tts.assemble import read_chapter_marks

from tests.client.conftest import chapters_text, client_env, run_cli
from tests.conftest import ROOT


def assert_clean_failure(result: subprocess.CompletedProcess, code: int, *phrases: str) -> None:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("content", "phrase"),
    [
        (b"", "is empty"),
        (b"\x00\x01\x02binary\x00", "looks binary"),
        (b"Chapter 1\n\nWords to say.\n\nChapter 2\n\n* * *\n", "chapter 2 'Chapter 2' has no speakable text"),
    ],
)
def test_bad_books_are_refused_before_anything_is_written(simulated, tmp_path, content, phrase):
    fake, _ = simulated
    book = tmp_path / "book.txt"
    book.write_bytes(content)
    result = run_cli(["book", str(book), "-o", str(tmp_path / "out")], client_env(fake))
    assert_clean_failure(result, 2, phrase)
    assert not (tmp_path / "out").exists()
    assert fake.counts.runs == 0


@pytest.mark.parametrize(
    ("env_change", "phrase"),
    [
        ({"RUNPOD_API_KEY": "wrong-key"}, "refused the API key (401 Unauthorized): check RUNPOD_API_KEY"),
        ({"RUNPOD_ENDPOINT_ID": "no-such-endpoint"}, "answered 404 Not Found: check --endpoint / RUNPOD_ENDPOINT_ID"),
    ],
)
def test_an_endpoint_that_refuses_stops_the_book_before_anything_is_written(simulated, tmp_path, env_change, phrase):
    fake, _ = simulated
    book = tmp_path / "book.txt"
    book.write_text(chapters_text(2))
    result = run_cli(["book", str(book), "-o", str(tmp_path / "out")], client_env(fake, **env_change))
    assert_clean_failure(result, 1, phrase)
    assert not (tmp_path / "out").exists()
    assert fake.counts.runs == 0
    assert "wrong-key" not in result.stderr  # the key is never echoed


def test_say_writes_the_audio_and_its_subtitles(simulated, tmp_path):
    fake, _ = simulated
    out = tmp_path / "hello.flac"
    args = ["say", "Hello there, reader.", "-o", str(out), "--subtitles", "srt", "--seed", "3"]
    result = run_cli(args, client_env(fake))
    assert result.returncode == 0, result.stderr
    assert sf.info(out).duration > 1
    assert "Hello there, reader." in (tmp_path / "hello.srt").read_text()
    (job,) = fake.jobs.values()
    assert job.input == {"text": "Hello there, reader.", "output_format": "flac", "seed": 3, "subtitles": "srt"}


def test_book_prints_its_summary_and_writes_the_book(simulated, tmp_path):
    fake, _ = simulated
    book = tmp_path / "book.txt"
    book.write_text(chapters_text(3))
    out = tmp_path / "out"
    args = ["book", str(book), "-o", str(out), "--voice", "belinda", "--parallel", "4", "--subtitles", "vtt"]
    result = run_cli(args, client_env(fake))
    assert result.returncode == 0, result.stderr
    assert f"book: {out / 'book.mp3'} (3 chapters" in result.stdout
    assert "GPU time billed (the jobs' executionTime, all runs):" in result.stdout
    assert [t for t, _, _ in read_chapter_marks(out / "book.mp3")] == ["Chapter 1", "Chapter 2", "Chapter 3"]
    assert (out / "book.vtt").read_text().startswith("WEBVTT")


def test_the_client_needs_neither_torch_nor_the_worker_package():
    code = (
        "import sys, higgs_tts, higgs_tts.cli, higgs_tts.book, higgs_tts.assemble, higgs_tts.endpoint;"
        "import ebooklib, mutagen, srt, soundfile;"
        "heavy = ('torch', 'higgs_worker', 'transformers', 'runpod');"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in heavy);"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT / "client")
    assert result.returncode == 0, result.stdout + result.stderr
    sources = "\n".join(path.read_text() for path in (ROOT / "client" / "higgs_tts").glob("*.py"))
    assert "higgs_worker" not in sources and "import torch" not in sources and "import runpod" not in sources


@pytest.mark.slow
def test_say_to_an_http_mode_worker(subprocess_env, tmp_path):
    """``say --base-url``: the same job input to a real HTTP-mode worker's /v1/synthesize."""
    from tests.support.http_server import http_worker

    with http_worker({**subprocess_env, "API_KEY": "http-key-1"}, tmp_path / "worker.log") as worker:
        env = client_env_without_runpod()
        out = tmp_path / "hi.wav"
        args = ["say", "Hi there.", "-o", str(out), "--base-url", worker.url, "--voice", "belinda", "--seed", "5"]
        wrong = run_cli(args, {**env, "HIGGS_TTS_API_KEY": "not-it"})
        assert_clean_failure(wrong, 1, "refused the API key (401): check HIGGS_TTS_API_KEY")
        result = run_cli([*args, "--option", "max_new_tokens=40"], {**env, "HIGGS_TTS_API_KEY": "http-key-1"})
        assert result.returncode == 0, result.stderr
        assert sf.info(out).samplerate == 24000 and sf.info(out).duration > 0
        assert "(seed 5)" in result.stdout


def client_env_without_runpod() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_", "AWS_", "S3_"))}
