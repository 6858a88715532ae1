"""The voice library read as one version a voice: NAME.voice (one file, one rename) and the
flat NAME.wav + NAME.txt pair that existing volumes hold. Replacements and deletions are
made to happen in the middle of a read (through the ``known`` hook, called between opening
the files and reading the audio), so every interleaving asserted here really happens."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from higgs_worker.contract.errors import WorkerError
from higgs_worker.io.voices import VoiceLibrary, pack
from tests.conftest import ROOT, wav_bytes

OLD, NEW = wav_bytes(1.0), wav_bytes(1.5)


@pytest.fixture
def library(tmp_path) -> VoiceLibrary:
    return VoiceLibrary(str(tmp_path / "voices"))


def flat(library: VoiceLibrary, name: str, audio: bytes, transcript: str | None) -> None:
    library.folder.mkdir(parents=True, exist_ok=True)
    (library.folder / f"{name}.wav").write_bytes(audio)
    if transcript is not None:
        (library.folder / f"{name}.txt").write_text(transcript)


def test_publish_writes_one_file_and_replaces_a_flat_pair(library):
    flat(library, "vx", OLD, "old words")
    library.publish("vx", NEW, "  new words ")
    assert sorted(p.name for p in library.folder.iterdir()) == ["vx.voice"]
    with zipfile.ZipFile(library.folder / "vx.voice") as archive:
        assert archive.read("audio.wav") == NEW and archive.read("transcript.txt") == b"new words"
        assert all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())
    version = library.read("vx")
    assert (version.audio, version.transcript) == (NEW, "new words")


def test_flat_pairs_of_existing_libraries_are_read_as_they_are(library):
    flat(library, "belinda", OLD, "The sun rises in the east.\n")
    flat(library, "quiet", NEW, None)
    assert library.names() == ["belinda", "quiet"]
    assert library.read("belinda").transcript == "The sun rises in the east."
    assert library.read("quiet").audio == NEW and library.read("quiet").transcript is None


def test_a_pack_wins_over_a_flat_pair_of_the_same_name(library):
    flat(library, "vx", OLD, "flat words")
    (library.folder / "vx.voice").write_bytes(pack(NEW, "packed words"))
    version = library.read("vx")
    assert (version.audio, version.transcript) == (NEW, "packed words")
    assert library.names() == ["vx"]


def test_a_version_replaced_in_the_middle_of_a_read_is_read_whole(library):
    library.publish("vx", OLD, "old words")

    def replace_now(_key) -> bool:
        library.publish("vx", NEW, "new words")
        return False

    version = library.read("vx", known=replace_now)  # opened before the rename: the old file, whole
    assert (version.audio, version.transcript) == (OLD, "old words")
    again = library.read("vx")
    assert (again.audio, again.transcript) == (NEW, "new words") and again.key != version.key


def test_a_flat_pair_packed_in_the_middle_of_a_read_is_read_again(library):
    flat(library, "vx", OLD, "old words")
    calls = []

    def pack_now(_key) -> bool:
        if not calls:
            library.publish("vx", NEW, "new words")  # removes the flat pair after the rename
        calls.append(1)
        return False

    version = library.read("vx", known=pack_now)
    assert (version.audio, version.transcript) == (NEW, "new words")
    assert len(calls) == 2


def test_a_voice_deleted_in_the_middle_of_a_read_is_whole_or_a_clear_error(library):
    library.publish("packed", OLD, "packed words")
    deleted = library.read("packed", known=lambda _key: library.delete("packed") and False)
    assert (deleted.audio, deleted.transcript) == (OLD, "packed words")  # the previous whole version
    flat(library, "plain", OLD, "plain words")
    with pytest.raises(WorkerError) as error:
        library.read("plain", known=lambda _key: library.delete("plain") and False)
    assert error.value.code == "invalid_input" and "unknown voice 'plain'" in error.value.message


def test_the_key_is_the_version_read_and_a_known_version_is_not_read_again(library):
    library.publish("vx", OLD, "words")
    first = library.read("vx")
    assert library.read("vx").key == first.key
    cached = library.read("vx", known=lambda key: key == first.key)
    assert cached.audio is None and cached.transcript == "words"
    library.publish("vx", OLD, "words")  # the same content, a new version: a new key
    assert library.read("vx").key != first.key


def test_a_damaged_pack_is_a_clear_error(library):
    library.folder.mkdir(parents=True)
    (library.folder / "broken.voice").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(WorkerError) as error:
        library.read("broken")
    assert error.value.code == "reference_audio" and "upload it again" in error.value.message


def test_delete_removes_every_layout_and_temporary_files_are_not_voices(library):
    flat(library, "vx", OLD, "words")
    library.publish("other", OLD, None)
    (library.folder / ".upload-123.part").write_bytes(b"half")
    assert library.names() == ["other", "vx"]
    assert library.delete("vx") and library.delete("other") and not library.delete("other")
    assert [p.name for p in library.folder.iterdir()] == [".upload-123.part"]


def test_migrate_packs_flat_pairs_from_the_command_line(library):
    flat(library, "belinda", OLD, "The sun rises in the east.")
    (library.folder / "broom.flac").write_bytes(wav_bytes(1.0, fmt="FLAC"))
    library.publish("done", NEW, "already packed")
    result = subprocess.run(
        [sys.executable, "-m", "higgs_worker.io.voices", "migrate", str(library.folder)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "packed 2 voice(s)" in result.stdout
    assert sorted(p.name for p in library.folder.iterdir()) == ["belinda.voice", "broom.voice", "done.voice"]
    assert library.read("belinda").transcript == "The sun rises in the east." and library.read("belinda").audio == OLD
    with zipfile.ZipFile(library.folder / "broom.voice") as archive:
        assert archive.namelist() == ["audio.flac"]  # the clip's bytes as they were
