"""Designing a voice from a description: one generation, kept in the library, cloned after.

A voice is designed by generating one fixed sentence with a fixed seed, the description
given as the speaker's description in the prompt's scene (exactly what a job's
``speakers: {"SPEAKER0": {"description": ...}}`` does, ``synthesis.build_voice_setup``).
The clip and the sentence (its transcript) and the description are published in the voice
library as one new version (``VoiceLibrary.publish``: one atomic rename); every later
use reads that version and clones it, so the voice stays the same across requests,
chunks and workers.

Preset voices (``io/presets.py``) are designed this way on their first use. Concurrent first
uses design once: a lock per name, held around "still missing? generate, publish", in this
process (a thread lock) and across processes sharing the volume (a ``filelock`` file in
VOICES_DIR/.design-locks), so the second waits and then finds the voice in the library.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import soundfile as sf
from filelock import FileLock, Timeout

from .contract.errors import GENERATION_FAILED, WorkerError
from .contract.schema import MODEL_SAMPLE_RATE, ChunkMethod, SpeakerVoice, SynthesisRequest
from .io.presets import Preset, design_defaults
from .io.voices import VoiceLibrary

log = logging.getLogger(__name__)

LOCK_TIMEOUT_SECONDS = 600.0  # a design takes seconds on a GPU; a lock held longer is a stuck worker
MIN_CLIP_SECONDS = 0.5
LOCK_FOLDER = ".design-locks"  # in VOICES_DIR: one lock file a name (never read as a voice)
ATTEMPTS = 3  # a generation that ended at once is tried again with the next seed (seed + 1, + 2)

# runs one design request on the model (holding a generation slot) and returns its audio at 24 kHz
GenerateFn = Callable[[SynthesisRequest], np.ndarray]


def design_request(description: str, seed: int, sentence: str) -> SynthesisRequest:
    """The job that designs a voice: the sentence spoken by SPEAKER0 described as ``description``."""
    return SynthesisRequest(
        text=f"[SPEAKER0] {sentence}",
        speakers={"SPEAKER0": SpeakerVoice(description=description)},
        seed=seed,
        chunk_method=ChunkMethod.none,
    )


class VoiceDesigner:
    def __init__(self, library: VoiceLibrary, lock_timeout: float = LOCK_TIMEOUT_SECONDS):
        self.library = library
        self.lock_timeout = lock_timeout
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self.designed = 0  # voices this process designed (generations made)

    @contextmanager
    def locked(self, name: str) -> Iterator[None]:
        """Held by one designer of ``name`` at a time, in this process and on the volume."""
        with self._locks_guard:
            local = self._locks.setdefault(name, threading.Lock())
        if not local.acquire(timeout=self.lock_timeout):
            raise WorkerError(GENERATION_FAILED, f"the voice {name!r} is being designed elsewhere; try again")
        try:
            folder = self.library.folder / LOCK_FOLDER
            try:
                folder.mkdir(parents=True, exist_ok=True)
                lock = FileLock(folder / f"{name}.lock", timeout=self.lock_timeout)
                lock.acquire()
            except Timeout:
                raise WorkerError(
                    GENERATION_FAILED, f"the voice {name!r} is being designed by another worker; try again"
                ) from None
            except OSError as exc:
                raise _unwritable(self.library, exc) from None
            try:
                yield
            finally:
                lock.release()
        finally:
            local.release()

    def ensure_preset(self, preset: Preset, generate: GenerateFn) -> bool:
        """The preset in the library (designed now unless it is there); True when this call designed it."""
        with self.locked(preset.name):
            if self.library.has(preset.name):
                return False
            self._design(preset.name, preset.description, preset.seed, preset.sentence, generate)
            return True

    def design(self, name: str, description: str, seed: int | None, generate: GenerateFn) -> None:
        """Design ``name`` from ``description`` (replacing a library voice of that name)."""
        sentence, default_seed = design_defaults()
        with self.locked(name):
            self._design(name, description, default_seed if seed is None else seed, sentence, generate)

    def _design(self, name: str, description: str, seed: int, sentence: str, generate: GenerateFn) -> None:
        started = time.perf_counter()
        for attempt in range(ATTEMPTS):  # the same seeds in the same order: still one voice per seed
            audio = generate(design_request(description, (seed + attempt) % 2**32, sentence))
            if len(audio) >= MIN_CLIP_SECONDS * MODEL_SAMPLE_RATE:
                seed = (seed + attempt) % 2**32
                break
            log.info(
                "designing voice %s: seed %d gave %.2f s of audio; next seed",
                name,
                seed + attempt,
                len(audio) / MODEL_SAMPLE_RATE,
            )
        else:
            raise WorkerError(
                GENERATION_FAILED,
                f"designing the voice {name!r} gave under {MIN_CLIP_SECONDS} s of audio with seeds {seed} to "
                f"{seed + ATTEMPTS - 1}; try another seed or description",
            )
        buffer = io.BytesIO()
        sf.write(buffer, np.asarray(audio, dtype=np.float32), MODEL_SAMPLE_RATE, format="WAV", subtype="PCM_16")
        try:
            self.library.publish(name, buffer.getvalue(), sentence, description=description)
        except OSError as exc:
            raise _unwritable(self.library, exc) from None
        self.designed += 1
        log.info(
            "voice %s designed (%.2f s clip, seed %d) in %.1f s",
            name,
            len(audio) / MODEL_SAMPLE_RATE,
            seed,
            time.perf_counter() - started,
        )


def _unwritable(library: VoiceLibrary, exc: OSError) -> WorkerError:
    return WorkerError(
        GENERATION_FAILED,
        f"the voice library VOICES_DIR={library.folder} cannot be written ({type(exc).__name__}); "
        "a designed voice is kept there: attach a network volume or set VOICES_DIR to a writable folder",
    )
