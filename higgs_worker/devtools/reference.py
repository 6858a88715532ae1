"""The reference path of the benchmark: transformers' own ``generate()`` on the engine's model,
as transformers' docs show it (no scheduler, no slot cache, no compiled step)."""

from __future__ import annotations

import torch

from ..model.engine import Engine, Sampling
from ..model.prompt import Prompt


def generation_config(engine: Engine, sampling: Sampling):
    """``sampling`` as a transformers ``GenerationConfig`` for the engine's model."""
    from transformers import GenerationConfig

    config = engine.model.config
    greedy = sampling.temperature <= 0.0
    kwargs = {"max_new_tokens": sampling.max_new_tokens, "do_sample": not greedy}
    if not greedy:
        kwargs.update(
            temperature=sampling.temperature,
            top_p=sampling.top_p if sampling.top_p < 1.0 else None,
            top_k=sampling.top_k if sampling.top_k > 0 else None,
        )
    generation = GenerationConfig(
        **kwargs,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
    )
    if sampling.ras_win_len > 0 and sampling.ras_win_max_num_repeat > 0:
        # Read by HiggsAudioV2GenerationMixin._sample; 0 would mean "whole history".
        generation.ras_win_len = sampling.ras_win_len
        generation.ras_win_max_num_repeat = sampling.ras_win_max_num_repeat
    return generation


@torch.inference_mode()
def reference_generate_codes(engine: Engine, prompt: Prompt, sampling: Sampling) -> torch.Tensor:
    """The prompt's codes (num_codebooks, frames) through ``model.generate()``."""
    batch = engine.batch_for(prompt)
    prompt_frames = batch["audio_input_ids"].shape[1] if "audio_input_ids" in batch else 0
    output = engine.model.generate(**batch, generation_config=generation_config(engine, sampling))
    return engine.codes_from_rows(output[0, prompt_frames:])
