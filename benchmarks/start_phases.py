"""Start phases of a new worker, cold and warm volume (figures, no asserts).

    python benchmarks/cold_start.py --phases                      # tiny model, CPU, DECODE_COMPILE=true
    python benchmarks/cold_start.py --phases --full-size-random   # real architecture, random weights, GPU

The model is put on a fresh "volume" folder first (as if a previous worker had
downloaded it). Then a new Python process plays a new worker, the way handler.py
starts one (``startup.warm_start``, then the first job): process start -> imports ->
weights loaded -> compiled/warmed -> first job done. The first worker meets an empty
``COMPILE_CACHE_DIR`` and compiles; a second worker, started afterwards against the
same volume, loads the compiled kernels. Both are printed with the ratio
second/first, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, time
T0 = float(os.environ["BENCH_T0"])
import torch, transformers, runpod  # noqa: F401  the runtime a worker imports
from higgs_worker import logs
from higgs_worker.jobs import Worker
from higgs_worker.startup import warm_start
from torch._dynamo.utils import counters
imports = time.time() - T0
logs.setup()
worker = Worker()
phases = warm_start(worker)
ready = time.time() - T0
graphs = lambda: counters["inductor"]["fxgraph_cache_hit"] + counters["inductor"]["fxgraph_cache_miss"]
before = graphs()
job = {"text": "Hello there, this is the first job of a new worker.", "seed": 1,
       "max_new_tokens": int(os.environ["BENCH_TOKENS"])}
heard = []
output = worker.run({"id": "first", "input": job}, on_audio=lambda piece: heard or heard.append(time.time() - T0))
output = output.as_output()
assert "error" not in output, output
done = time.time() - T0
print("PHASES " + json.dumps({"imports_at": imports, "ready_at": ready, "first_job_at": done, "phases": phases,
                              "first_audio_at": heard[0] if heard else done,
                              "first_job_timings": output["timings"], "graphs_in_first_job": graphs() - before}))
"""


def put_tiny_model(volume: Path) -> tuple[Path, Path]:
    from higgs_worker.devtools.tiny_model import build

    return build(volume / "bosonai")


def put_full_size_random(volume: Path, device: str, layers: int | None = None) -> tuple[Path, Path]:
    """The real architecture and audio tokenizer sizes with random weights, saved in bf16."""
    import torch
    from transformers import (
        DacFeatureExtractor,
        HiggsAudioV2Config,
        HiggsAudioV2ForConditionalGeneration,
        HiggsAudioV2TokenizerConfig,
        HiggsAudioV2TokenizerModel,
    )

    from higgs_worker.devtools.bench import full_size_tokenizer_config
    from higgs_worker.devtools.tiny_model import build_text_tokenizer, special_ids

    model_dir, tokenizer_dir = volume / "bosonai" / "model", volume / "bosonai" / "tokenizer"
    tokenizer = build_text_tokenizer()
    features = DacFeatureExtractor(sampling_rate=24000, hop_length=960, feature_size=1)
    with torch.device(device):
        config = HiggsAudioV2Config(**special_ids(tokenizer), **({"num_hidden_layers": layers} if layers else {}))
        model = HiggsAudioV2ForConditionalGeneration(config)
        model.to(torch.bfloat16).save_pretrained(model_dir)
        del model
        HiggsAudioV2TokenizerModel(full_size_tokenizer_config(HiggsAudioV2TokenizerConfig)).save_pretrained(
            tokenizer_dir
        )
    tokenizer.save_pretrained(model_dir)
    features.save_pretrained(model_dir)
    features.save_pretrained(tokenizer_dir)
    return model_dir, tokenizer_dir


def start_worker(env: dict) -> dict:
    env = {**env, "BENCH_T0": repr(time.time())}
    proc = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        sys.exit(proc.stdout[-3000:] + proc.stderr[-4000:])
    lines = proc.stdout.splitlines()
    data = json.loads(next(line for line in reversed(lines) if line.startswith("PHASES "))[7:])
    data["log"] = [line for line in lines if "compile cache" in line or "worker ready" in line]
    return data


def phase_rows(run: dict) -> dict:
    """Durations of each phase, in seconds."""
    phases = run["phases"]
    return {
        "imports": run["imports_at"],
        "weights loaded": phases.get("download_s", 0.0) + phases["load_s"],
        "compiled/warmed": phases["warmup_s"],
        "first job": run["first_job_at"] - run["ready_at"],
        "process start -> first audio": run["first_audio_at"],
        "process start -> first job done": run["first_job_at"],
    }


def print_table(first: dict, second: dict, device: str) -> None:
    a, b = phase_rows(first), phase_rows(second)
    print(
        f"{'phase (s)':<34}{'1st worker':>12}{'2nd worker':>12}{'2nd/1st':>9}   ({device}; compile cache: "
        f"{first['phases']['compile_cache']} -> {second['phases']['compile_cache']})"
    )
    for name in a:
        ratio = b[name] / a[name] if a[name] else float("nan")
        print(f"{name:<34}{a[name]:>12.2f}{b[name]:>12.2f}{ratio:>9.2f}")
    p1, p2 = first["phases"], second["phases"]
    print(f"{'peak host RSS (MB)':<34}{p1['peak_rss_mb']:>12.0f}{p2['peak_rss_mb']:>12.0f}")
    compiled = [f"{p['graphs_compiled']} / {p['graphs_loaded']}" for p in (p1, p2)]
    print(f"{'graphs compiled / loaded':<34}{compiled[0]:>12}{compiled[1]:>12}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phases", action="store_true", help="(accepted for cold_start.py's flag)")
    parser.add_argument("--full-size-random", action="store_true", help="real architecture, random weights (GPU)")
    parser.add_argument("--device", default=None, help="default: cpu (tiny) or cuda (full size)")
    parser.add_argument("--layers", type=int, default=None, help="full size: fewer layers for a quicker check")
    parser.add_argument("--tokens", type=int, default=None, help="first job's max_new_tokens (default 60 / 250)")
    args = parser.parse_args(argv)
    device = args.device or ("cuda" if args.full_size_random else "cpu")
    sys.path.insert(0, str(ROOT))

    with tempfile.TemporaryDirectory(prefix="higgs-phases-") as tmp:
        volume = Path(tmp) / "runpod-volume"
        if args.full_size_random:
            model_dir, tokenizer_dir = put_full_size_random(volume, device, args.layers)
        else:
            model_dir, tokenizer_dir = put_tiny_model(volume)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TORCHINDUCTOR_", "TRITON_"))}
        env.update(
            {
                # the worker code first, then what was already there (carried wheels on a GPU machine)
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
                "DEVICE": device,
                "DECODE_COMPILE": "true",
                "MODEL_PATH": str(model_dir),
                "TOKENIZER_PATH": str(tokenizer_dir),
                "COMPILE_CACHE_DIR": str(volume / "bosonai" / "compile-cache"),
                "VOICES_DIR": str(volume / "bosonai" / "voices"),
                "RUNPOD_HF_CACHE_DIR": str(volume / "huggingface-cache" / "hub"),
                "HF_HUB_OFFLINE": "1",
                "BENCH_TOKENS": str(args.tokens or (250 if args.full_size_random else 60)),
            }
        )
        first = start_worker(env)
        # as soon as it is known (stderr): a run stopped at its time limit still shows it
        print("1st worker: " + json.dumps(phase_rows(first)), file=sys.stderr, flush=True)
        second = start_worker(env)
        shutil.rmtree(volume, ignore_errors=True)
    for name, run in (("1st worker", first), ("2nd worker", second)):
        for line in run["log"]:
            print(f"{name} log: {line.split(': ', 1)[-1] if ' INFO ' in line else line}")
    print_table(first, second, device)
    a, b = phase_rows(first), phase_rows(second)
    result = {
        "device": device,
        "full_size_random": args.full_size_random,
        "first": a,
        "second": b,
        "compile_warmup_ratio": b["compiled/warmed"] / a["compiled/warmed"] if a["compiled/warmed"] else None,
        "start_to_first_job_ratio": b["process start -> first job done"] / a["process start -> first job done"],
        "second_start_to_first_audio_s": b["process start -> first audio"],
        "compile_cache": [first["phases"]["compile_cache"], second["phases"]["compile_cache"]],
        "graphs_in_first_job": [first["graphs_in_first_job"], second["graphs_in_first_job"]],
        "first_job_timings": [first["first_job_timings"], second["first_job_timings"]],
        "peak_rss_mb": [first["phases"]["peak_rss_mb"], second["phases"]["peak_rss_mb"]],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
