"""Add and remove voices of the library on the volume (``VOICES_DIR``) without a pod.

An upload is validated like reference audio (readable, 0.25 s to MAX_REFERENCE_SECONDS,
at most MAX_REFERENCE_BYTES), converted to what the model encodes (16-bit mono 24 kHz WAV)
and published with its transcript as one new version, ``NAME.voice``, in one atomic rename
(``io.voices``): a job reads the old version or the new one, never the clip of one with the
transcript of the other. A flat ``NAME.wav`` + ``NAME.txt`` pair of that name is removed
after. Names are plain names (``schema.check_name``) and every path stays in the folder.
A folder that cannot be written (full, read-only, no permission) is ``507`` with the code
``voice_library_unwritable``: the request was fine, the server cannot store it.
"""

from __future__ import annotations

import io

import soundfile as sf

from ..contract.errors import REFERENCE_AUDIO, STORAGE, WorkerError
from ..contract.schema import MAX_DESCRIPTION_CHARS, MODEL_SAMPLE_RATE, check_name
from ..io.reference_audio import decode_reference
from ..io.voices import VoiceLibrary

RESERVED = {"auto"}  # the HTTP door's name for "the model picks a voice"
UNWRITABLE = 507  # Insufficient Storage: the folder is full or read-only


class VoiceAdminError(ValueError):
    def __init__(self, status: int, message: str, code: str):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def check_voice_name(name: str) -> str:
    try:
        check_name(name, "name")
    except ValueError as exc:
        raise VoiceAdminError(400, str(exc), "invalid_voice_name") from None
    if name.lower() in RESERVED:
        raise VoiceAdminError(400, f"{name!r} is reserved (it means: the model picks a voice)", "invalid_voice_name")
    return name


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
    buffer = io.BytesIO()
    sf.write(buffer, waveform, MODEL_SAMPLE_RATE, format="WAV", subtype="PCM_16")
    try:
        VoiceLibrary(folder).publish(name, buffer.getvalue(), transcript)
    except WorkerError as exc:
        raise _unwritable(exc) from None
    except ValueError as exc:
        raise VoiceAdminError(400, str(exc), "invalid_voice_name") from None
    return {
        "id": name,
        "object": "voice",
        "name": name,
        "duration_s": round(len(waveform) / MODEL_SAMPLE_RATE, 3),
        "transcript": bool(transcript and transcript.strip()),
    }


def delete_voice(folder: str, name: str) -> bool:
    """Remove a voice (every version and layout); False when there was no such voice."""
    try:
        check_name(name, "name")
    except ValueError as exc:
        raise VoiceAdminError(400, str(exc), "invalid_voice_name") from None
    try:
        return VoiceLibrary(folder).delete(name)
    except WorkerError as exc:
        raise _unwritable(exc) from None


def _unwritable(exc: WorkerError) -> VoiceAdminError:
    """The library's only error on writing (``storage``: the folder cannot be written) as 507."""
    assert exc.code == STORAGE, exc
    return VoiceAdminError(UNWRITABLE, exc.message, "voice_library_unwritable")
