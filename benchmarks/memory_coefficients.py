"""The workspace coefficients of the GPU memory plan (higgs_worker/model/memory_plan.py), measured.

    python benchmarks/memory_coefficients.py                         # ~2 minutes on 2 cores
    python benchmarks/memory_coefficients.py --frames 25,100,400 --seconds 2,8,30

Peak live tensor bytes (every tensor an operation creates, counted until it is freed; weights
and inputs made before are not counted) of the real-size modules with random weights, on the
CPU: the audio tokenizer decoding N frames and encoding S seconds (fp32, as the worker runs
it), and the text model's 512-token prefill piece (bf16, 2 of its 28 layers: activations live
one layer at a time). Activation sizes do not depend on the device; a GPU adds allocator
rounding and cuBLAS/cuDNN workspaces (the plan's margin). scripts/gpu-check.sh reports the
device's own peak. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import weakref
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
MIB = 2**20


class LiveBytes(TorchDispatchMode):
    """The peak of the bytes held by tensors created inside the block."""

    def __init__(self):
        super().__init__()
        self.live = self.peak = 0
        self.seen: set[int] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(out)[0]:
            if not isinstance(tensor, torch.Tensor):
                continue
            storage = tensor.untyped_storage()
            key, size = storage.data_ptr(), storage.nbytes()
            if key in self.seen or not size:
                continue
            self.seen.add(key)
            self.live += size
            self.peak = max(self.peak, self.live)
            weakref.finalize(storage, self._freed, key, size)
        return out

    def _freed(self, key: int, size: int) -> None:
        self.live -= size
        self.seen.discard(key)


def measure(fn) -> tuple[int, float]:
    counter = LiveBytes()
    started = time.perf_counter()
    with torch.inference_mode(), counter:
        fn()
    return counter.peak, time.perf_counter() - started


def codec_rows(frames: list[int], seconds: list[float]) -> list[dict]:
    from transformers import HiggsAudioV2TokenizerConfig, HiggsAudioV2TokenizerModel

    from higgs_worker.devtools.bench import full_size_tokenizer_config

    codec = HiggsAudioV2TokenizerModel(full_size_tokenizer_config(HiggsAudioV2TokenizerConfig)).eval()
    rows = []
    for count in frames:
        codes = torch.randint(0, 1024, (1, 8, count))
        peak, took = measure(lambda codes=codes: codec.decode(codes))
        rows.append({"what": f"decode {count} frames", "peak_mib": peak / MIB, "mib_per_frame": peak / MIB / count})
        print(f"{rows[-1]['what']:<26}{peak / MIB:>10.1f} MiB {peak / MIB / count:>8.3f} MiB/frame  ({took:.1f}s)")
    for length in seconds:
        audio = torch.randn(1, 1, int(24000 * length)) * 0.1
        peak, took = measure(lambda audio=audio: codec.encode(audio))
        rows.append({"what": f"encode {length:g} s", "peak_mib": peak / MIB, "mib_per_second": peak / MIB / length})
        print(f"{rows[-1]['what']:<26}{peak / MIB:>10.1f} MiB {peak / MIB / length:>8.2f} MiB/s      ({took:.1f}s)")
    return rows


def prefill_row(tokens: int) -> dict:
    from transformers import DynamicCache, HiggsAudioV2Config, HiggsAudioV2ForConditionalGeneration

    from higgs_worker.devtools.tiny_model import build_text_tokenizer, special_ids

    config = HiggsAudioV2Config(**special_ids(build_text_tokenizer()), num_hidden_layers=2)
    model = HiggsAudioV2ForConditionalGeneration(config).to(torch.bfloat16).eval()
    ids = torch.randint(0, 1000, (1, tokens))

    def prefill():
        model(input_ids=ids, cache=DynamicCache(config=config), use_cache=True, logits_to_keep=1)

    peak, took = measure(prefill)
    per = peak / (tokens * config.hidden_size)
    what = f"prefill {tokens} tokens"
    print(f"{what:<26}{peak / MIB:>10.1f} MiB {per:>8.1f} B per token x hidden (bf16; {took:.1f}s)")
    return {"what": what, "peak_mib": peak / MIB, "bytes_per_token_hidden": per}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", default="25,100", help="decode sizes (25 frames = 1 s)")
    parser.add_argument("--seconds", default="2,8", help="encode sizes (seconds of reference audio)")
    parser.add_argument("--prefill", type=int, default=512, help="prefill piece (tokens)")
    args = parser.parse_args()
    torch.manual_seed(0)
    rows = codec_rows([int(x) for x in args.frames.split(",")], [float(x) for x in args.seconds.split(",")])
    rows.append(prefill_row(args.prefill))
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
