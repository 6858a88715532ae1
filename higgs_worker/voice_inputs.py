"""A job's voices (library voices and reference audio), in three steps that match the job's phases:

1. ``check_voices`` when the job arrives, before it waits for anything, and cheap (no audio
   decoded, no download: the HTTP door runs it before admission): every library voice is read
   once (``VoiceLibrary.read``: clip and transcript of one version, or the cached clip of that
   version), base64 is decoded to bytes, and the audio at hand has its header checked
   (readable, rate, channels, declared length); URLs pass the address check, S3 keys need a
   bucket. The job's own reference audio is held to MAX_JOB_REFERENCE_BYTES and its declared
   seconds to MAX_JOB_REFERENCE_SECONDS. Bad input fails here, whatever the load. A preset
   voice not yet in the library is marked ``preset``; an unknown name fails listing the
   library's and the presets' names.
1b. ``read_designed`` once the worker has designed those presets into the library
   (``voice_design``): each is then read like any library voice.
2. ``fetch_voices`` once the job is admitted, outside the generation slot: URLs are
   downloaded, S3 keys read, and every clip decoded to 24 kHz (network and CPU, no model);
   the job's own reference audio is held to both totals again, by its real bytes and seconds.
3. ``JobVoices.resolver`` inside the generation slot: clips are encoded by the audio
   tokenizer (on the device); a library voice's codes go in ``VoiceClips`` under the key of
   the version that was read.

A voice named twice in one job (``voice`` and a speaker, or two speakers) is read once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .contract.config import Settings
from .contract.errors import AUDIO_TOO_LONG, INVALID_INPUT, NOT_FOUND, WorkerError
from .contract.schema import (
    MODEL_SAMPLE_RATE,
    ReferenceAudio,
    SynthesisRequest,
    total_reference_bytes_message,
    total_reference_seconds_message,
)
from .io.presets import Preset
from .io.reference_audio import check_reference, decode_reference, fetch_reference, probe_reference
from .io.voices import VoiceLibrary
from .model.engine import Engine
from .model.prompt import AudioClip

VOICE_CACHE_SIZE = 32
MAX_LISTED = 60  # names an unknown-voice error lists at most

FetchS3 = Callable[[str, int], bytes]


class VoiceClips:
    """Encoded clips of library voices, keyed by the identity of the version read (LRU)."""

    def __init__(self, size: int = VOICE_CACHE_SIZE):
        self.size = size
        self._clips: OrderedDict[tuple, AudioClip] = OrderedDict()
        self._lock = threading.Lock()  # jobs run at once: the cache is shared

    def get(self, key: tuple) -> AudioClip | None:
        with self._lock:
            clip = self._clips.get(key)
            if clip is not None:
                self._clips.move_to_end(key)
            return clip

    def put(self, key: tuple, clip: AudioClip) -> None:
        with self._lock:
            self._clips[key] = clip
            self._clips.move_to_end(key)
            while len(self._clips) > self.size:
                self._clips.popitem(last=False)

    def __len__(self) -> int:
        return len(self._clips)


@dataclass
class VoiceInput:
    """One voice of a job, as it goes from checked to fetched to encoded."""

    transcript: str | None
    key: tuple | None = None  # library voice: the version read (cache key)
    reference: ReferenceAudio | None = None  # reference audio still to fetch (URL, S3 key)
    data: bytes | None = None  # audio bytes still to decode
    own: bool = False  # the job's own reference audio (held to MAX_JOB_REFERENCE_*), not the library's
    waveform: np.ndarray | None = None  # decoded, still to encode
    clip: AudioClip | None = None  # encoded
    preset: Preset | None = None  # a preset not yet designed into the library


@dataclass
class JobVoices:
    by_name: dict[str, VoiceInput] = field(default_factory=dict)
    by_reference: dict[int, VoiceInput] = field(default_factory=dict)  # id(ReferenceAudio) of the request

    def presets(self) -> dict[str, Preset]:
        """The presets this job uses that are not in the library yet (to design first)."""
        return {name: item.preset for name, item in self.by_name.items() if item.preset is not None}

    def items(self) -> list[VoiceInput]:
        return [*self.by_name.values(), *self.by_reference.values()]

    def find(self, source: str | ReferenceAudio) -> VoiceInput:
        return self.by_name[source] if isinstance(source, str) else self.by_reference[id(source)]

    def resolver(self, engine: Engine, clips: VoiceClips) -> Callable[[str | ReferenceAudio], tuple]:
        """``synthesis.build_voice_setup``'s resolver: (codes, transcript) of a voice of this job."""

        def resolve(source: str | ReferenceAudio) -> tuple[AudioClip, str | None]:
            item = self.find(source)
            if item.clip is None:
                assert item.waveform is not None, "fetch_voices runs before the voices are encoded"
                item.clip = engine.encode_audio(item.waveform)
                item.waveform = None
                if item.key is not None:
                    clips.put(item.key, item.clip)
            return item.clip, item.transcript

        return resolve


def sources(request: SynthesisRequest) -> list[str | ReferenceAudio]:
    """Every voice source of the request (library names and reference audio), in prompt order."""
    found: list[str | ReferenceAudio] = []
    for speaker in (request.speakers or {}).values():
        source = speaker.voice or speaker.reference_audio
        if source is not None:
            found.append(source)
    source = request.voice or request.reference_audio
    if source is not None:
        found.append(source)
    return found


def unknown_voice(name: str, library: VoiceLibrary, presets: dict[str, Preset]) -> WorkerError:
    names = sorted(set(library.names()) | set(presets))
    listing = ", ".join(names[:MAX_LISTED]) if names else "none"
    if len(names) > MAX_LISTED:
        listing += f" and {len(names) - MAX_LISTED} more (GET /v1/audio/voices, or the list_voices action)"
    return WorkerError(
        INVALID_INPUT,
        f"unknown voice {name!r}; available voices: {listing}. "
        "Use null for a voice the model picks, or reference_audio to clone one.",
        kind=NOT_FOUND,
        parameter="voice",
    )


def _read_library(name: str, library: VoiceLibrary, clips: VoiceClips, settings: Settings) -> VoiceInput:
    """A library voice's version, its audio header checked (decoded later, in ``fetch_voices``)."""
    held: dict[tuple, AudioClip] = {}

    def known(key: tuple) -> bool:  # holds the clip, so an eviction cannot lose it
        clip = clips.get(key)
        if clip is not None:
            held[key] = clip
        return clip is not None

    version = library.read(name, known)
    item = VoiceInput(version.transcript, key=version.key, data=version.audio, clip=held.get(version.key))
    if item.data is not None:
        probe_reference(item.data, settings.max_reference_seconds)
    return item


def check_voices(
    request: SynthesisRequest,
    library: VoiceLibrary,
    clips: VoiceClips,
    settings: Settings,
    presets: dict[str, Preset] | None = None,
) -> JobVoices:
    """Step 1 (no waiting, no decoding): raises ``WorkerError`` (invalid_input, reference_audio) on bad input."""
    presets = presets or {}
    voices = JobVoices()
    own_bytes, own_seconds = 0, 0.0
    for source in sources(request):
        if isinstance(source, str):
            if source in voices.by_name:
                continue
            if not library.has(source):
                if source not in presets:
                    raise unknown_voice(source, library, presets)
                voices.by_name[source] = VoiceInput(None, preset=presets[source])
                continue
            voices.by_name[source] = _read_library(source, library, clips, settings)
            continue
        data = check_reference(
            source, settings.max_reference_bytes, settings.allow_private_urls, settings.s3 is not None
        )
        item = VoiceInput(source.transcript, reference=None if data is not None else source, data=data, own=True)
        voices.by_reference[id(source)] = item
        if item.data is not None:  # unreadable or too long by its header: refused now, not after a wait
            own_bytes += len(item.data)
            own_seconds += probe_reference(item.data, settings.max_reference_seconds)
    _check_totals(own_bytes, own_seconds, settings)
    return voices


def read_designed(voices: JobVoices, library: VoiceLibrary, clips: VoiceClips, settings: Settings) -> None:
    """Step 1b: the job's presets, designed into the library meanwhile, read as library voices."""
    for name, item in list(voices.by_name.items()):
        if item.preset is not None:
            voices.by_name[name] = _read_library(name, library, clips, settings)


def _check_totals(size: int, seconds: float, settings: Settings) -> None:
    if size > settings.max_job_reference_bytes:
        raise WorkerError(INVALID_INPUT, total_reference_bytes_message(size, settings.max_job_reference_bytes))
    if seconds > settings.max_job_reference_seconds:
        raise WorkerError(INVALID_INPUT, total_reference_seconds_message(seconds, settings.max_job_reference_seconds))


def fetch_voices(voices: JobVoices, settings: Settings, fetch_s3: FetchS3 | None) -> None:
    """Step 2 (once admitted; network and CPU, outside the generation slot): URL and S3 references
    fetched, every clip decoded; the job's own reference audio held to its totals as it comes.
    A clip is decoded at most up to the seconds left of the job's total, so one job holds at most
    MAX_JOB_REFERENCE_SECONDS of its own decoded audio, whatever its headers said."""
    own_bytes, own_seconds = 0, 0.0
    for item in voices.items():
        if item.reference is not None:
            item.data = fetch_reference(
                item.reference,
                max_bytes=settings.max_reference_bytes,
                timeout=settings.url_timeout_seconds,
                allow_private=settings.allow_private_urls,
                fetch_s3=fetch_s3,
            )
            item.reference = None
        if item.data is None:
            continue
        limit = settings.max_reference_seconds
        if item.own:
            own_bytes += len(item.data)
            _check_totals(own_bytes, own_seconds, settings)
            limit = min(limit, settings.max_job_reference_seconds - own_seconds)
        try:
            item.waveform = decode_reference(item.data, limit)
        except WorkerError as exc:
            if limit < settings.max_reference_seconds and exc.kind == AUDIO_TOO_LONG:  # the job's total said no
                _check_totals(own_bytes, settings.max_job_reference_seconds + 1, settings)
            raise
        item.data = None
        if item.own:
            own_seconds += len(item.waveform) / MODEL_SAMPLE_RATE
