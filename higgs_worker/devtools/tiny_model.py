"""Build a tiny Higgs Audio v2 checkpoint pair with random weights, for tests and demos.

The real weights cannot be downloaded here, so this writes two folders laid out like
the hub repos ``bosonai/higgs-audio-v2-generation-3B-base`` and
``bosonai/higgs-audio-v2-tokenizer``, built with transformers' own config classes:

- the generation model (``HiggsAudioV2ForConditionalGeneration``, DualFFN, 8 codebooks
  of 1024 codes + stream bos/eos), a byte-level text tokenizer carrying the special
  tokens of the Higgs chat format, a chat template, and the DAC feature extractor;
- the audio tokenizer (``HiggsAudioV2TokenizerModel``) at 24 kHz with a hop of 960
  samples (25 frames per second, as the real one) and a tiny HuBERT semantic model.

Random weights make noise, not speech. Usage::

    python -m higgs_worker.devtools.tiny_model --out .tiny-models
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SAMPLE_RATE = 24000
HOP_RATIOS = [8, 5, 4, 2, 3]  # 960 samples per frame -> 25 frames per second
NUM_CODEBOOKS = 8
CODEBOOK_SIZE = 1024
# 8 quantizers x 10 bits x 25 frames/s = 2 kbps, as the real tokenizer's top bandwidth
TARGET_BANDWIDTHS = [0.5, 1.0, 1.5, 2.0]

SPECIAL_TOKENS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|scene_desc_start|>",
    "<|scene_desc_end|>",
    "<|audio_bos|>",
    "<|AUDIO|>",
    "<|audio_out_bos|>",
    "<|AUDIO_OUT|>",
    "<|audio_eos|>",
    "<|reserved_special_token_6|>",
]

# A chat template in the Higgs format (system + scene description, then turns;
# assistant turns hold audio only; the generation prompt opens an audio output).
CHAT_TEMPLATE_FILE = Path(__file__).with_name("tiny_chat_template.jinja")


def build_text_tokenizer():
    """A byte-level BPE tokenizer (256 byte symbols, no merges) plus the Higgs specials."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {symbol: index for index, symbol in enumerate(sorted(alphabet))}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    core.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
        pad_token="<|end_of_text|>",
    )
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS})
    tokenizer.chat_template = CHAT_TEMPLATE_FILE.read_text()
    return tokenizer


def build_audio_tokenizer(seed: int = 0):
    import torch
    from transformers import HiggsAudioV2TokenizerConfig, HiggsAudioV2TokenizerModel

    torch.manual_seed(seed)
    config = HiggsAudioV2TokenizerConfig(
        sample_rate=SAMPLE_RATE,
        target_bandwidths=TARGET_BANDWIDTHS,
        codebook_size=CODEBOOK_SIZE,
        codebook_dim=8,
        acoustic_model_config={
            "encoder_hidden_size": 2,
            "downsampling_ratios": HOP_RATIOS,
            "upsampling_ratios": HOP_RATIOS,
            "decoder_hidden_size": 32,
            "sampling_rate": SAMPLE_RATE,
        },
        semantic_model_config={
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 32,
            "conv_dim": [16, 16, 16, 16, 16, 16, 16],
            "num_conv_pos_embeddings": 16,
            "num_conv_pos_embedding_groups": 4,
        },
    )
    model = HiggsAudioV2TokenizerModel(config).eval()
    # Random codebooks so that every code decodes to a different sound.
    with torch.no_grad():
        for layer in model.quantizer.quantizers:
            layer.codebook.embed.normal_()
            layer.codebook.embed_avg.copy_(layer.codebook.embed)
    if model.config.num_quantizers != NUM_CODEBOOKS or model.config.frame_rate != 25:
        raise RuntimeError("tiny audio tokenizer must have 8 codebooks at 25 frames/s")
    return model


def special_ids(tokenizer) -> dict:
    """The config fields that tie a generation model to the text tokenizer and the codebooks
    (8 codebooks of 1024 codes; ids 1024 and 1025 are the stream bos and eos)."""
    ids = tokenizer.convert_tokens_to_ids
    return {
        "num_codebooks": NUM_CODEBOOKS,
        "codebook_size": CODEBOOK_SIZE + 2,
        "audio_stream_bos_id": CODEBOOK_SIZE,
        "audio_stream_eos_id": CODEBOOK_SIZE + 1,
        "audio_token_id": ids("<|AUDIO_OUT|>"),
        "audio_bos_token_id": ids("<|audio_out_bos|>"),
        "audio_delay_token_id": ids("<|reserved_special_token_6|>"),
        "pad_token_id": ids("<|end_of_text|>"),
        "bos_token_id": ids("<|begin_of_text|>"),
        "eos_token_id": ids("<|eot_id|>"),
    }


def build_generation_model(tokenizer, seed: int = 0):
    import torch
    from transformers import GenerationConfig, HiggsAudioV2Config, HiggsAudioV2ForConditionalGeneration

    torch.manual_seed(seed)
    config = HiggsAudioV2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=8192,
        **special_ids(tokenizer),
    )
    model = HiggsAudioV2ForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        do_sample=True,
        temperature=1.0,
        top_p=0.95,
        top_k=50,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
    )
    return model


def build(out_dir: str | Path, seed: int = 0) -> tuple[Path, Path]:
    """Write ``out_dir/model`` and ``out_dir/tokenizer``; return both paths."""
    from transformers import DacFeatureExtractor

    out = Path(out_dir)
    model_dir, tokenizer_dir = out / "model", out / "tokenizer"
    tokenizer = build_text_tokenizer()
    model = build_generation_model(tokenizer, seed=seed)
    audio_tokenizer = build_audio_tokenizer(seed=seed)
    features = DacFeatureExtractor(sampling_rate=SAMPLE_RATE, hop_length=960, feature_size=1)

    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    features.save_pretrained(model_dir)
    # The real checkpoint's processor config names the tokenizer repo on the hub; the
    # worker must never follow it (that would reach for the network at load time).
    (model_dir / "processor_config.json").write_text(
        json.dumps({"processor_class": "HiggsAudioV2Processor", "audio_tokenizer": "bosonai/higgs-audio-v2-tokenizer"})
    )
    audio_tokenizer.save_pretrained(tokenizer_dir)
    features.save_pretrained(tokenizer_dir)
    return model_dir, tokenizer_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=".tiny-models", help="folder to write model/ and tokenizer/ into")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    model_dir, tokenizer_dir = build(args.out, seed=args.seed)
    print(json.dumps({"MODEL_PATH": str(model_dir.resolve()), "TOKENIZER_PATH": str(tokenizer_dir.resolve())}))


if __name__ == "__main__":
    main()
