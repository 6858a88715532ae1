"""What a Higgs Audio release is, in one place: the config ``model_type`` of its two repos,
its audio frame rate, sample rate and codebooks, its prompt's audio markers, the prefill piece
and the memory plan's measured coefficients.

``HIGGS_AUDIO_V2`` is the release this worker serves (``SPEC``). The engine checks it
against the loaded configs (``from_configs``: the values the configs have win, and the
engine's ``spec`` is that one); the pace, the runaway guard, the HTTP routes, the memory plan
and the scheduler read the frame rate, the prefill piece and the coefficients from here.
Another release is one more ``ModelSpec`` here (its coefficients measured with
``benchmarks/memory_coefficients.py``) plus its tests.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..contract.schema import MODEL_SAMPLE_RATE


@dataclass(frozen=True)
class PromptTokens:
    """The chat prompt's audio markers (``model/prompt.py`` writes the template's text with them)."""

    audio_bos: str  # an audio stream begins (the prompt ends with it: generation starts there)
    audio_out: str  # one clip's placeholder, paired with its codes
    audio_eos: str  # an audio stream ends


@dataclass(frozen=True)
class ModelSpec:
    name: str
    model_type: str  # config.json ``model_type`` of MODEL_REPO
    tokenizer_type: str  # and of TOKENIZER_REPO (the audio tokenizer)
    frames_per_second: int  # audio frames (one row of codes each) a second: the audio tokenizer's frame_rate
    sample_rate: int  # the audio tokenizer's rate (Hz): what the worker's audio pipeline assumes
    num_codebooks: int  # codes per frame (the model config's num_codebooks)
    prompt: PromptTokens
    prefill_tokens: int  # prompt tokens per prefill piece (scheduler), whose activations the plan reserves
    # Memory plan coefficients (model/memory_plan.py; measured with benchmarks/memory_coefficients.py)
    decode_bytes_per_frame: float  # the audio tokenizer decoding one frame
    encode_bytes_per_second: float  # and encoding one second of reference audio
    prefill_bytes_per_token_hidden: int  # x dtype bytes: one prefill token's activations per hidden unit

    def from_configs(self, model_config: Any, tokenizer_config: Any) -> ModelSpec:
        """This release with the values the loaded configs state (``num_codebooks``,
        ``frame_rate``, ``sample_rate``); a config without one keeps the value here."""
        return replace(
            self,
            num_codebooks=getattr(model_config, "num_codebooks", self.num_codebooks),
            frames_per_second=getattr(tokenizer_config, "frame_rate", self.frames_per_second),
            sample_rate=getattr(tokenizer_config, "sample_rate", self.sample_rate),
        )


HIGGS_AUDIO_V2 = ModelSpec(
    name="higgs-audio-v2",
    model_type="higgs_audio_v2",
    tokenizer_type="higgs_audio_v2_tokenizer",
    frames_per_second=25,
    sample_rate=MODEL_SAMPLE_RATE,
    num_codebooks=8,
    prompt=PromptTokens(audio_bos="<|audio_out_bos|>", audio_out="<|AUDIO_OUT|>", audio_eos="<|audio_eos|>"),
    prefill_tokens=512,
    decode_bytes_per_frame=0.58e6,  # measured: 0.55 MiB per frame (25, 100 and 400 frames)
    encode_bytes_per_second=31.1e6,  # measured: 29.6 MiB per second of audio (2, 8 and 30 s)
    prefill_bytes_per_token_hidden=12,  # measured 24 B in bf16 (512 tokens, 3072 hidden)
)

SPEC = HIGGS_AUDIO_V2  # the release this worker serves
