"""The GPU check's stages, in one process (scripts/gpu-check.sh runs this after its version check).

Every stage prints one JSON line (``{"stage": ..., "seconds": ..., "elapsed_s": ..., ...}``) as
soon as it is done, so a run stopped at its time limit still leaves the figures of every stage
before. Every stage is guarded: one that raises prints ``{"stage": ..., "error": ...}`` (and
its traceback's tail) and the next one runs; a stage that needs the engine says so when setup
failed. The last line is the summary (``{"stage": "summary", "stages": {name: status}}``).
The expected timeline, stage by stage, and how to run it: docs/gpu-check.md.

  probe          the private torch parts the worker uses (model/torch_features.py): which are
                 missing, before anything is built
  compile-smoke  a one-layer model, one slot of 1024 positions, compiled and captured (about
                 20 s), so a compile fault shows at once
  setup          versions actually run (against our pins), the device, the full-size model
                 built (random weights, bf16), memory after building
  warm-up        compile/capture of every bucket with an empty compile cache (bundle published);
                 the graphs compiled and CUDA graphs recorded, the memory plan, and
                 ``memory_reserved()`` beside the plan's prediction for the sizes run
  numerics       teacher-forced logits, batched (compiled) vs the plain batch-1 path; greedy
                 codes vs generate(); the same seed alone twice and beside other jobs
  step-cost      the batched step's ms against the live length (all slots busy, and one)
  attention      one decode step's attention at the real shapes, eager (compiled too: --full)
  batch-1        RTF and time to first audio against the reference path (generate() + decode)
  concurrency    jobs at once vs the same jobs one after another; memory under the full batch
                 beside the plan's prediction
  shares         where a step's time goes (prefill, forward, sampling, hand-out, codec decode)
  mix            short jobs with and without a long-form chunk beside them
  restart        (opt-in: --restart) a second process on the same "volume" loads the bundle

Sizes. The first run's (default) keep every stage within 5 minutes on an H100 or H200: 4 slots
of 2048 positions, no solo lane (2 compiled graphs, 12 CUDA graphs instead of 3 and 112), fewer
frames and jobs. ``--full`` (GPU_CHECK_FULL=1) runs the worker's sizes from the memory plan (16
slots, its length, the solo lane) and the larger stage sizes: 9-14 minutes.

    python scripts/gpu_check.py                      # on the GPU (what gpu-check.sh runs)
    python scripts/gpu_check.py --full --restart     # the worker's sizes, and the restart
    python scripts/gpu_check.py --stages probe,compile-smoke   # just those
    GPU_CHECK_DRY=1 python scripts/gpu_check.py      # the tiny model on the CPU (plumbing)

GPU_CHECK_COMPILE=true|false overrides compiling (default: on with CUDA, off in the dry run).
GPU_CHECK_FAIL_STAGE=<stage> makes that stage raise (rehearsing the guard, tests).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
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


def build_engine(
    args, model_dir: Path, layers: int | None = None, slots: int | None = None, slot_len: int | None = None
):
    """The engine under test; ``model_dir`` gets its config.json (the compile-cache key reads it).
    Its scheduler gets the check's sizes (``--slots``, ``--slot-len``, the solo lane with
    ``--full`` only) unless ``--full``: then the memory plan's, as in the worker."""
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
        model_dir = model_dir / "model"
    else:
        from higgs_worker.devtools.bench import full_size_engine

        engine = full_size_engine(args.device, layers if layers is not None else args.layers, slots or args.slots)
        engine.loop.settings = settings
        model_dir.mkdir(parents=True, exist_ok=True)
        engine.model.config.to_json_file(str(model_dir / "config.json"))
    if not args.full or slots:
        # the plan for this card is logged (engine.memory_plan); the check's own sizes
        engine.build_scheduler(slots or args.slots, slot_len or args.slot_len, solo_lane=False)
    return engine, model_dir


def plan_for_sizes(engine) -> dict | None:
    """The memory plan's prediction for the sizes this check runs (its own slots and length, a
    solo lane only where the scheduler has one), beside the plan for the card."""
    from dataclasses import replace

    from higgs_worker.model import memory_plan

    plan = engine.memory_plan
    if plan is None:
        return None
    scheduler = engine.scheduler
    solo = scheduler.solo_lane.cache.length if scheduler.solo_lane is not None else 0
    kv = plan.shapes.kv_per_position
    length = scheduler.slots.length
    reserve = replace(plan.reserve, solo=solo * kv, solo_prompt=max(0, solo - length) * kv)
    sized = replace(plan, slots=scheduler.slots.slots, length=length, solo_length=solo, reserve=reserve)
    return {
        "card_plan": plan.describe(),
        "sizes": {"slots": sized.slots, "length": length, "solo_length": solo},
        "predicted_resident_gb": sized.resident / memory_plan.GB,
        "predicted_busy_gb": sized.busy / memory_plan.GB,
    }


def memory_figures(device: str, predicted_gb: float | None = None) -> dict:
    """What torch holds on the GPU (reserved: what the worker takes from the card, its cache
    included), beside the memory plan's prediction for the same moment."""
    import torch

    if not device.startswith("cuda"):
        return {}
    torch.cuda.synchronize()
    free, total = torch.cuda.mem_get_info()
    figures = {
        "total": total / 1e9,
        "in_use": (total - free) / 1e9,
        "reserved": torch.cuda.memory_reserved() / 1e9,
        "allocated": torch.cuda.memory_allocated() / 1e9,
        "peak_allocated": torch.cuda.max_memory_allocated() / 1e9,
    }
    if predicted_gb is not None:
        figures["predicted"] = predicted_gb
        figures["reserved_minus_predicted"] = figures["reserved"] - predicted_gb
    return {"gpu_memory_gb": figures}


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
    command += ["--device", args.device, "--slots", str(args.slots)]
    command += ["--slot-len", str(args.slot_len)] if args.slot_len else []
    command += ["--job-frames", str(args.job_frames)]
    command += ["--layers", str(args.layers)] if args.layers else []
    command += ["--dry"] if args.dry else []
    command += ["--full"] if args.full else []
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


STAGES = (
    "probe",
    "compile-smoke",
    "setup",
    "warm-up",
    "numerics",
    "step-cost",
    "attention",
    "batch-1",
    "concurrency",
    "shares",
    "mix",
    "restart",
)


class Check:
    """The stages, each a method returning its figures; ``run`` guards every one."""

    def __init__(self, args):
        self.args = args
        work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
        self.model_dir, self.cache_dir = work / "model", work / "volume" / "compile-cache"
        self.engine = None
        self.cold: dict | None = None
        self.plan: dict | None = None
        self.results: dict[str, dict] = {}

    # -- the guard -----------------------------------------------------------------------------

    def run(self, name: str, stage) -> None:
        """One stage: its JSON line with figures, or with ``error`` when it raised (the next one
        runs all the same); ``skipped`` when it was not asked for or the time is spent."""
        args = self.args
        if name not in args.stages:
            self.results[name] = {"status": "skipped", "why": "not in --stages"}
            return
        if name == "restart" and not args.restart:
            self.results[name] = {"status": "skipped", "why": "opt-in: --restart (GPU_CHECK_RESTART=1)"}
            emit(name, 0, skipped=self.results[name]["why"])
            return
        if args.time_budget and time.perf_counter() - STARTED > args.time_budget:
            self.results[name] = {"status": "skipped", "why": f"past the {args.time_budget}s budget"}
            emit(name, 0, skipped=self.results[name]["why"])
            return
        started = time.perf_counter()
        try:
            if os.environ.get("GPU_CHECK_FAIL_STAGE") == name:  # rehearsal: a stage that raises
                raise RuntimeError(f"injected failure in {name} (GPU_CHECK_FAIL_STAGE)")
            figures = stage()
        except Exception as exc:
            seconds = time.perf_counter() - started
            error = f"{type(exc).__name__}: {str(exc).strip()[:500]}"
            self.results[name] = {"status": "error", "seconds": round(seconds, 2), "error": error}
            emit(name, seconds, error=error, traceback=traceback.format_exc()[-2000:])
            return
        seconds = time.perf_counter() - started
        self.results[name] = {"status": "ok", "seconds": round(seconds, 2)}
        emit(name, seconds, **figures)

    def need_engine(self):
        if self.engine is None:
            raise RuntimeError("no engine: the setup stage failed")
        return self.engine

    # -- the stages ----------------------------------------------------------------------------

    def probe(self) -> dict:
        """The private torch parts the worker uses, before anything is built."""
        import torch

        from higgs_worker.model import torch_features

        found = torch_features.probe()
        return {
            "torch": torch.__version__,
            "cuda_available": torch.cuda.is_available(),
            "missing": [name for name, why in found.items() if why],
            "why": {name: why for name, why in found.items() if why},
            "present": [name for name, why in found.items() if not why],
        }

    def compile_smoke(self) -> dict:
        """One layer, one slot of 1024 positions: compile batch 1 and capture its CUDA graph (a
        one-row lane has one length bucket here), so a compile fault shows in seconds instead of
        after the full warm-up. Its scheduler thread stays (it has no stop), so the modules'
        memory is released by hand: the setup and the memory plan after it see none of it."""
        import gc

        import torch

        engine, _ = build_engine(self.args, self.work_dir("smoke"), layers=1, slots=1, slot_len=1024)
        scheduler = engine.scheduler
        started = time.perf_counter()
        scheduler.warm_up()
        warm = time.perf_counter() - started
        step = scheduler.step
        figures = {
            "compile": engine.loop.settings.compile,
            "warmup_s": warm,
            "compiled_sizes": sorted(step.compiled_sizes),
            "fallbacks": engine.compile_fallbacks,
            "fallback_note": engine.compile_note,
            "cuda_graphs": scheduler.graphs["cuda_graphs"],
        }
        for module in (engine.model, engine.audio_tokenizer):
            module.to_empty(device="meta")  # the storage goes; the idle scheduler thread keeps the objects
        del engine, scheduler, step
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
            figures["left_in_use_gb"] = (lambda free, total: (total - free) / 1e9)(*torch.cuda.mem_get_info())
        if figures["compile"] and figures["fallbacks"]:
            raise RuntimeError(f"the one-layer step fell back to the plain step: {figures['fallback_note']}")
        return figures

    def work_dir(self, name: str) -> Path:
        return self.model_dir.parent / name

    def setup(self) -> dict:
        import torch

        args = self.args
        figures: dict = {"device": args.device}
        if args.device.startswith("cuda"):
            props = torch.cuda.get_device_properties(0)
            figures["gpu"] = {
                "name": props.name,
                "memory_gb": props.total_memory / 1e9,
                "capability": f"{props.major}.{props.minor}",
            }
        self.engine, self.model_dir = build_engine(args, self.model_dir)
        self.plan = plan_for_sizes(self.engine)
        parameters = sum(p.numel() for p in self.engine.model.parameters())
        dtypes = sorted({str(p.dtype) for p in self.engine.model.parameters()})
        return {
            **versions(),
            **figures,
            "parameters": parameters,
            "dtypes": dtypes,
            "dry": args.dry,
            "full": args.full,
            **memory_figures(args.device),
        }

    def warm_up(self) -> dict:
        engine = self.need_engine()
        self.cold = warm_up(engine, self.cache_dir, self.model_dir)
        predicted = self.plan["predicted_resident_gb"] if self.plan else None
        return {**self.cold, "plan_for_sizes": self.plan, **memory_figures(self.args.device, predicted)}

    def numerics(self) -> dict:
        from higgs_worker.devtools import numerics
        from higgs_worker.model.engine import Sampling

        engine = self.need_engine()
        sampling = Sampling(max_new_tokens=self.args.numerics_steps)
        figures = {
            "teacher_forced_4_at_once": numerics.teacher_forced(engine, prompts(4), sampling),
            "teacher_forced_alone": numerics.teacher_forced(engine, prompts(1), sampling),
            "greedy_vs_generate": numerics.greedy_against_generate(engine, prompts(1)[0], self.args.numerics_steps),
            "seed_reproduces": numerics.reproducibility(engine, prompts(4), sampling),
        }
        for key in ("teacher_forced_4_at_once", "teacher_forced_alone"):
            figures[key].pop("per_job")
        return {**figures, "fallbacks": engine.compile_fallbacks}

    def step_cost(self) -> dict:
        from higgs_worker.devtools import bench

        engine = self.need_engine()
        lengths = tuple(int(length) for length in self.args.lengths.split(","))
        steps = 8 if self.args.dry else 40
        scheduler = engine.scheduler
        slots = scheduler.slots.slots
        busy = bench.step_time_vs_length(engine, slots, lengths=lengths, steps=steps, scheduler=scheduler)
        one = bench.step_time_vs_length(engine, 1, lengths=lengths, steps=steps, scheduler=scheduler)
        capacity = scheduler.slots.length
        return {
            "capacity": capacity,
            "slots": slots,
            "ms_per_step": {"all_slots": busy["ms_per_step"][capacity], "one": one["ms_per_step"][capacity]},
            "fallbacks": engine.compile_fallbacks,
        }

    def attention(self) -> dict:
        from higgs_worker.devtools import bench

        args = self.args
        sizes = {"batch": 2, "capacity": 1024, "lengths": (512, 1024)} if args.dry else {"capacity": 8192}
        attention = {"eager": bench.attention_table(args.device, **sizes)}
        if args.device.startswith("cuda") and args.full:  # compiled: the worker's and the one it replaces
            variants = ["repeat_kv, whole cache (before)", "packed SDPA, live (chosen)"]
            compiled = {**sizes, "lengths": (2048, 8192)}
            attention["compiled"] = bench.attention_table(args.device, compile_on=True, variants=variants, **compiled)
        headline = {}
        for mode, result in attention.items():
            packed = result["ms"]["packed SDPA, live (chosen)"]
            before = result["ms"]["repeat_kv, whole cache (before)"]
            length = max(k for k in packed if isinstance(k, int))
            headline[mode] = {"length": length, "packed": packed[length], "before": before[length]}
        return {**attention, "headline": headline}

    def batch_1(self) -> dict:
        from higgs_worker.devtools import bench

        engine = self.need_engine()
        return {**bench.compare(engine, self.args.frames), "fallbacks": engine.compile_fallbacks}

    def levels(self) -> list[int]:
        return [int(level) for level in self.args.levels.split(",")]

    def concurrency(self) -> dict:
        from higgs_worker.devtools import bench

        engine = self.need_engine()
        table = bench.concurrency_table(engine, self.levels(), self.args.level_frames)
        predicted = self.plan["predicted_busy_gb"] if self.plan else None
        return {**table, **memory_figures(self.args.device, predicted)}  # after a full batch

    def shares(self) -> dict:
        from higgs_worker.devtools import bench

        return bench.iteration_shares(self.need_engine(), self.levels(), self.args.level_frames)

    def mix(self) -> dict:
        from higgs_worker.devtools import bench

        engine = self.need_engine()
        mix = bench.mixed_jobs(engine, self.args.mix_jobs, self.args.level_frames)
        return {**mix, "fallbacks": engine.compile_fallbacks}

    def restart(self) -> dict:
        if self.cold is None:
            raise RuntimeError("no first warm-up to compare with: the warm-up stage failed")
        figures = run_restart(self.args, self.cache_dir, self.model_dir, self.cold)
        return {"first_warmup_s": self.cold["warmup_s"], **figures}

    def summary(self) -> None:
        failed = [name for name, r in self.results.items() if r["status"] == "error"]
        emit("summary", time.perf_counter() - STARTED, stages=self.results, failed=failed, ok=not failed)


def main(argv: list[str] | None = None) -> int:
    dry = os.environ.get("GPU_CHECK_DRY") == "1"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry", action="store_true", default=dry, help="tiny model, tiny sizes (GPU_CHECK_DRY=1)")
    parser.add_argument("--device", default="cpu" if dry else "cuda")
    parser.add_argument(
        "--full",
        action="store_true",
        default=os.environ.get("GPU_CHECK_FULL") == "1",
        help="the worker's sizes (memory plan: 16 slots, its length, the solo lane) and the larger "
        "stage sizes; about 9-14 minutes (GPU_CHECK_FULL=1)",
    )
    parser.add_argument("--slots", type=int, default=None, help="KV slots (default 2 dry, 4; 16 with --full)")
    parser.add_argument("--slot-len", type=int, default=None, help="positions per slot (default 8192 dry, 2048)")
    parser.add_argument("--layers", type=int, default=None, help="fewer layers (a quicker, less faithful check)")
    parser.add_argument("--frames", type=int, default=None, help="batch-1 stage: frames per path")
    parser.add_argument("--levels", default=None, help="concurrency and shares: jobs at once")
    parser.add_argument("--level-frames", type=int, default=None)
    parser.add_argument("--numerics-steps", type=int, default=None)
    parser.add_argument("--job-frames", type=int, default=None, help="restart stage: first job")
    parser.add_argument("--lengths", default=None, help="step-cost stage: live lengths")
    parser.add_argument("--mix-jobs", type=int, default=None, help="mix stage: jobs (one long-form)")
    parser.add_argument(
        "--restart",
        action="store_true",
        default=os.environ.get("GPU_CHECK_RESTART") == "1",
        help="the restart stage: a second process on the same volume (1.5-4 min; GPU_CHECK_RESTART=1)",
    )
    parser.add_argument("--stages", default=",".join(STAGES), help="the stages to run (comma-separated)")
    parser.add_argument(
        "--time-budget",
        type=float,
        default=float(os.environ.get("GPU_CHECK_TIME_BUDGET") or 0),
        help="seconds: stages not started by then are skipped (the summary still prints); 0: none",
    )
    parser.add_argument("--restart-timeout", type=int, default=300)
    parser.add_argument("--restart-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    defaults(args)
    from higgs_worker.model import torch_features

    # here, on the main thread, before any thread compiles (as handler.main does)
    torch_features.import_cudagraph_trees()
    if args.restart_child:
        restart_child(args)
        return 0
    args.stages = [name.strip() for name in args.stages.split(",") if name.strip()]
    unknown = [name for name in args.stages if name not in STAGES]
    if unknown:
        parser.error(f"unknown stage(s) {unknown}; the stages: {', '.join(STAGES)}")

    check = Check(args)
    for name in STAGES:
        check.run(name, getattr(check, name.replace("-", "_")))
    check.summary()
    return 1 if any(r["status"] == "error" for r in check.results.values()) else 0


# (dry, quick, full): the quick sizes are the first run's (docs/gpu-check.md: the timeline)
SIZES = {
    "slots": (2, 4, 16),
    "slot_len": (8192, 2048, None),  # dry: the CPU worker's; None: the memory plan's
    "frames": (8, 60, 200),
    "levels": ("1,2", "1,4", "1,8,16"),
    "level_frames": (8, 48, 100),
    "numerics_steps": (12, 24, 48),
    "job_frames": (12, 60, 100),
    "lengths": ("50,450", "50,450,950,1950", "50,450,950,1950,3950,7950"),
    "mix_jobs": (2, 3, 8),
}


def defaults(args) -> None:
    which = 0 if args.dry else 2 if args.full else 1
    for name, values in SIZES.items():
        if getattr(args, name) is None:
            setattr(args, name, values[which])


if __name__ == "__main__":
    sys.exit(main())
