"""Voice names that try to leave the voice folder (``io/voices``): path tricks, look-alike
characters, control characters, symlinks to a clip and a transcript outside VOICES_DIR. Every
trick is ``invalid_input``, as a voice and as a speaker's voice. The tiny real model on a
temporary voice library. Shared helpers: tests/support/hostile_jobs.py."""

from __future__ import annotations

import pytest

from tests.conftest import wav_bytes
from tests.support.hostile_jobs import (
    CHEAP,
    NAME_TRICKS,
    check_audio,
    check_refused,
)


@pytest.fixture
def secret_outside(tmp_path, voices_dir):
    """A valid clip and a transcript outside VOICES_DIR, and symlinks to them inside it."""
    (tmp_path / "secret.wav").write_bytes(wav_bytes(1.0, rate=16000))
    (tmp_path / "secret.txt").write_text("The secret password is swordfish.")
    (voices_dir / "evil.wav").symlink_to(tmp_path / "secret.wav")
    (voices_dir / "evil2.flac").symlink_to("../secret.wav")
    return tmp_path


@pytest.mark.parametrize("name", NAME_TRICKS, ids=[ascii(n)[:40] for n in NAME_TRICKS])
def test_voice_names_cannot_leave_the_voice_folder(make_worker, secret_outside, name):
    """tmp_path/secret.wav (next to VOICES_DIR) is a valid clip: a name that reached it would make
    the job succeed. Every trick is invalid_input, as a voice and as a speaker's voice."""
    worker = make_worker(CHEAP)
    check_refused(worker.run({"input": {"text": "Hi", "voice": name}}).as_output(), "invalid_input: ")
    speakers = {"SPEAKER0": {"voice": name}, "SPEAKER1": {"description": "calm"}}
    check_refused(
        worker.run({"input": {"text": "[SPEAKER0] Hi [SPEAKER1] Yo", "speakers": speakers}}).as_output(),
        "invalid_input: ",
    )


def test_symlinks_out_of_the_voice_folder_are_not_used(make_worker, secret_outside, voices_dir):
    worker = make_worker(CHEAP)
    for name in ("evil", "evil2"):
        check_refused(worker.run({"input": {"text": "Hi", "voice": name}}).as_output(), "invalid_input: ")


def test_a_symlinked_transcript_outside_the_voice_folder_is_not_read(make_worker, secret_outside, voices_dir):
    """The transcript is part of the prompt, so it changes the (seeded) audio: the output with a
    transcript symlinked from outside must equal the output with no transcript at all."""
    worker = make_worker(CHEAP)
    job = {"input": {"text": "Hello there.", "voice": "belinda", "seed": 5}}
    (voices_dir / "belinda.txt").unlink()
    without = worker.run(job).as_output()
    (voices_dir / "belinda.txt").symlink_to(secret_outside / "secret.txt")
    linked = worker.run(job).as_output()
    (voices_dir / "belinda.txt").unlink()
    (voices_dir / "belinda.txt").write_text((secret_outside / "secret.txt").read_text())
    inside = worker.run(job).as_output()
    for out in (without, linked, inside):
        check_audio(out)
    assert inside["audio_base64"] != without["audio_base64"], "control: a transcript should change the audio"
    assert linked["audio_base64"] == without["audio_base64"], "the transcript outside VOICES_DIR was read"
