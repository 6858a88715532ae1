"""Preset voices designed on first use and voices designed from a description, in process
(the tiny real model, the real voice library on a temporary volume).

Two ``Worker`` objects sharing one VOICES_DIR have their own thread locks, so between them
only the file lock on the volume keeps a first use from being designed twice (as between
two worker processes: tests/http/test_voice_design_routes.py runs those)."""

from __future__ import annotations

import threading
import zipfile

import pytest

from higgs_worker.io.presets import presets
from tests.support.handler_runs import job_result, run_test_input

SHORT = {"max_new_tokens": 12, "delivery": "base64", "seed": 5}


def speak(worker, voice: str, job_id: str = "job") -> dict:
    return worker.run({"id": job_id, "input": {"text": "Hello there.", "voice": voice, **SHORT}}).as_output()


def designed_warnings(output: dict) -> list[str]:
    return [w for w in output.get("warnings") or [] if "designed from its preset" in w]


def test_a_first_use_under_16_concurrent_requests_designs_once(make_worker, voices_dir):
    workers = [make_worker(), make_worker()]  # two workers on one volume, 8 requests each
    outputs: list[dict] = []
    lock = threading.Lock()

    def request(n: int) -> None:
        output = speak(workers[n % 2], "alloy", f"job-{n}")
        with lock:
            outputs.append(output)

    threads = [threading.Thread(target=request, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert len(outputs) == 16 and all("error" not in output for output in outputs), outputs
    assert sum(worker.designer.designed for worker in workers) == 1
    assert sum(len(designed_warnings(output)) for output in outputs) == 1
    with zipfile.ZipFile(voices_dir / "alloy.voice") as archive:
        assert archive.read("description.txt").decode() == presets()["alloy"].description
        assert archive.read("transcript.txt").decode() == presets()["alloy"].sentence
    # every request of both workers cloned the one stored version (the clip cache's key is its identity)
    keys = {key for worker in workers for key in worker.voice_clips._clips}
    assert len(keys) == 1
    assert not designed_warnings(speak(workers[0], "alloy"))  # from now on it is a library voice


def test_a_library_voice_wins_over_a_preset(make_worker, voices_dir):
    (voices_dir / "nova.wav").write_bytes((voices_dir / "belinda.wav").read_bytes())
    worker = make_worker()
    output = speak(worker, "nova")
    assert "error" not in output and not designed_warnings(output)
    assert worker.designer.designed == 0 and not (voices_dir / "nova.voice").exists()
    listed = {entry["id"]: entry for entry in worker.run({"input": {"action": "list_voices"}}).as_output()["data"]}
    assert listed["nova"]["source"] == "library" and listed["nova"]["description"] is None


def test_an_unknown_voice_lists_the_presets_and_the_library(make_worker):
    output = speak(make_worker(), "nobody")
    error = output["error"]
    assert error.startswith("invalid_input: unknown voice 'nobody'")
    for name in ("alloy", "cedar", "narrator", "belinda", "broom"):
        assert name in error


def test_queue_mode_lists_and_designs_voices(make_worker, voices_dir):
    worker = make_worker()
    listed = worker.run({"id": "l", "input": {"action": "list_voices"}}).as_output()
    assert listed["object"] == "list"
    by_id = {entry["id"]: entry for entry in listed["data"]}
    assert by_id["alloy"]["source"] == "preset" and by_id["alloy"]["description"]
    assert by_id["belinda"] == {
        "id": "belinda",
        "object": "voice",
        "name": "belinda",
        "description": None,
        "source": "library",
    }
    description = "A calm older woman, low and slow, Scottish accent."
    entry = worker.run(
        {"id": "d", "input": {"action": "design_voice", "name": "moira", "description": description, "seed": 5}}
    ).as_output()
    assert entry == {"id": "moira", "object": "voice", "name": "moira", "description": description, "source": "library"}
    assert worker.run({"input": {"action": "list_voices"}}).as_output()["data"][-1] == entry
    output = speak(worker, "moira")
    assert "error" not in output and not designed_warnings(output)
    # the same description and seed give the same clip (designed again under another name)
    worker.run(
        {"input": {"action": "design_voice", "name": "moira2", "description": description, "seed": 5}}
    ).as_output()
    with zipfile.ZipFile(voices_dir / "moira.voice") as one, zipfile.ZipFile(voices_dir / "moira2.voice") as two:
        assert one.read("audio.wav") == two.read("audio.wav")


def test_queue_mode_refuses_bad_actions_clearly(make_worker):
    worker = make_worker()
    cases = [
        ({"action": "dance"}, "action must be one of list_voices, design_voice"),
        ({"action": "design_voice", "name": "x"}, "description: Field required"),
        ({"action": "design_voice", "name": "../up", "description": "d"}, "name: name must be a plain name"),
        ({"action": "design_voice", "name": "auto", "description": "d"}, "reserved"),
        ({"action": "design_voice", "name": "x", "description": "  "}, "description must describe"),
        ({"action": "design_voice", "name": "x", "description": "d", "seed": -1}, "seed"),
        ({"action": "list_voices", "text": "hi"}, "text: Extra inputs are not permitted"),
    ]
    for job_input, wanted in cases:
        error = worker.run({"input": job_input}).as_output().get("error", "")
        assert error.startswith("invalid_input: ") and wanted in error, (job_input, error)
    assert worker.designer.designed == 0


def test_a_design_that_gives_no_speech_fails_clearly_and_stores_nothing(make_worker, voices_dir):
    """Seeds 9, 10 and 11 make the tiny model end the sentence within half a second (measured)."""
    worker = make_worker()
    job_input = {"action": "design_voice", "name": "mute", "description": "A calm voice.", "seed": 9}
    error = worker.run({"input": job_input}).as_output()["error"]
    assert error.startswith(
        "generation_failed: designing the voice 'mute' gave under 0.5 s of audio with seeds 9 to 11"
    )
    assert not (voices_dir / "mute.voice").exists() and worker.designer.designed == 0


@pytest.mark.slow
def test_the_queue_handler_designs_a_voice(subprocess_env, voices_dir):
    """``python handler.py --test_input`` (the runpod SDK's local mode) with a design action."""
    job_input = {"action": "design_voice", "name": "hugo", "description": "A deep calm voice.", "seed": 5}
    proc = run_test_input(subprocess_env, job_input)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    output = job_result(proc.stdout)["output"]
    assert output == {
        "id": "hugo",
        "object": "voice",
        "name": "hugo",
        "description": "A deep calm voice.",
        "source": "library",
    }
    assert (voices_dir / "hugo.voice").is_file()


def test_an_unwritable_voice_library_gives_a_clear_error(make_worker, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where VOICES_DIR's parent should be")
    worker = make_worker({"VOICES_DIR": str(blocker / "voices")})
    error = speak(worker, "alloy")["error"]
    assert error.startswith("generation_failed: the voice library VOICES_DIR=") and "writable" in error


def test_an_unknown_voice_in_a_large_library_lists_sixty_names_and_says_how_many_more(make_worker, voices_dir):
    clip = (voices_dir / "belinda.wav").read_bytes()
    for n in range(40):
        (voices_dir / f"v{n:02d}.wav").write_bytes(clip)
    error = speak(make_worker(), "nobody")["error"]
    total = 40 + 2 + len(presets())  # belinda, broom
    assert f"and {total - 60} more (GET /v1/audio/voices, or the list_voices action)" in error


def test_a_design_without_a_seed_uses_the_presets_default(make_worker, voices_dir):
    worker = make_worker()
    entry = worker.run(
        {"input": {"action": "design_voice", "name": "plain", "description": "A calm voice."}}
    ).as_output()
    assert entry["source"] == "library", entry
    with zipfile.ZipFile(voices_dir / "plain.voice") as archive:
        assert archive.read("transcript.txt").decode() == presets()["alloy"].sentence
