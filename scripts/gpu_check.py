"""The GPU check's stages, in one process (scripts/gpu-check.sh runs this after its version check).

The full-size model (the real architecture, random weights, bf16) is built once and warmed
up once with ``--slots`` KV slots (16: batch buckets 1, 2, 4, 8, 16 and the length buckets of
the planned slot length, compiled and captured on the scheduler thread, as in the worker), then
each stage runs in order and prints one JSON line (``{"stage": ..., "seconds": ..., ...}``) as
soon as it is done, so a run stopped at its time limit still leaves the figures of every stage
before:

  setup        versions actually run (against our pins), the device, building the model
  warm-up      compile/capture of every bucket with an empty compile cache (bundle published);
               the graphs compiled and CUDA graphs recorded, the memory plan
  numerics     teacher-forced logits, batched (compiled) vs the plain batch-1 path; greedy
               codes vs generate(); the same seed alone twice and beside other jobs
  step-cost    the batched step's ms against the live length of its sequences (all slots busy,
               and one), in the worker's slots: cost follows the live length
  attention    one decode step's attention at the real shapes (16 rows, a cache of 8192):
               repeat_kv over the whole cache (before), SDPA enable_gqa, packed matmul, packed
               SDPA (the worker's), eager and compiled
  batch-1      RTF and time to first audio against the reference path (generate() + one decode)
  concurrency  1/8/16 jobs at once vs the same jobs one after another
  shares       where a step's time goes at 1/8/16 jobs: prefill, forward, sampling, hand-out,
               the rest, and the jobs' streaming codec decode
  mix          7 short jobs with and without a long-form chunk (a reference and two chunks of
               context in its prompt): the neighbours' throughput with it against without it
  restart      a second process on the same "volume": it loads the compile bundle this one
               published; its warm-up and first-job seconds against this one's

    python scripts/gpu_check.py                 # on the GPU (what gpu-check.sh runs)
    GPU_CHECK_DRY=1 python scripts/gpu_check.py # the tiny model on the CPU, tiny sizes (plumbing)

GPU_CHECK_COMPILE=true|false overrides compiling (default: on with CUDA, off in the dry run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STARTED = time.perf_counter()
REVISION = "gpu-check"  # the compile-cache key's model revision (random weights)


def emit(stage: str, seconds: float, **figures) -> None:
    line = {"stage": stage, "seconds": round(seconds, 2), "elapsed_s": round(time.perf_counter() - STARTED, 2)}
    print(json.dumps({**line, **figures}, default=str), flush=True)


def pinned(name: str) -> str | None:
    for line in (ROOT / "requirements-runtime.txt").read_text().splitlines():
        if line.lower().startswith(f"{name}=="):
            return line.split("==", 1)[1].split()[0]
    return None


def versions() -> dict:
    """What this run actually uses, beside what we pin (torch 2.9.1 brings triton 3.5.1)."""
    import platform

    import torch
    import transformers

    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    ran = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "triton": triton_version,
        "transformers": transformers.__version__,
        "cuda": torch.version.cuda,
    }
    pins = {"torch": pinned("torch"), "triton": "3.5.1", "transformers": pinned("transformers")}
    differ = {k: {"ran": ran[k], "pinned": v} for k, v in pins.items() if v and not str(ran[k]).startswith(v)}
    return {"ran": ran, "pinned": pins, "differ_from_pins": differ}


def compile_setting(device: str) -> bool:
    value = os.environ.get("GPU_CHECK_COMPILE", "").lower()
    return value in ("1", "true", "yes") if value else device.startswith("cuda")


def build_engine(args, model_dir: Path):
    """The engine under test; ``model_dir`` gets its config.json (the compile-cache key reads it)."""
    from higgs_worker.model.decode_loop import LoopSettings

    settings = LoopSettings(static_cache=True, compile=compile_setting(args.device))
    if args.dry:
        import torch

        from higgs_worker.devtools.tiny_model import build
        from higgs_worker.model.engine import Engine

        if not (model_dir / "model" / "config.json").is_file():
            build(model_dir)
        engine = Engine.load(
            str(model_dir / "model"), str(model_dir / "tokenizer"), args.device, torch.float32, settings, args.slots
        )
        return engine, model_dir / "model"
    from higgs_worker.devtools.bench import full_size_engine

    engine = full_size_engine(args.device, args.layers, args.slots)
    engine.loop.settings = settings
    model_dir.mkdir(parents=True, exist_ok=True)
    engine.model.config.to_json_file(str(model_dir / "config.json"))
    return engine, model_dir


def memory_figures(device: str) -> dict:
    import torch

    if not device.startswith("cuda"):
        return {}
    free, total = torch.cuda.mem_get_info()
    peak = torch.cuda.max_memory_allocated()
    return {"gpu_memory_gb": {"total": total / 1e9, "in_use": (total - free) / 1e9, "peak_allocated": peak / 1e9}}


def prompts(count: int):
    from higgs_worker.model.prompt import SYSTEM_SINGLE, Prompt, Turn

    return [
        Prompt(SYSTEM_SINGLE, ["Audio is recorded from a quiet room."], [Turn("user", f"Sentence {i} is spoken here.")])
        for i in range(count)
    ]


def first_job(engine, frames: int) -> dict:
    """One job through the scheduler with streaming decode: first audio and total seconds."""
    from higgs_worker.devtools.bench import timed_job
    from higgs_worker.model.engine import Sampling

    result = timed_job(engine, prompts(1)[0], Sampling(max_new_tokens=frames), seed=1)
    return {"first_audio_s": result["first_audio_s"], "job_s": result["total_s"], "audio_s": result["audio_s"]}


def warm_up(engine, cache_dir: Path, model_dir: Path) -> dict:
    from higgs_worker.model import compile_cache

    report = compile_cache.warm_up(engine, str(cache_dir), REVISION, str(model_dir))
    scheduler = engine.scheduler
    plan = engine.memory_plan
    return {
        "compile": engine.loop.settings.compile,
        "compile_cache": report.status,
        "graphs_compiled": report.graphs_compiled,
        "graphs_loaded": report.graphs_loaded,
        "saved": report.saved,
        "warmup_s": report.warmup_s,
        "fallbacks": report.fallbacks,
        "fallback_note": engine.compile_note,
        "buckets": scheduler.buckets,
        "compiled_buckets": sorted(scheduler.step.compiled_sizes),
        "graphs": scheduler.graphs,
        "solo_lane": None if scheduler.solo_lane is None else scheduler.solo_lane.cache.length,
        "slots": scheduler.capacity,
        "slot_len": scheduler.slots.length,
        "memory_plan": plan.describe() if plan else None,
    }


def restart_child(args) -> None:
    """The second process: same model config and volume; report its warm-up and first job."""
    started = time.perf_counter()
    import torch  # noqa: F401  what a worker imports first
    import transformers  # noqa: F401

    import higgs_worker.model.compile_cache  # noqa: F401
    import higgs_worker.model.engine  # noqa: F401

    imports = time.perf_counter() - started
    started = time.perf_counter()
    engine, model_dir = build_engine(args, Path(args.model_dir))
    build_s = time.perf_counter() - started
    figures = warm_up(engine, Path(args.cache_dir), model_dir)
    job = first_job(engine, args.job_frames)
    print("RESTART " + json.dumps({"imports_s": imports, "build_s": build_s, **figures, **job}), flush=True)


def run_restart(args, cache_dir: Path, model_dir: Path, cold: dict) -> dict:
    command = [
        sys.executable,
        __file__,
        "--restart-child",
        "--model-dir",
        str(model_dir),
        "--cache-dir",
        str(cache_dir),
    ]
    command += ["--device", args.device, "--slots", str(args.slots), "--job-frames", str(args.job_frames)]
    command += ["--layers", str(args.layers)] if args.layers else []
    command += ["--dry"] if args.dry else []
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TORCHINDUCTOR_", "TRITON_"))}
    started = time.perf_counter()
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=args.restart_timeout)
    wall = time.perf_counter() - started
    line = next((x for x in reversed(proc.stdout.splitlines()) if x.startswith("RESTART ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"the second process failed ({proc.returncode}): {(proc.stdout + proc.stderr)[-3000:]}")
    second = json.loads(line[8:])
    return {
        "process_start_to_first_job_done_s": wall,
        "second": second,
        "warmup_ratio_second_to_first": second["warmup_s"] / cold["warmup_s"] if cold["warmup_s"] else None,
    }


def main(argv: list[str] | None = None) -> int:
    dry = os.environ.get("GPU_CHECK_DRY") == "1"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry", action="store_true", default=dry, help="tiny model, tiny sizes (GPU_CHECK_DRY=1)")
    parser.add_argument("--device", default="cpu" if dry else "cuda")
    parser.add_argument("--slots", type=int, default=2 if dry else 16)
    parser.add_argument("--layers", type=int, default=None, help="fewer layers (a quicker, less faithful check)")
    parser.add_argument("--frames", type=int, default=8 if dry else 200, help="batch-1 stage: frames per path")
    parser.add_argument("--levels", default="1,2" if dry else "1,8,16", help="concurrency and shares: jobs at once")
    parser.add_argument("--level-frames", type=int, default=8 if dry else 100)
    parser.add_argument("--numerics-steps", type=int, default=12 if dry else 48)
    parser.add_argument("--job-frames", type=int, default=12 if dry else 100, help="restart stage: first job")
    parser.add_argument("--lengths", default="50,450" if dry else "50,450,950,1950,3950,7950", help="step-cost stage")
    parser.add_argument("--mix-jobs", type=int, default=2 if dry else 8, help="mix stage: jobs (one long-form)")
    parser.add_argument("--restart-timeout", type=int, default=300)
    parser.add_argument("--restart-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.restart_child:
        restart_child(args)
        return 0

    import torch

    from higgs_worker.devtools import bench, numerics
    from higgs_worker.model.engine import Sampling

    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    model_dir, cache_dir = work / "model", work / "volume" / "compile-cache"
    device_figures = {"device": args.device}
    if args.device.startswith("cuda"):
        props = torch.cuda.get_device_properties(0)
        memory_gb, capability = props.total_memory / 1e9, f"{props.major}.{props.minor}"
        device_figures["gpu"] = {"name": props.name, "memory_gb": memory_gb, "capability": capability}
    started = time.perf_counter()
    engine, model_dir = build_engine(args, model_dir)
    parameters = sum(p.numel() for p in engine.model.parameters())
    emit("setup", time.perf_counter() - started, **versions(), **device_figures, parameters=parameters, dry=args.dry)

    started = time.perf_counter()
    cold = warm_up(engine, cache_dir, model_dir)
    emit("warm-up", time.perf_counter() - started, **cold, **memory_figures(args.device))

    started = time.perf_counter()
    sampling = Sampling(max_new_tokens=args.numerics_steps)
    figures = {
        "teacher_forced_4_at_once": numerics.teacher_forced(engine, prompts(4), sampling),
        "teacher_forced_alone": numerics.teacher_forced(engine, prompts(1), sampling),
        "greedy_vs_generate": numerics.greedy_against_generate(engine, prompts(1)[0], args.numerics_steps),
        "seed_reproduces": numerics.reproducibility(engine, prompts(4), sampling),
    }
    for key in ("teacher_forced_4_at_once", "teacher_forced_alone"):
        figures[key].pop("per_job")
    emit("numerics", time.perf_counter() - started, **figures, fallbacks=engine.compile_fallbacks)

    started = time.perf_counter()
    lengths = tuple(int(length) for length in args.lengths.split(","))
    steps = 8 if args.dry else 40
    scheduler = engine.scheduler
    busy = bench.step_time_vs_length(engine, args.slots, lengths=lengths, steps=steps, scheduler=scheduler)
    one = bench.step_time_vs_length(engine, 1, lengths=lengths, steps=steps, scheduler=scheduler)
    capacity = scheduler.slots.length
    emit(
        "step-cost",
        time.perf_counter() - started,
        capacity=capacity,
        slots=args.slots,
        ms_per_step={"all_slots": busy["ms_per_step"][capacity], "one": one["ms_per_step"][capacity]},
        fallbacks=engine.compile_fallbacks,
    )

    started = time.perf_counter()
    sizes = {"batch": 2, "capacity": 1024, "lengths": (512, 1024)} if args.dry else {"capacity": 8192}
    attention = {"eager": bench.attention_table(args.device, **sizes)}
    if args.device.startswith("cuda"):  # compiled: the worker's and the one it replaces, at two lengths
        variants = ["repeat_kv, whole cache (before)", "packed SDPA, live (chosen)"]
        compiled = {**sizes, "lengths": (2048, 8192)}
        attention["compiled"] = bench.attention_table(args.device, compile_on=True, variants=variants, **compiled)
    headline = {}
    for mode, result in attention.items():
        packed, before = result["ms"]["packed SDPA, live (chosen)"], result["ms"]["repeat_kv, whole cache (before)"]
        length = max(k for k in packed if isinstance(k, int))
        headline[mode] = {"length": length, "packed": packed[length], "before": before[length]}
    emit("attention", time.perf_counter() - started, **attention, headline=headline)

    started = time.perf_counter()
    result = bench.compare(engine, args.frames)
    emit("batch-1", time.perf_counter() - started, **result, fallbacks=engine.compile_fallbacks)

    started = time.perf_counter()
    levels = [int(level) for level in args.levels.split(",")]
    table = bench.concurrency_table(engine, levels, args.level_frames)
    emit("concurrency", time.perf_counter() - started, **table, **memory_figures(args.device))

    started = time.perf_counter()
    shares = bench.iteration_shares(engine, levels, args.level_frames)
    emit("shares", time.perf_counter() - started, **shares)

    started = time.perf_counter()
    mix = bench.mixed_jobs(engine, args.mix_jobs, args.level_frames)
    emit("mix", time.perf_counter() - started, **mix, fallbacks=engine.compile_fallbacks)

    started = time.perf_counter()
    restart = run_restart(args, cache_dir, model_dir, cold)
    emit("restart", time.perf_counter() - started, first_warmup_s=cold["warmup_s"], **restart)
    return 0


if __name__ == "__main__":
    sys.exit(main())
