"""From a validated request to audio: voices in context, chunks in order, one seed.

The voice is kept across chunks by keeping the reference example(s) and the last
``CONTEXT_CHUNKS`` generated chunks (their text and their audio codes) in the prompt.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from .chunking import has_speaker_tags, speaker_of, split_text
from .engine import Engine, Sampling
from .prompt import SYSTEM_DIALOGUE, SYSTEM_SINGLE, AudioClip, Prompt, Turn
from .schema import ReferenceAudio, SynthesisRequest

CONTEXT_CHUNKS = 2

# resolve(voice name or reference audio) -> (codes, transcript or None)
ClipResolver = Callable[[str | ReferenceAudio], tuple[AudioClip, str | None]]


@dataclass
class VoiceSetup:
    system: str
    scene: list[str | AudioClip] = field(default_factory=list)
    examples: list[Turn] = field(default_factory=list)


@dataclass
class ChunkAudio:
    text: str  # the chunk as generated (with its [SPEAKERn] tag, if any)
    speaker: str | None  # the SPEAKERn label the chunk starts with
    audio: np.ndarray  # float32 at the model's rate


@dataclass
class Synthesis:
    audio: np.ndarray
    sample_rate: int
    num_chunks: int
    seed: int
    chunks: list[ChunkAudio] = field(default_factory=list)  # in play order


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


def sampling_for(request: SynthesisRequest, engine: Engine, chunk: str, cap: int) -> Sampling:
    return Sampling(
        temperature=request.temperature,
        top_p=request.top_p,
        top_k=request.top_k,
        ras_win_len=request.ras_win_len,
        ras_win_max_num_repeat=request.ras_win_max_num_repeat,
        max_new_tokens=request.max_new_tokens or engine.max_tokens_for(chunk, cap),
    )


def synthesize(
    engine: Engine,
    request: SynthesisRequest,
    setup: VoiceSetup,
    max_new_tokens_cap: int,
    should_stop: Callable[[], bool] | None = None,
    on_chunk: Callable[[int, int], None] | None = None,
    on_audio: Callable[[np.ndarray], None] | None = None,
) -> Synthesis:
    """Generate every chunk in order; ``on_chunk(i, n)`` as chunk i (0-based) starts and,
    when streaming, ``on_audio(piece)`` for each piece of audio as soon as it is decoded."""
    seed = request.seed if request.seed is not None else random.SystemRandom().randrange(2**32)
    chunks = split_text(request.text, request.chunk_method.value, request.chunk_max_words)
    history: list[Turn] = []
    pieces: list[np.ndarray] = []
    done: list[ChunkAudio] = []
    with engine.lock:
        torch.manual_seed(seed)
        for index, chunk in enumerate(chunks):
            if on_chunk is not None:
                on_chunk(index, len(chunks))
            prompt = Prompt(
                system=setup.system,
                scene=list(setup.scene),
                turns=setup.examples + history[-2 * CONTEXT_CHUNKS :] + [Turn("user", text=chunk)],
            )
            sampling = sampling_for(request, engine, chunk, max_new_tokens_cap)
            streamer = engine.streaming_decoder() if on_audio is not None else None
            rows = []
            for row in engine.generate_rows(prompt, sampling, should_stop):
                rows.append(row)
                for piece in streamer.push(row) if streamer else ():
                    on_audio(piece)
            for piece in streamer.finish() if streamer else ():
                on_audio(piece)
            codes = engine.codes_from_rows(torch.stack(rows)) if rows else engine.no_codes()
            audio = engine.decode_codes(codes)
            pieces.append(audio)
            done.append(ChunkAudio(chunk, speaker_of(chunk), audio))
            history += [Turn("user", text=chunk), Turn("assistant", audio=AudioClip(codes))]
    audio = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
    return Synthesis(audio=audio, sample_rate=engine.sample_rate, num_chunks=len(chunks), seed=seed, chunks=done)
