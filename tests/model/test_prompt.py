"""The prompt builder against the checkpoint's own chat template and processor."""

from __future__ import annotations

import pytest
import torch

from higgs_worker.model.prompt import (
    SYSTEM_DIALOGUE,
    SYSTEM_SINGLE,
    AudioClip,
    Prompt,
    Turn,
    as_conversation,
    patterned_rows,
    render,
    tokenize,
)


def clip(frames: int, seed: int = 0) -> AudioClip:
    generator = torch.Generator().manual_seed(seed)
    return AudioClip(torch.randint(0, 1024, (8, frames), generator=generator))


PROMPTS = {
    "smart voice": Prompt(SYSTEM_SINGLE, ["Audio is recorded from a quiet room."], [Turn("user", "Hello there.")]),
    "no scene": Prompt(SYSTEM_SINGLE, [], [Turn("user", "Hello.")]),
    "cloning": Prompt(
        SYSTEM_SINGLE,
        ["Audio is recorded from a quiet room."],
        [Turn("user", "Reference words."), Turn("assistant", audio=clip(5)), Turn("user", "New words.")],
    ),
    "dialogue voices": Prompt(
        SYSTEM_DIALOGUE,
        ["Audio is recorded from a quiet room.", "SPEAKER0:", clip(3), "SPEAKER1: masculine, deep"],
        [Turn("user", "[SPEAKER0] Hi. [SPEAKER1] Hello.")],
    ),
    "dialogue descriptions": Prompt(
        SYSTEM_DIALOGUE,
        ["Audio is recorded from a quiet room.", "SPEAKER0: feminine", "SPEAKER1: masculine"],
        [Turn("user", "[SPEAKER0] Hi.")],
    ),
}


@pytest.fixture(scope="module")
def tokenizer(tiny_models):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_models[0]))


@pytest.mark.parametrize("name", sorted(PROMPTS))
def test_render_matches_the_checkpoint_chat_template(tokenizer, name):
    prompt = PROMPTS[name]
    expected = tokenizer.apply_chat_template(as_conversation(prompt), tokenize=False, add_generation_prompt=True)
    text, clips = render(prompt, tokenizer.bos_token)
    assert text == expected
    assert len(clips) == text.count("<|AUDIO_OUT|>")


def test_patterned_rows_follow_the_delay_pattern(engine):
    codes = clip(6).codes
    rows = patterned_rows(codes, engine.processor)
    assert rows.shape == (6 + 2 + 7, 8)
    for k in range(8):  # codebook k: k + 1 stream-bos, its 6 codes, then stream-eos to the end
        assert rows[: k + 1, k].eq(1024).all() and torch.equal(rows[k + 1 : k + 7, k], codes[k])
        assert rows[k + 7 :, k].eq(1025).all()


def test_undo_delay_inverts_the_pattern(engine):
    codes = clip(9).codes
    rows = patterned_rows(codes, engine.processor)[1:-1]  # what the model emits between bos and the end
    assert torch.equal(engine.undo_delay(rows[: 9 + 7]), codes)
    for short in range(8):  # fewer rows than codebooks: no complete frame yet
        assert engine.undo_delay(rows[:short]).shape == (8, 0)


def test_tokenize_lines_up_placeholders_with_audio_rows(tokenizer, engine):
    prompt = PROMPTS["cloning"]
    delay_token = "<|reserved_special_token_6|>"
    batch = tokenize(prompt, engine.processor)
    ids = batch["input_ids"][0]
    audio_id = tokenizer.convert_tokens_to_ids("<|AUDIO_OUT|>")
    delay_id = tokenizer.convert_tokens_to_ids(delay_token)
    placeholders = int(((ids == audio_id) | (ids == delay_id)).sum())
    assert placeholders == batch["audio_input_ids"].shape[1] == 5 + 2 + 7
    assert batch["audio_input_ids_mask"].all()
    assert ids[-1] == tokenizer.convert_tokens_to_ids("<|audio_out_bos|>")
