"""The voice library on the volume: ``NAME.wav`` (or .flac/.mp3/.ogg) + ``NAME.txt``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..contract.errors import INVALID_INPUT, WorkerError
from ..contract.schema import check_name

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")


@dataclass(frozen=True)
class VoiceFile:
    name: str
    audio_path: Path
    transcript: str | None
    version: tuple[int, int]  # (mtime_ns, size): a changed file is re-encoded


class VoiceLibrary:
    def __init__(self, folder: str):
        self.folder = Path(folder)

    def names(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted({p.stem for p in self.folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()})

    def find(self, name: str) -> VoiceFile:
        try:
            check_name(name, "voice")
        except ValueError as exc:
            raise WorkerError(INVALID_INPUT, str(exc)) from None
        root = self.folder.resolve()
        for suffix in AUDIO_SUFFIXES:
            path = self.folder / f"{name}{suffix}"
            if path.is_file() and path.resolve().parent == root:
                stat = path.stat()
                text_path = self.folder / f"{name}.txt"
                transcript = None
                if text_path.is_file() and text_path.resolve().parent == root:
                    transcript = text_path.read_text(encoding="utf-8", errors="replace").strip() or None
                return VoiceFile(name, path, transcript, (stat.st_mtime_ns, stat.st_size))
        known = self.names()
        listing = ", ".join(known[:30]) if known else "none (the library is empty)"
        raise WorkerError(
            INVALID_INPUT,
            f"unknown voice {name!r}; voices in VOICES_DIR: {listing}. "
            "Use null for a voice the model picks, or reference_audio to clone one.",
        )
