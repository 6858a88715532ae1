"""Add and remove voices of the library on the volume (``VOICES_DIR``) without a pod.

An upload is validated like reference audio (readable, 0.25 s to MAX_REFERENCE_SECONDS,
at most MAX_REFERENCE_BYTES) and stored as ``NAME.wav`` (16-bit, mono, 24 kHz: what the
model encodes) plus ``NAME.txt`` (its transcript). Files are written to a temporary name
in the folder and renamed into place, so a reader never sees half a voice; names are
plain names (``schema.check_name``) and every path is checked to stay in the folder.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import soundfile as sf

from ..contract.errors import REFERENCE_AUDIO, WorkerError
from ..contract.schema import MAX_DESCRIPTION_CHARS, MODEL_SAMPLE_RATE, check_name
from ..io.reference_audio import decode_reference
from ..io.voices import AUDIO_SUFFIXES

RESERVED = {"auto"}  # the HTTP door's name for "the model picks a voice"


class VoiceAdminError(ValueError):
    def __init__(self, status: int, message: str, code: str):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def _path(folder: Path, name: str, suffix: str) -> Path:
    path = folder / f"{name}{suffix}"
    if path.resolve().parent != folder.resolve():
        raise VoiceAdminError(400, "the voice name must stay inside VOICES_DIR", "invalid_voice_name")
    return path


def check_voice_name(name: str) -> str:
    try:
        check_name(name, "name")
    except ValueError as exc:
        raise VoiceAdminError(400, str(exc), "invalid_voice_name") from None
    if name.lower() in RESERVED:
        raise VoiceAdminError(400, f"{name!r} is reserved (it means: the model picks a voice)", "invalid_voice_name")
    return name


def _write_atomic(path: Path, data: bytes) -> None:
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".upload-", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def save_voice(folder: str, name: str, data: bytes, transcript: str | None, max_bytes: int, max_seconds: float) -> dict:
    """Validate and store a voice; return its description. Replaces a voice of that name."""
    check_voice_name(name)
    if len(data) > max_bytes:
        raise VoiceAdminError(
            413, f"the audio file is larger than {max_bytes} bytes (MAX_REFERENCE_BYTES)", "file_too_large"
        )
    if transcript is not None and len(transcript) > MAX_DESCRIPTION_CHARS * 5:
        raise VoiceAdminError(
            400, f"the transcript is longer than {MAX_DESCRIPTION_CHARS * 5} characters", "transcript_too_long"
        )
    try:
        waveform = decode_reference(data, max_seconds)
    except WorkerError as exc:
        message = exc.message if exc.code == REFERENCE_AUDIO else str(exc)
        raise VoiceAdminError(400, message.replace("reference audio", "the voice's audio"), "invalid_audio") from None
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    sf.write(buffer, waveform, MODEL_SAMPLE_RATE, format="WAV", subtype="PCM_16")
    text_path = _path(root, name, ".txt")
    if transcript and transcript.strip():
        _write_atomic(text_path, transcript.strip().encode("utf-8"))
    else:
        text_path.unlink(missing_ok=True)
    _write_atomic(_path(root, name, ".wav"), buffer.getvalue())
    for suffix in AUDIO_SUFFIXES:  # an older file of another type would shadow nothing, but confuse
        if suffix != ".wav":
            _path(root, name, suffix).unlink(missing_ok=True)
    return {
        "id": name,
        "object": "voice",
        "name": name,
        "duration_s": round(len(waveform) / MODEL_SAMPLE_RATE, 3),
        "transcript": bool(transcript and transcript.strip()),
    }


def delete_voice(folder: str, name: str) -> bool:
    """Remove a voice's files; False when there was no such voice."""
    try:
        check_name(name, "name")
    except ValueError as exc:
        raise VoiceAdminError(400, str(exc), "invalid_voice_name") from None
    root = Path(folder)
    if not root.is_dir():
        return False
    found = False
    for suffix in (*AUDIO_SUFFIXES, ".txt"):
        path = _path(root, name, suffix)
        if path.is_file():
            path.unlink()
            found = found or suffix != ".txt"
    return found
