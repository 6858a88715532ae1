"""From a validated request to audio: voices in context, chunks in order, one seed.

The voice is kept across chunks by keeping the reference example(s) and the last
``CONTEXT_CHUNKS`` generated chunks (their text and their audio codes) in the prompt.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field

import numpy as np
import torch

from .contract.schema import ReferenceAudio, SynthesisRequest
from .model.engine import Engine, Sampling
from .model.prompt import SYSTEM_DIALOGUE, SYSTEM_SINGLE, AudioClip, Prompt, Turn
from .text.chunking import has_speaker_tags, speaker_of, split_text
from .text.normalize import Normalized, for_chunks, normalize
from .text.pace import bound_seconds, pace_from

CONTEXT_CHUNKS = 2

# resolve(voice name or reference audio) -> (codes, transcript or None)
ClipResolver = Callable[[str | ReferenceAudio], tuple[AudioClip, str | None]]


@dataclass
class VoiceSetup:
    system: str
    scene: list[str | AudioClip] = field(default_factory=list)
    examples: list[Turn] = field(default_factory=list)


@dataclass
class ChunkStarted:
    """Chunk ``index`` (0-based) of ``total`` starts generating."""

    index: int
    total: int


@dataclass
class AudioPiece:
    """A piece of streamed audio (float32 at the model's rate) of chunk ``chunk``."""

    chunk: int
    audio: np.ndarray


@dataclass
class ChunkAudio:
    """One chunk's text and its audio (and codes), for per-chunk results."""

    index: int
    text: str  # as generated, i.e. as read (with its [SPEAKERn] tag, if any)
    audio: np.ndarray  # float32 at the model's rate
    codes: torch.Tensor
    reading: Normalized | None = None  # the chunk as written and as read (None: read as written)

    @property
    def speaker(self) -> str | None:
        """The SPEAKERn label the chunk starts with, or None."""
        return speaker_of(self.text)


@dataclass
class Synthesis:
    """The whole result: the last item ``synthesize`` yields."""

    audio: np.ndarray
    sample_rate: int
    num_chunks: int
    seed: int
    chunks: list[ChunkAudio] = field(default_factory=list)
    runaways: list[RunawayStop] = field(default_factory=list)


@dataclass(frozen=True)
class RunawayLimits:
    """The runaway guard's limits (``RUNAWAY_SILENCE_SECONDS``, ``RUNAWAY_REPEAT_SECONDS``; 0: off)."""

    silence_seconds: float = 0.0
    repeat_seconds: float = 0.0


@dataclass
class RunawayStop:
    """Chunk ``chunk`` was ended by the runaway guard (``reason``: silence or repeat)."""

    chunk: int
    reason: str
    cut_seconds: float  # generated audio cut off (the trailing silence or repeated frames)

    def warning(self) -> str:
        what = "kept silent after speaking" if self.reason == "silence" else "repeated one audio frame"
        return (
            f"chunk {self.chunk + 1} {what}; it was ended there and {self.cut_seconds:.2f} s of it cut "
            "(the runaway guard: RUNAWAY_SILENCE_SECONDS, RUNAWAY_REPEAT_SECONDS)"
        )


SynthesisEvent = ChunkStarted | AudioPiece | Synthesis


def build_voice_setup(request: SynthesisRequest, resolve: ClipResolver) -> VoiceSetup:
    dialogue = bool(request.speakers) or has_speaker_tags(request.text)
    setup = VoiceSetup(system=SYSTEM_DIALOGUE if dialogue else SYSTEM_SINGLE)
    scene = request.scene_description.strip()
    if scene:
        setup.scene.append(scene)
    for key in sorted(request.speakers or {}, key=lambda k: int(k[7:])):
        speaker = request.speakers[key]
        source = speaker.voice or speaker.reference_audio
        if source is not None:
            clip, _ = resolve(source)
            label = f"{key}: {speaker.description.strip()}" if speaker.description else f"{key}:"
            setup.scene += [label, clip]
        else:
            setup.scene.append(f"{key}: {speaker.description.strip()}")
    source = request.voice or request.reference_audio
    if source is not None:
        clip, transcript = resolve(source)
        setup.examples = [Turn("user", text=transcript or ""), Turn("assistant", audio=clip)]
    return setup


def voice_pace(turns: list[Turn], frames_per_second: int) -> float | None:
    """Seconds per spoken unit the voice has shown in ``turns``: the slowest of its (user text,
    assistant audio) pairs (the reference clip with its transcript, the chunks generated so far)."""
    pairs = [
        (said.text or "", heard.audio.codes.shape[1] / frames_per_second)
        for said, heard in zip(turns, turns[1:], strict=False)
        if said.role == "user" and heard.role == "assistant" and heard.audio is not None
    ]
    return pace_from(pairs)


def chunk_budget(engine: Engine, chunk: str, cap: int, context: list[Turn]) -> int:
    """max_new_tokens for ``chunk``: its speech at the pace the voice showed in ``context`` (the
    prompt's example and history turns), or at a typical pace with more slack (text/pace.py)."""
    return engine.steps_for(bound_seconds(chunk, voice_pace(context, engine.spec.frames_per_second)), cap)


def sampling_for(
    request: SynthesisRequest, engine: Engine, chunk: str, cap: int, context: list[Turn] | None = None
) -> Sampling:
    return Sampling(
        temperature=request.temperature,
        top_p=request.top_p,
        top_k=request.top_k,
        ras_win_len=request.ras_win_len,
        ras_win_max_num_repeat=request.ras_win_max_num_repeat,
        max_new_tokens=request.max_new_tokens or chunk_budget(engine, chunk, cap, context or []),
    )


def read_aloud(request: SynthesisRequest) -> Normalized:
    """The job's text as the model reads it: normalised (text/normalize) unless
    ``normalize: false``; speaker tags and the model's own tags as written."""
    return normalize(request.text) if request.normalize else Normalized.unchanged(request.text)


def synthesize(
    engine: Engine,
    request: SynthesisRequest,
    setup: VoiceSetup,
    max_new_tokens_cap: int,
    should_stop: Callable[[], bool] | None = None,
    stream: bool = False,
    runaway: RunawayLimits | None = None,
) -> Iterator[SynthesisEvent]:
    """Generate every chunk in order. Yields ``ChunkStarted`` as each chunk starts, with
    ``stream`` an ``AudioPiece`` for each piece of audio as soon as it is decoded, and the
    ``Synthesis`` last. The job's generator (seeded once) is carried across its chunks, so
    its draws depend on its seed alone; what other jobs share the decode steps changes its
    logits by rounding at most (docs/reproducibility.md).
    With ``runaway`` limits, a chunk that keeps silent after speaking or repeats one frame is
    ended there and cut back (``model/runaway.py``); ``Synthesis.runaways`` says which."""
    seed = request.seed if request.seed is not None else random.SystemRandom().randrange(2**32)
    generator = engine.generator(seed)
    reading = read_aloud(request)
    texts = split_text(reading.spoken, request.chunk_method.value, request.chunk_max_words)
    readings = for_chunks(reading, texts)
    history: list[Turn] = []
    chunks: list[ChunkAudio] = []
    runaways: list[RunawayStop] = []
    limits = runaway or RunawayLimits()
    for index, text in enumerate(texts):  # as read
        yield ChunkStarted(index, len(texts))
        context = setup.examples + history[-2 * CONTEXT_CHUNKS :]
        prompt = Prompt(system=setup.system, scene=list(setup.scene), turns=context + [Turn("user", text=text)])
        sampling = sampling_for(request, engine, text, max_new_tokens_cap, context)
        streamer = engine.streaming_decoder() if stream else None
        rows = []
        guard = engine.runaway_guard(limits.silence_seconds, limits.repeat_seconds)
        with closing(engine.generate_rows(prompt, sampling, should_stop, generator)) as generated:
            for row in generated:  # leaving the loop early ends the sequence (closing the generator)
                rows.append(row)
                if guard.active and guard.push(row):
                    rows = rows[: guard.keep]
                    runaways.append(RunawayStop(index, guard.reason, guard.cut_seconds(engine.spec.frames_per_second)))
                    break
                for piece in streamer.push(row) if streamer else ():
                    yield AudioPiece(index, piece)
        for piece in streamer.finish() if streamer else ():
            yield AudioPiece(index, piece)
        codes = engine.codes_from_rows(torch.stack(rows)) if rows else engine.no_codes()
        chunks.append(ChunkAudio(index, text, engine.decode_codes(codes), codes, readings[index]))
        history += [Turn("user", text=text), Turn("assistant", audio=AudioClip(codes))]
    audio = np.concatenate([chunk.audio for chunk in chunks]) if chunks else np.zeros(0, dtype=np.float32)
    yield Synthesis(
        audio=audio, sample_rate=engine.sample_rate, num_chunks=len(texts), seed=seed, chunks=chunks, runaways=runaways
    )
