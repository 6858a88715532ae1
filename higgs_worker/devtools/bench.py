"""Benchmarks that print figures: the worker's engine against the reference path.

    python -m higgs_worker.devtools.bench                      # tiny model on the CPU (CI mode)
    python -m higgs_worker.devtools.bench --full-size-random   # real architecture, random weights, GPU

(The worker's cold start and per-job overhead: ``python benchmarks/cold_start.py``.)

Synthesis (both paths in the same run, the same prompt, a fixed number of frames: the
stream-eos id is moved out of reach so that neither path stops early):

- reference: ``model.generate()`` then a one-piece decode, as transformers' docs show it;
- engine: the worker's decode loop (static cache + compiled step on CUDA) with
  streaming decode, first audio after ~10 frames.

Each figure is printed for both and as the ratio engine/reference. JSON goes to stdout
(last line) and a short table before it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import replace

import torch

from ..model.decode_loop import DecodeLoop, LoopSettings
from ..model.engine import Engine, Sampling, loop_settings_for
from ..model.prompt import SYSTEM_SINGLE, Prompt, Turn

TEXT = "The sun rises in the east and sets in the west. This simple fact has been observed for ages."


class PeakMemory:
    """Peak device memory (CUDA) or peak resident memory growth (CPU) during a block."""

    def __init__(self, device: str):
        self.device = device
        self.peak = 0

    def __enter__(self):
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            self.base = self._rss()
            self.peak = self.base
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
            self.peak_mb = self.peak / 2**20
        else:
            self._stop.set()
            self._thread.join()
            self.peak_mb = (self.peak - self.base) / 2**20

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.002)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_reference(engine: Engine, prompt: Prompt, sampling: Sampling) -> dict:
    device = engine.device
    torch.manual_seed(0)
    with PeakMemory(device) as memory:
        start = time.perf_counter()
        codes = engine.reference_generate_codes(prompt, sampling)
        _sync(device)
        generated = time.perf_counter()
        audio = engine.decode_codes(codes)
        _sync(device)
        end = time.perf_counter()
    seconds = len(audio) / engine.sample_rate
    return {
        "time_to_first_audio_s": end - start,  # nothing is heard before the one-piece decode
        "total_s": end - start,
        "audio_s": seconds,
        "rtf": (end - start) / seconds if seconds else None,
        "ms_per_step": 1000 * (generated - start) / sampling.max_new_tokens,
        "peak_memory_mb": memory.peak_mb,
    }


def run_engine(engine: Engine, prompt: Prompt, sampling: Sampling) -> dict:
    device = engine.device
    torch.manual_seed(0)
    first = None
    samples = 0
    with PeakMemory(device) as memory:
        start = time.perf_counter()
        decoder = engine.streaming_decoder()
        steps = 0
        gen_time = 0.0
        tick = time.perf_counter()
        for row in engine.generate_rows(prompt, sampling):
            steps += 1
            gen_time += time.perf_counter() - tick
            for piece in decoder.push(row):
                samples += len(piece)
                first = first or time.perf_counter()
            tick = time.perf_counter()
        for piece in decoder.finish():
            samples += len(piece)
            first = first or time.perf_counter()
        _sync(device)
        end = time.perf_counter()
    seconds = samples / engine.sample_rate
    return {
        "time_to_first_audio_s": (first or end) - start,
        "total_s": end - start,
        "audio_s": seconds,
        "rtf": (end - start) / seconds if seconds else None,
        "ms_per_step": 1000 * gen_time / max(1, steps),
        "peak_memory_mb": memory.peak_mb,
    }


def compare(engine: Engine, frames: int, warmup: bool = True) -> dict:
    """Both paths on one prompt, ``frames`` frames each (no early stop)."""
    prompt = Prompt(SYSTEM_SINGLE, ["Audio is recorded from a quiet room."], [Turn("user", TEXT)])
    sampling = Sampling(max_new_tokens=frames + engine.num_codebooks)
    unreachable = engine.model.config.codebook_size + 100
    engine.model.config.audio_stream_eos_id = unreachable
    engine.loop.rules = replace(engine.loop.rules, eos_id=unreachable)
    if warmup:  # compile / allocate once, outside the measured runs, for both paths
        run_reference(engine, prompt, replace(sampling, max_new_tokens=12))
        run_engine(engine, prompt, replace(sampling, max_new_tokens=24))
    reference = run_reference(engine, prompt, sampling)
    ours = run_engine(engine, prompt, sampling)
    ratios = {key: (ours[key] / reference[key] if reference[key] else None) for key in reference}
    return {"frames": frames, "device": engine.device, "reference": reference, "engine": ours, "ratio": ratios}


# -- many jobs at once (continuous batching) ------------------------------------------------


def timed_job(engine: Engine, prompt: Prompt, sampling: Sampling, seed: int) -> dict:
    """One job as the worker runs it (scheduler rows + streaming decode in this thread)."""
    start = time.perf_counter()
    first = None
    samples = 0
    decoder = engine.streaming_decoder()
    for row in engine.generate_rows(prompt, sampling, generator=engine.generator(seed)):
        for piece in decoder.push(row):
            samples += len(piece)
            first = first or time.perf_counter()
    for piece in decoder.finish():
        samples += len(piece)
        first = first or time.perf_counter()
    end = time.perf_counter()
    seconds = samples / engine.sample_rate
    return {"start": start, "first_audio_s": (first or end) - start, "total_s": end - start, "audio_s": seconds}


def concurrent_jobs(engine: Engine, prompts: list[Prompt], sampling: Sampling, late_after_rows: int) -> dict:
    """All jobs but the last start together; the last (the newcomer) arrives once the
    scheduler has run ``late_after_rows`` batched steps (``newcomer_after_steps`` says how
    many it had run when the newcomer was submitted). Figures for the whole group."""
    results: dict[int, dict] = {}
    scheduler = engine.scheduler

    def work(index: int) -> None:
        results[index] = timed_job(engine, prompts[index], sampling, seed=index)

    steps_at_start = scheduler.steps  # read, never advanced here
    with PeakMemory(engine.device) as memory:
        start = time.perf_counter()
        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(prompts) - 1)]
        for thread in threads:
            thread.start()
        if threads:  # the newcomer comes while the others run
            while scheduler.steps - steps_at_start < late_after_rows and any(t.is_alive() for t in threads):
                time.sleep(0.002)
        after_steps = scheduler.steps - steps_at_start
        late = threading.Thread(target=work, args=(len(prompts) - 1,))
        late.start()
        for thread in [*threads, late]:
            thread.join()
        wall = time.perf_counter() - start
    return {**_figures(results, wall, memory.peak_mb, len(prompts) - 1), "newcomer_after_steps": after_steps}


def sequential_jobs(engine: Engine, prompts: list[Prompt], sampling: Sampling) -> dict:
    """The same jobs one after another, in the same process."""
    results: dict[int, dict] = {}
    with PeakMemory(engine.device) as memory:
        start = time.perf_counter()
        for index, prompt in enumerate(prompts):
            results[index] = timed_job(engine, prompt, sampling, seed=index)
        wall = time.perf_counter() - start
    return _figures(results, wall, memory.peak_mb, len(prompts) - 1)


def _figures(results: dict[int, dict], wall: float, peak_mb: float, newcomer: int) -> dict:
    audio = sum(r["audio_s"] for r in results.values())
    rtfs = [r["total_s"] / r["audio_s"] for r in results.values() if r["audio_s"]]
    return {
        "audio_s_per_s": audio / wall,
        "job_rtf": sum(rtfs) / len(rtfs) if rtfs else None,
        "newcomer_first_audio_s": results[newcomer]["first_audio_s"],
        "peak_memory_mb": peak_mb,
        "wall_s": wall,
        "audio_s": audio,
    }


def concurrency_table(engine: Engine, levels: list[int], frames: int) -> dict:
    """For each level c: c jobs of ``frames`` frames at once vs the same c jobs in a row."""
    unreachable = engine.model.config.codebook_size + 100  # every job runs exactly its frames
    engine.loop.rules = replace(engine.loop.rules, eos_id=unreachable)
    sampling = Sampling(max_new_tokens=frames + engine.num_codebooks)
    texts = [f"{TEXT} Job number {i}." for i in range(max(levels))]
    prompts = [Prompt(SYSTEM_SINGLE, ["Audio is recorded from a quiet room."], [Turn("user", t)]) for t in texts]
    sequential_jobs(engine, prompts[:2], replace(sampling, max_new_tokens=24))  # warm-up
    table = {}
    for level in levels:
        alone = sequential_jobs(engine, prompts[:level], sampling)
        together = concurrent_jobs(engine, prompts[:level], sampling, late_after_rows=frames // 4)
        ratio = {k: (together[k] / alone[k] if alone[k] else None) for k in alone}
        table[level] = {"sequential": alone, "concurrent": together, "ratio": ratio}
        # each level as it is done (stderr): a run stopped at its time limit still shows these
        print(f"level {level}: " + json.dumps(table[level]), file=sys.stderr, flush=True)
    return {
        "frames": frames,
        "device": engine.device,
        "slots": engine.scheduler.capacity,
        "slot_len": engine.scheduler.slots.length,
        "levels": table,
    }


def print_concurrency_table(result: dict) -> None:
    keys = ["audio_s_per_s", "job_rtf", "newcomer_first_audio_s", "peak_memory_mb"]
    print(
        f"{result['frames']} frames per job, {result['device']}, {result['slots']} KV slots x "
        f"{result['slot_len']} positions; sequential = the same jobs one after another"
    )
    print(f"{'jobs':>5} {'figure':<24}{'sequential':>12}{'concurrent':>12}{'conc/seq':>10}")
    for level, row in result["levels"].items():
        for key in keys:
            seq, conc, ratio = row["sequential"][key], row["concurrent"][key], row["ratio"][key]
            ratio_text = f"{ratio:.2f}" if ratio is not None else "-"
            print(f"{level:>5} {key:<24}{seq:>12.3f}{conc:>12.3f}{ratio_text:>10}")


def full_size_engine(device: str, layers: int | None = None, max_concurrency: int | None = None) -> Engine:
    """The real architecture (HiggsAudioV2Config defaults, 8 codebooks of 1024 + bos/eos)
    and the real audio tokenizer sizes, with random weights, built on ``device`` in bf16."""
    from transformers import (
        DacFeatureExtractor,
        HiggsAudioV2Config,
        HiggsAudioV2ForConditionalGeneration,
        HiggsAudioV2TokenizerConfig,
        HiggsAudioV2TokenizerModel,
    )

    from .tiny_model import build_text_tokenizer, special_ids

    tokenizer = build_text_tokenizer()
    config = HiggsAudioV2Config(**special_ids(tokenizer), **({"num_hidden_layers": layers} if layers else {}))
    tok_config = full_size_tokenizer_config(HiggsAudioV2TokenizerConfig)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    with torch.device(device):
        model = HiggsAudioV2ForConditionalGeneration(config).to(dtype).eval()
        audio_tokenizer = HiggsAudioV2TokenizerModel(tok_config).eval()
    features = DacFeatureExtractor(sampling_rate=24000, hop_length=960, feature_size=1)
    return Engine(model, audio_tokenizer, tokenizer, features, device, loop_settings_for(device), max_concurrency)


def full_size_tokenizer_config(config_class):
    return config_class(
        sample_rate=24000,
        target_bandwidths=[0.5, 1.0, 1.5, 2.0],
        codebook_size=1024,
        codebook_dim=64,
        acoustic_model_config={
            "encoder_hidden_size": 64,
            "downsampling_ratios": [8, 5, 4, 2, 3],
            "upsampling_ratios": [8, 5, 4, 2, 3],
            "decoder_hidden_size": 1024,
        },
        semantic_model_config={},  # HuBERT-base defaults: 768 hidden, 12 layers
    )


def print_table(result: dict) -> None:
    keys = ["time_to_first_audio_s", "total_s", "audio_s", "rtf", "ms_per_step", "peak_memory_mb"]
    print(
        f"{'figure':<24}{'reference':>14}{'engine':>14}{'engine/ref':>12}   ({result['frames']} frames, "
        f"{result['device']})"
    )
    for key in keys:
        ref, ours, ratio = result["reference"][key], result["engine"][key], result["ratio"][key]
        ratio_text = f"{ratio:.3f}" if ratio is not None else "-"
        print(f"{key:<24}{ref:>14.4f}{ours:>14.4f}{ratio_text:>12}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Higgs worker benchmarks (figures, not assertions)")
    parser.add_argument("--full-size-random", action="store_true", help="real architecture, random weights")
    parser.add_argument("--frames", type=int, default=None, help="frames to generate (default 100 tiny, 500 full)")
    parser.add_argument("--layers", type=int, default=None, help="override the layer count (full size)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--compile", choices=["auto", "true", "false"], default="auto")
    parser.add_argument(
        "--concurrency", default=None, help="e.g. 1,4,8,16: jobs at once vs the same jobs one after another"
    )
    args = parser.parse_args(argv)
    levels = [int(level) for level in args.concurrency.split(",")] if args.concurrency else None
    slots = max(levels) if levels else None

    if args.full_size_random:
        engine = full_size_engine(args.device, args.layers, slots)
        frames = args.frames or 500
    else:
        from .tiny_model import build

        tmp = tempfile.mkdtemp(prefix="higgs-bench-")
        model_dir, tokenizer_dir = build(tmp)
        dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
        engine = Engine.load(str(model_dir), str(tokenizer_dir), args.device, dtype, max_concurrency=slots)
        frames = args.frames or 100
    if levels:
        if engine.loop.settings.compile:
            engine.warm_up()
        result = concurrency_table(engine, levels, frames)
        print_concurrency_table(result)
        print(json.dumps(result))
        return
    if args.compile != "auto":
        forced = args.compile == "true"
        engine.loop = DecodeLoop(engine.model, LoopSettings(static_cache=forced, compile=forced))
    params = sum(p.numel() for p in engine.model.parameters())
    result = compare(engine, frames)
    result["parameters"] = params
    result["decode_loop"] = {"static_cache": engine.loop.settings.static_cache, "compile": engine.loop.settings.compile}
    print_table(result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
