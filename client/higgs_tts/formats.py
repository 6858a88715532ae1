"""The audio formats the client names, in one place.

The client cannot import the worker, so it keeps its own copy of the worker's output formats;
tests/client/test_formats.py fails when this copy and the worker's format registry (its
contract/formats.py) differ.
"""

from __future__ import annotations

# A job's output_format values (``higgs-tts say --format``), in the worker's order.
OUTPUT_FORMATS: tuple[str, ...] = ("wav", "mp3", "flac", "ogg", "opus", "pcm")

# ``book``: the pieces are asked for in a lossless format (about half of wav's size, for transfer
# and storage); the chapter files are written here (soundfile's container and subtype), and the
# book file is always MP3 with ID3 chapters.
PIECE_FORMAT = "flac"
CHAPTER_FORMATS: dict[str, tuple[str, str]] = {
    "mp3": ("MP3", "MPEG_LAYER_III"),
    "flac": ("FLAC", "PCM_16"),
    "wav": ("WAV", "PCM_16"),
}


def listing(names) -> str:
    """``a, b or c``: the names as a help text or an error message lists them."""
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
