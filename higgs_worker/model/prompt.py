"""The Higgs chat prompt, built from text and audio *codes* (not waveforms).

The checkpoint's chat template takes waveforms and re-encodes them on every call.
Chunked generation feeds earlier generated audio back as context, so this module
writes the same prompt text as the template and pairs each audio placeholder with
codes that are already known. ``tests/model/test_prompt.py`` checks the text against the
checkpoint's own template.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .spec import SPEC

SYSTEM_SINGLE = "Generate audio following instruction."
SYSTEM_DIALOGUE = (
    "You are an AI assistant designed to convert text into speech.\n"
    "If the user's message includes a [SPEAKER*] tag, do not read out the tag and generate "
    "speech for the following text, using the specified voice.\n"
    "If no speaker tag is present, select a suitable voice on your own."
)

AUDIO_BOS = SPEC.prompt.audio_bos
AUDIO_OUT = SPEC.prompt.audio_out
AUDIO_EOS = SPEC.prompt.audio_eos


@dataclass
class AudioClip:
    """Audio codes of shape (num_codebooks, frames), without stream bos/eos."""

    codes: torch.Tensor


@dataclass
class Turn:
    role: str  # "user" (text) or "assistant" (audio)
    text: str | None = None
    audio: AudioClip | None = None


@dataclass
class Prompt:
    system: str
    scene: list[str | AudioClip] = field(default_factory=list)  # texts and speaker clips
    turns: list[Turn] = field(default_factory=list)


def as_conversation(prompt: Prompt) -> list[dict]:
    """The same prompt in the chat-template message format (audio as placeholders)."""
    messages = [{"role": "system", "content": [{"type": "text", "text": prompt.system}]}]
    if prompt.scene:
        content = [
            {"type": "text", "text": item} if isinstance(item, str) else {"type": "audio", "audio": item}
            for item in prompt.scene
        ]
        messages.append({"role": "scene", "content": content})
    for turn in prompt.turns:
        if turn.role == "assistant":
            messages.append({"role": "assistant", "content": [{"type": "audio", "audio": turn.audio}]})
        else:
            messages.append({"role": turn.role, "content": [{"type": "text", "text": turn.text}]})
    return messages


def render(prompt: Prompt, bos_token: str) -> tuple[str, list[AudioClip]]:
    """Prompt text with one ``<|AUDIO_OUT|>`` placeholder per clip, and the clips in order."""
    clips: list[AudioClip] = []
    parts = [bos_token, "<|start_header_id|>system<|end_header_id|>\n\n", prompt.system.strip()]
    if prompt.scene:
        parts.append("\n\n<|scene_desc_start|>\n")
        items = prompt.scene
        for index, item in enumerate(items):
            last = index == len(items) - 1
            if isinstance(item, str):
                parts.append(item.strip())
                if index == 0 and not last:
                    parts.append("\n\n")
                elif index > 0 and not last and isinstance(items[index + 1], str):
                    parts.append("\n")
            else:
                clips.append(item)
                parts.append(f" {AUDIO_BOS}{AUDIO_OUT}{AUDIO_EOS}")
                if not last:
                    parts.append("\n")
        parts.append("\n<|scene_desc_end|>")
    parts.append("<|eot_id|>")
    for turn in prompt.turns:
        parts.append(f"<|start_header_id|>{turn.role}<|end_header_id|>\n\n")
        if turn.role == "assistant":
            clips.append(turn.audio)
            parts.append(f"{AUDIO_BOS}{AUDIO_OUT}{AUDIO_EOS}")
        else:
            parts.append((turn.text or "").strip())
        parts.append("<|eot_id|>")
    parts.append(f"<|start_header_id|>assistant<|end_header_id|>\n\n{AUDIO_BOS}")
    return "".join(parts), clips


def patterned_rows(codes: torch.Tensor, processor) -> torch.Tensor:
    """Codes (num_codebooks, frames) -> the rows the model reads: stream bos and eos added
    and the delay pattern applied by the processor, (frames + 2 + num_codebooks - 1, num_codebooks)."""
    n = codes.shape[0]
    framed = torch.cat(
        [
            codes.new_full((n, 1), processor.audio_stream_bos_id),
            codes,
            codes.new_full((n, 1), processor.audio_stream_eos_id),
        ],
        dim=1,
    )
    return processor.build_delay_pattern(framed.unsqueeze(0))[0].transpose(0, 1)


def tokenize(prompt: Prompt, processor) -> dict:
    """input_ids, attention_mask and audio_input_ids(+mask) for the model, each audio
    placeholder expanded to as many positions as its clip has rows (as the processor does)."""
    tokenizer = processor.tokenizer
    text, clips = render(prompt, tokenizer.bos_token)
    if clips:
        patterned = [patterned_rows(clip.codes.cpu(), processor) for clip in clips]
        pieces = text.split(AUDIO_OUT)
        expanded = [pieces[0]]
        for rows, piece in zip(patterned, pieces[1:], strict=True):
            expanded += [processor.get_audio_tokens(rows.shape[0]), piece]
        text = "".join(expanded)
    encoded = tokenizer(text, add_special_tokens=False, return_tensors="pt")
    batch = {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}
    if clips:
        audio = torch.cat(patterned, dim=0).unsqueeze(0)
        batch["audio_input_ids"] = audio
        batch["audio_input_ids_mask"] = torch.ones(audio.shape[:2], dtype=torch.bool)
    return batch
