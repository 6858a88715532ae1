"""Benchmarks that print figures: the worker's engine against the reference path.

    python -m higgs_worker.devtools.bench                      # tiny model on the CPU (CI mode)
    python -m higgs_worker.devtools.bench --full-size-random   # real architecture, random weights, GPU

What a decode step costs (each section prints its table; all of them in one run with
``--concurrency 1,8 --step-lengths --shares 1,8,16 --mix 8 --attention``):

- ``--concurrency``: jobs at once vs the same jobs one after another (throughput, per-job RTF,
  a newcomer's first audio);
- ``--step-lengths``: the batched step's time against the live length of its sequences, at two
  slot capacities (cost follows the live length, not the capacity);
- ``--shares``: where an iteration's time goes (prefill, forward, sampling, hand-out, the rest
  of the scheduler's loop) and the jobs' streaming codec decode, per step, at 1/8/16 jobs;
- ``--mix``: a job mix of short texts with and without one long-form chunk (a reference and two
  chunks of context in its prompt): the neighbours' throughput with it against without it;
- ``--attention``: the attention functions for one decode step at the real model's shapes.

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

from ..model import torch_features
from ..model.decode_loop import DecodeLoop, LoopSettings
from ..model.engine import Engine, Sampling, loop_settings_for
from ..model.prompt import SYSTEM_SINGLE, Prompt, Turn
from .reference import reference_generate_codes

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
        codes = reference_generate_codes(engine, prompt, sampling)
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


def timed_job(engine: Engine, prompt: Prompt, sampling: Sampling, seed: int, rows: int | None = None) -> dict:
    """One job as the worker runs it (scheduler rows + streaming decode in this thread); with
    ``rows``, the job stops reading after so many rows (its sequence is then retired)."""
    start = time.perf_counter()
    first = None
    samples = 0
    codec = 0.0  # seconds in the streaming decoder (codec decode of due pieces)
    decoder = engine.streaming_decoder()
    generated = engine.generate_rows(prompt, sampling, generator=engine.generator(seed))
    count = 0
    for row in generated:
        tick = time.perf_counter()
        for piece in decoder.push(row):
            samples += len(piece)
            first = first or time.perf_counter()
        codec += time.perf_counter() - tick
        count += 1
        if rows is not None and count >= rows:
            generated.close()
            break
    tick = time.perf_counter()
    for piece in decoder.finish():
        samples += len(piece)
        first = first or time.perf_counter()
    end = time.perf_counter()
    codec += end - tick
    seconds = samples / engine.sample_rate
    return {
        "start": start,
        "first_audio_s": (first or end) - start,
        "total_s": end - start,
        "audio_s": seconds,
        "codec_s": codec,
    }


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


# -- what a step costs: live length, parts of an iteration, a mix with a long-form job ------------------


def _fake_sequences(scheduler, count: int, length: int) -> list:
    """``count`` slot-lane sequences of ``length`` positions (zero keys: the timing is what counts)."""
    from ..model.sequence import Phase, Sequence

    n = scheduler.loop.rules.num_codebooks
    sequences = []
    for index in range(count):
        seq = Sequence({"input_ids": torch.zeros((1, 1), dtype=torch.long)}, None, None, phase=Phase.SLOT_LANE)
        seq.lane, seq.slot, seq.position = scheduler.slot_lane, index, length
        seq.codes = torch.zeros(n, dtype=torch.long, device=scheduler.device)
        sequences.append(seq)
    return sequences


def time_steps(scheduler, active: int, length: int, steps: int) -> float:
    """ms per batched step (the median of ``steps``) of ``active`` sequences of ``length``
    positions in the slot lane, on the scheduler thread (``Scheduler.call``: between two of its
    iterations, the lane's own sequences put back after), three steps first: compile, CUDA-graph
    capture. Its rows write into the lane's first rows: for a scheduler with no job in flight."""
    device = str(scheduler.device)
    lane = scheduler.slot_lane
    n = scheduler.loop.rules.num_codebooks
    result = {}

    def run() -> None:
        held = lane.active
        sequences = _fake_sequences(scheduler, active, length)
        lane.active = sequences
        try:
            for _ in range(3):
                lane.forward(n)
            times = []
            for _ in range(steps):
                _sync(device)
                started = time.perf_counter()
                lane.forward(n)
                _sync(device)
                times.append(time.perf_counter() - started)
            result["ms"] = 1000 * sorted(times)[len(times) // 2]  # the median step
        finally:
            lane.active = held

    scheduler.call(run)
    return result["ms"]


def step_time_vs_length(
    engine: Engine,
    active: int = 8,
    slots: int = 16,
    capacities: tuple[int, ...] = (1024, 4096),
    lengths: tuple[int, ...] = (50, 450, 950, 1950, 3950),
    steps: int = 40,
    scheduler=None,
) -> dict:
    """ms per batched step of ``active`` sequences at each live length, in slot caches of each
    capacity (``slots`` rows); ``scheduler``: measure that one instead (the worker's, on a GPU)."""
    from ..model.scheduler import Scheduler

    table: dict = {}
    schedulers = (
        {scheduler.slots.length: scheduler}
        if scheduler is not None
        else {c: Scheduler(engine.loop, slots, c, compile_step=engine.loop.settings.compile) for c in capacities}
    )
    for capacity, sched in schedulers.items():
        row = {}
        for length in lengths:
            if length + steps + 4 > capacity:
                continue
            row[length] = time_steps(sched, min(active, sched.slots.slots), length, steps)
        table[capacity] = row
        print(f"step time at capacity {capacity}: " + json.dumps(row), file=sys.stderr, flush=True)
    return {"device": engine.device, "active": active, "slots": slots, "steps": steps, "ms_per_step": table}


def print_step_lengths(result: dict) -> None:
    table = result["ms_per_step"]
    lengths = sorted({length for row in table.values() for length in row})
    print(
        f"batched step, ms ({result['active']} sequences of the live length, {result['slots']} slots of each "
        f"capacity, {result['device']}); last column: at the longest length / at the shortest"
    )
    print(f"{'capacity':>9}" + "".join(f"{length:>9}" for length in lengths) + f"{'long/short':>12}")
    for capacity, row in table.items():
        cells = "".join(f"{row[length]:>9.2f}" if length in row else f"{'-':>9}" for length in lengths)
        ratio = row[max(row)] / row[min(row)] if row else float("nan")
        print(f"{capacity:>9}{cells}{ratio:>12.2f}")
    if len(table) > 1:
        small, large = min(table), max(table)
        common = sorted(set(table[small]) & set(table[large]))
        ratios = " ".join(f"{length}: {table[large][length] / table[small][length]:.2f}" for length in common)
        print(f"capacity {large} / capacity {small} at the same live length: {ratios}")


def run_together(engine: Engine, work: list[tuple]) -> tuple[dict, float]:
    """``timed_job`` for every (key, prompt, sampling, seed, rows) of ``work`` at once, each in its
    own thread: the results by key, and the wall seconds."""
    results: dict = {}

    def job(key, prompt, sampling, seed, rows) -> None:
        results[key] = timed_job(engine, prompt, sampling, seed, rows)

    threads = [threading.Thread(target=job, args=item) for item in work]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, time.perf_counter() - started


def iteration_shares(engine: Engine, levels: list[int], frames: int) -> dict:
    """For each level: that many jobs at once; per batched step, the milliseconds of each part
    of the scheduler's iteration and of the jobs' streaming codec decode (their threads)."""
    unreachable = engine.model.config.codebook_size + 100
    engine.loop.rules = replace(engine.loop.rules, eos_id=unreachable)
    sampling = Sampling(max_new_tokens=frames + engine.num_codebooks)
    scheduler = engine.scheduler
    table = {}
    for level in levels:
        prompts = [
            Prompt(SYSTEM_SINGLE, ["Audio is recorded from a quiet room."], [Turn("user", f"{TEXT} Job {i}.")])
            for i in range(level)
        ]
        timings = getattr(scheduler, "timings", None)
        before = dict(timings) if timings is not None else {}
        steps_before = scheduler.steps
        codec = getattr(engine, "codec", None)  # the codec batcher, where there is one
        codec_before = (codec.calls, codec.windows) if codec is not None else (0, 0)
        results, wall = run_together(engine, [(i, prompts[i], sampling, i, None) for i in range(level)])
        steps = max(1, scheduler.steps - steps_before)
        spent = {k: v - before.get(k, 0.0) for k, v in (timings or {}).items()}
        parts = {k: 1000 * spent.get(k, 0.0) / steps for k in ("prefill", "forward", "sampling", "hand-out")}
        iteration = 1000 * spent.get("iteration", 0.0) / steps
        parts["other"] = max(0.0, iteration - sum(parts.values()))
        parts["codec decode"] = 1000 * sum(r["codec_s"] for r in results.values()) / steps
        total = iteration + parts["codec decode"]
        table[level] = {
            "steps": steps,
            "wall_ms_per_step": 1000 * wall / steps,
            "iteration_ms_per_step": iteration,
            "ms_per_step": parts,
            "share": {k: (v / total if total else None) for k, v in parts.items()},
            "codec_windows_per_call": (
                (codec.windows - codec_before[1]) / max(1, codec.calls - codec_before[0]) if codec is not None else 1.0
            ),
        }
        print(f"shares at {level}: " + json.dumps(table[level]), file=sys.stderr, flush=True)
    return {"frames": frames, "device": engine.device, "levels": table}


def print_shares(result: dict) -> None:
    parts = ["prefill", "forward", "sampling", "hand-out", "other", "codec decode"]
    print(
        f"where a step's time goes, ms per batched step (share of scheduler iteration + codec decode), "
        f"{result['frames']} frames per job, {result['device']}"
    )
    print(f"{'jobs':>5}" + "".join(f"{p:>18}" for p in parts) + f"{'wall/step':>11}{'windows/decode':>16}")
    for level, row in result["levels"].items():
        cells = "".join(f"{row['ms_per_step'][p]:>9.2f} ({row['share'][p] or 0:>4.0%})" for p in parts)
        print(f"{level:>5}{cells}{row['wall_ms_per_step']:>11.2f}{row['codec_windows_per_call']:>16.2f}")


def long_form_prompt(engine: Engine, reference_frames: int = 150, context_frames: int = 1000) -> tuple[Prompt, str]:
    """Chunk 3 of a long-form job as ``synthesize`` builds it: a reference voice (a 6-second clip
    and its 17-word transcript), the two previous chunks (100 words each, 40 seconds of audio
    codes each) and the next 100 words. Random codes (the timing is what counts). Returns the
    prompt and its text."""
    from ..model.prompt import AudioClip

    generator = torch.Generator().manual_seed(7)

    def clip(frames: int) -> AudioClip:
        return AudioClip(torch.randint(0, 1024, (engine.num_codebooks, frames), generator=generator))

    words = (TEXT + " ") * 6  # ~110 words
    chunk = " ".join(words.split()[:100])
    turns = [Turn("user", TEXT), Turn("assistant", audio=clip(reference_frames))]
    for _ in range(2):
        turns += [Turn("user", chunk), Turn("assistant", audio=clip(context_frames))]
    turns.append(Turn("user", chunk))
    return Prompt(SYSTEM_SINGLE, ["Audio is recorded from a quiet room."], turns), chunk


def long_form_budget(engine: Engine, prompt: Prompt, text: str, cap: int = 15000) -> int:
    """max_new_tokens the worker gives that chunk: its estimate from the text and the voice's
    pace in the prompt's earlier turns (synthesis.chunk_budget)."""
    from ..synthesis import chunk_budget

    return chunk_budget(engine, text, cap, prompt.turns[:-1])


def mixed_jobs(engine: Engine, jobs: int, frames: int) -> dict:
    """``jobs - 1`` short jobs alone, then the same with a long-form chunk beside them (every
    job reads ``frames`` rows): the neighbours' throughput with it against without it."""
    unreachable = engine.model.config.codebook_size + 100
    engine.loop.rules = replace(engine.loop.rules, eos_id=unreachable)
    short_sampling = Sampling(max_new_tokens=frames + engine.num_codebooks)
    shorts = [
        Prompt(SYSTEM_SINGLE, ["Audio is recorded from a quiet room."], [Turn("user", f"{TEXT} Job {i}.")])
        for i in range(jobs - 1)
    ]
    long_prompt, long_text = long_form_prompt(engine)
    budget = long_form_budget(engine, long_prompt, long_text)
    needs = engine.batch_for(long_prompt)["input_ids"].shape[1] + budget + 1
    scheduler = engine.scheduler
    timed_job(engine, shorts[0], replace(short_sampling, max_new_tokens=24), 0)  # warm-up

    def run(with_long: bool) -> dict:
        rows = frames + engine.num_codebooks
        work = [(i, shorts[i], short_sampling, i, rows) for i in range(len(shorts))]
        if with_long:
            work.append(("long", long_prompt, Sampling(max_new_tokens=budget), 99, rows))
        results, wall = run_together(engine, work)
        neighbours = [r for k, r in results.items() if k != "long"]
        return {
            "audio_s_per_s": sum(r["audio_s"] for r in results.values()) / wall,
            "neighbours_audio_s_per_s": sum(r["audio_s"] for r in neighbours) / wall,
            "neighbour_rtf": sum(r["total_s"] / r["audio_s"] for r in neighbours) / len(neighbours),
            "wall_s": wall,
        }

    without = run(False)
    beside = run(True)
    result = {
        "jobs": jobs,
        "frames": frames,
        "device": engine.device,
        "slot_len": scheduler.slots.length,
        "long_form": {"prompt_tokens": needs - budget - 1, "max_new_tokens": budget, "positions": needs},
        "placed": "slot" if needs <= scheduler.slots.length else "solo",
        "without": without,
        "with": beside,
        "neighbours_ratio": beside["neighbours_audio_s_per_s"] / without["neighbours_audio_s_per_s"],
    }
    print("mix: " + json.dumps(result), file=sys.stderr, flush=True)
    return result


def print_mix(result: dict) -> None:
    long_form = result["long_form"]
    print(
        f"job mix: {result['jobs'] - 1} short jobs, with and without a long-form chunk ({long_form['prompt_tokens']} "
        f"prompt tokens + max_new_tokens {long_form['max_new_tokens']} = {long_form['positions']} positions; slots of "
        f"{result['slot_len']}: it runs in the {result['placed']} lane); {result['frames']} frames per job, "
        f"{result['device']}"
    )
    print(f"{'figure':<26}{'without':>10}{'with':>10}{'with/without':>14}")
    for key in ("audio_s_per_s", "neighbours_audio_s_per_s", "neighbour_rtf"):
        a, b = result["without"][key], result["with"][key]
        print(f"{key:<26}{a:>10.3f}{b:>10.3f}{b / a:>14.2f}")


def attention_variants() -> dict:
    """One decode step's attention, query (B, heads, 1, D) against a slot cache (B, kv_heads,
    capacity, D) with a (B, 1, 1, L) mask: the ways it can be computed."""
    import torch.nn.functional as F

    from ..model.slot_attention import packed_attention

    def repeated(q, k, v, mask, full):  # transformers' SDPA path under torch.compile (repeat_kv)
        length = k.shape[2] if full else mask.shape[-1]
        groups = q.shape[1] // k.shape[1]
        k = k[:, :, :length].repeat_interleave(groups, dim=1)
        v = v[:, :, :length].repeat_interleave(groups, dim=1)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    def gqa(q, k, v, mask):
        length = mask.shape[-1]
        return F.scaled_dot_product_attention(q, k[:, :, :length], v[:, :, :length], attn_mask=mask, enable_gqa=True)

    def matmul(q, k, v, mask):
        batch, heads, _, dim = q.shape
        length = mask.shape[-1]
        grouped = q.reshape(batch, k.shape[1], heads // k.shape[1], dim)
        scores = torch.matmul(grouped, k[:, :, :length].transpose(2, 3)) * dim**-0.5 + mask
        weights = scores.softmax(dim=-1, dtype=torch.float32).to(q.dtype)
        return torch.matmul(weights, v[:, :, :length])

    return {
        "repeat_kv, whole cache (before)": lambda q, k, v, m, mf: repeated(q, k, v, mf, True),
        "repeat_kv, live length": lambda q, k, v, m, mf: repeated(q, k, v, m, False),
        "SDPA enable_gqa, live": lambda q, k, v, m, mf: gqa(q, k, v, m),
        "packed matmul, live": lambda q, k, v, m, mf: matmul(q, k, v, m),
        "packed SDPA, live (chosen)": lambda q, k, v, m, mf: packed_attention(q, k, v, m, None),
    }


def attention_table(
    device: str,
    batch: int = 16,
    capacity: int = 4096,
    lengths: tuple[int, ...] = (512, 1024, 4096),
    compile_on: bool = False,
    repeats: int = 50,
    budget_s: float = 1.0,
    shapes: tuple[int, int, int] = (24, 8, 128),
    variants: list[str] | None = None,
) -> dict:
    """ms per layer for each attention variant (or those named in ``variants``) at the real
    model's head shapes (24 query heads, 8 key/value heads of 128), ``batch`` rows in a cache of
    ``capacity`` positions, at each live length (the mask opens it all), eager or compiled: the
    median of 3 to ``repeats`` calls (as many as ``budget_s`` allows)."""
    heads, kv_heads, dim = shapes
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    generator = torch.Generator(device="cpu").manual_seed(0)
    keys = torch.randn((batch, kv_heads, capacity, dim), generator=generator).to(device, dtype)
    values = torch.randn((batch, kv_heads, capacity, dim), generator=generator).to(device, dtype)
    query = torch.randn((batch, heads, 1, dim), generator=generator).to(device, dtype)
    table: dict = {}
    reference: dict[int, torch.Tensor] = {}  # the first variant's output at each length
    for name, fn in attention_variants().items():
        if variants is not None and name not in variants:
            continue
        run = torch.compile(fn, dynamic=False) if compile_on else fn
        row = {}
        for length in lengths:
            mask = torch.zeros((batch, 1, 1, length), dtype=dtype, device=device)
            full = torch.full((batch, 1, 1, capacity), torch.finfo(dtype).min, dtype=dtype, device=device)
            full[..., :length] = 0
            with torch.inference_mode():
                out = run(query, keys, values, mask, full)
                run(query, keys, values, mask, full)
                times = []
                while len(times) < repeats and (len(times) < 3 or sum(times) < budget_s):
                    _sync(device)
                    started = time.perf_counter()
                    run(query, keys, values, mask, full)
                    _sync(device)
                    times.append(time.perf_counter() - started)
            row[length] = 1000 * sorted(times)[len(times) // 2]  # the median call
            out = out.reshape(batch, heads, dim).float()
            row[f"max_diff_{length}"] = (out - reference.setdefault(length, out)).abs().max().item()
        table[name] = row
        print(f"attention {name}: " + json.dumps(row), file=sys.stderr, flush=True)
    return {"device": device, "batch": batch, "capacity": capacity, "compiled": compile_on, "ms": table}


def print_attention(result: dict) -> None:
    lengths = sorted(k for k in next(iter(result["ms"].values())) if isinstance(k, int))
    print(
        f"attention for one decode step, ms per layer ({result['batch']} rows, a cache of {result['capacity']} "
        f"positions, 24 query / 8 key-value heads of 128, {result['device']}, "
        f"{'compiled' if result['compiled'] else 'eager'}); columns: live length"
    )
    print(f"{'variant':<34}" + "".join(f"{length:>9}" for length in lengths) + f"{'max |diff|':>12}")
    for name, row in result["ms"].items():
        diff = max(row[f"max_diff_{length}"] for length in lengths)
        print(f"{name:<34}" + "".join(f"{row[length]:>9.3f}" for length in lengths) + f"{diff:>12.1e}")


def full_size_engine(device: str, layers: int | None = None, max_concurrency: int | None = None) -> Engine:
    """The real architecture (HiggsAudioV2Config defaults, 8 codebooks of 1024 + bos/eos)
    and the real audio tokenizer sizes, with random weights, built on ``device`` in bf16.

    The generation model is created in bf16 (``_from_config(dtype=)``: the default dtype while
    its parameters are made), not in fp32 and cast: a cast left about 21.5 GB of freed fp32
    blocks in torch's CUDA cache, so the memory plan and every "in use" figure described no real
    worker (which loads bf16 weights). The cache is emptied after building all the same."""
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
        model = HiggsAudioV2ForConditionalGeneration._from_config(config, dtype=dtype).eval()
        audio_tokenizer = HiggsAudioV2TokenizerModel(tok_config).eval()  # fp32, as the worker loads it
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
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


def real_checkpoint_sizes():
    """(memory-plan shapes, bytes of the bf16 LLM, bytes of the fp32 audio tokenizer) of the real
    checkpoint, built on the meta device (no memory, no download)."""
    from transformers import (
        HiggsAudioV2Config,
        HiggsAudioV2ForConditionalGeneration,
        HiggsAudioV2TokenizerConfig,
        HiggsAudioV2TokenizerModel,
    )

    from ..model.memory_plan import ModelShapes

    config = HiggsAudioV2Config(codebook_size=1026, audio_stream_bos_id=1024, audio_stream_eos_id=1025)
    with torch.device("meta"):
        model = HiggsAudioV2ForConditionalGeneration(config)
        tokenizer = HiggsAudioV2TokenizerModel(full_size_tokenizer_config(HiggsAudioV2TokenizerConfig))
    llm_bytes = sum(p.numel() for p in model.parameters()) * 2
    tokenizer_bytes = sum(p.numel() for p in tokenizer.parameters()) * 4
    return ModelShapes.from_config(config, dtype_bytes=2), llm_bytes, tokenizer_bytes


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
    parser.add_argument("--step-lengths", action="store_true", help="step time vs live length at two capacities")
    parser.add_argument("--shares", default=None, help="e.g. 1,8,16: where a step's time goes at so many jobs")
    parser.add_argument("--mix", type=int, default=None, help="jobs in the short/long-form mix (e.g. 8)")
    parser.add_argument(
        "--mix-frames",
        type=int,
        default=None,
        help="frames per job in the mix (default 4 x --frames: the long prompt's prefill amortized)",
    )
    parser.add_argument("--attention", action="store_true", help="attention functions at the real shapes")
    parser.add_argument("--attention-compile", action="store_true", help="the same, each variant compiled")
    args = parser.parse_args(argv)
    levels = [int(level) for level in args.concurrency.split(",")] if args.concurrency else None
    share_levels = [int(level) for level in args.shares.split(",")] if args.shares else None
    sections = [levels, share_levels, [args.mix] if args.mix else None]
    wanted = [max(s) for s in sections if s]
    slots = max(wanted) if wanted else None
    step_cost = bool(share_levels or args.mix or args.step_lengths or args.attention or args.attention_compile)
    if args.compile == "true" or args.device.startswith("cuda") or args.attention_compile:
        # on the main thread, before the scheduler's thread compiles (torch_features.import_cudagraph_trees)
        torch_features.import_cudagraph_trees()

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
    if levels or step_cost:
        print(f"python -m higgs_worker.devtools.bench {' '.join(sys.argv[1:] if argv is None else argv)}")
        if engine.loop.settings.compile:
            engine.warm_up()
        results = {}
        if args.attention or args.attention_compile:
            results["attention"] = attention_table(args.device, compile_on=args.attention_compile)
            print_attention(results["attention"])
        if args.step_lengths:
            results["step_lengths"] = step_time_vs_length(engine)
            print_step_lengths(results["step_lengths"])
        if levels:
            results["concurrency"] = concurrency_table(engine, levels, frames)
            print_concurrency_table(results["concurrency"])
        if share_levels:
            results["shares"] = iteration_shares(engine, share_levels, frames)
            print_shares(results["shares"])
        if args.mix:
            results["mix"] = mixed_jobs(engine, args.mix, args.mix_frames or 4 * frames)
            print_mix(results["mix"])
        print(json.dumps(results if len(results) > 1 else next(iter(results.values()))))
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
