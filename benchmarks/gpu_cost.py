"""What a GPU pool costs per second of audio: an ESTIMATE until a GPU run measures it.

    python benchmarks/gpu_cost.py            # the table of docs/costs.md, cheapest first

For each card of the pools RunPod lends to serverless workers that hold the model (24 GB and
up; the 20 GB RTX A4500 of AMPERE_24 too), it prints the memory plan the worker makes at
the template's MAX_CONCURRENCY (runpod-serverless-config.json; ``higgs_worker.model.memory_plan.plan``
with the real model's shapes, as
tests/model/test_memory_plan.py builds them on the meta device), RunPod's flex price per
second, and an estimated cost per audio-hour:

    a decode step reads the bf16 weights once and every live sequence's KV cache, so on a
    memory-bound GPU   step time ~ (weights + slots x live positions x KV per position)
                                   / (memory bandwidth x EFFICIENCY)
    one step gives each of the slots one frame (1/25 s of audio), so
    audio seconds per GPU second ~ slots / 25 / step time

It leaves out sampling, the audio tokenizer's decode and the scheduler's own work, so the
throughput is an upper bound and the cost a lower bound; the ORDER of the pools is what the
config's choice rests on. `scripts/gpu-check.sh` measures the real step time (its
`concurrency` and `shares` stages); replace these figures with those when a GPU run has them.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from higgs_worker.model.memory_plan import GB, ModelShapes, plan  # noqa: E402
from higgs_worker.model.spec import SPEC  # noqa: E402

PRICES_READ = "7 December 2026"  # docs.runpod.io/serverless/pricing, flex price per second
EFFICIENCY = 0.6  # share of the peak memory bandwidth a batched decode step reaches (assumed)
LIVE_POSITIONS = 1000  # average live length of a job's sequence (prompt + audio so far; assumed)
FRAMES_PER_SECOND = SPEC.frames_per_second
CONTEXT_BYTES = int(0.6 * GB)  # CUDA context and cuBLAS handles (as tests/model/test_memory_plan.py)
MIB = 1024 * 1024


@dataclass
class Card:
    pool: str
    name: str
    memory_mib: int  # what torch.cuda reports as the card's total memory
    bandwidth_gbs: float  # peak memory bandwidth, the vendor's data sheet
    flex_per_s: float  # RunPod serverless flex price, $ per second


CARDS = [
    Card("AMPERE_24", "RTX A4500 (20 GB)", 20470, 640, 0.00016),
    Card("AMPERE_24", "RTX A5000", 24564, 768, 0.00019),
    Card("AMPERE_24", "RTX 3090", 24576, 936, 0.00019),
    Card("ADA_24", "L4", 23034, 300, 0.00019),
    Card("ADA_24", "RTX 4090", 24564, 1008, 0.00031),
    Card("AMPERE_48", "RTX A6000", 49140, 768, 0.00034),
    Card("AMPERE_48", "A40", 46068, 696, 0.00034),
    Card("ADA_48_PRO", "L40S", 46068, 864, 0.00053),
    Card("ADA_48_PRO", "L40", 46068, 864, 0.00053),
    Card("ADA_48_PRO", "RTX 6000 Ada", 49140, 960, 0.00053),
    Card("AMPERE_80", "A100 80GB PCIe", 81920, 1935, 0.00076),
    Card("ADA_80_PRO", "H100 PCIe", 81559, 2000, 0.00116),
]


def real_shapes() -> tuple[ModelShapes, int, int]:
    """(shapes, bytes in use after loading, bytes of the LLM's weights) of the real checkpoint."""
    from higgs_worker.devtools.bench import real_checkpoint_sizes

    shapes, weights, tokenizer = real_checkpoint_sizes()
    return shapes, weights + tokenizer + CONTEXT_BYTES, weights


def estimate(concurrency: int) -> list[tuple[float, Card, object, float, float]]:
    """(estimated $ per audio-hour, card, memory plan, step seconds, audio seconds per second), cheapest first."""
    shapes, in_use, weights = real_shapes()
    rows = []
    for card in CARDS:
        p = plan(shapes, card.memory_mib * MIB, in_use, concurrency)
        live = p.slots * min(LIVE_POSITIONS, p.length) * shapes.kv_per_position
        step_s = (weights + live) / (card.bandwidth_gbs * 1e9 * EFFICIENCY)
        audio_per_s = p.slots / FRAMES_PER_SECOND / step_s
        rows.append((card.flex_per_s / audio_per_s * 3600, card, p, step_s, audio_per_s))
    return sorted(rows, key=lambda r: r[0])


def pools_by_dearest_card(rows) -> list[tuple[str, float]]:
    """Pools ordered by their dearest card's estimated cost per audio-hour: RunPod may hand out
    any card of a pool, so that is what a pool can cost."""
    worst: dict[str, float] = {}
    for cost, card, *_ in rows:
        worst[card.pool] = max(worst.get(card.pool, 0.0), cost)
    return sorted(worst.items(), key=lambda item: item[1])


COSTS_DOC = Path(__file__).resolve().parents[1] / "docs" / "costs.md"
CONFIG = Path(__file__).resolve().parents[1] / "runpod-serverless-config.json"
# the jobs a worker of the template takes at once: the table is what that endpoint plans
TEMPLATE_CONCURRENCY = int(json.loads(CONFIG.read_text())["template"]["env"]["MAX_CONCURRENCY"])
MARKER = "gpu-cost"


def table(concurrency: int = TEMPLATE_CONCURRENCY) -> str:
    """The Markdown table of docs/costs.md (between <!-- generated:gpu-cost --> markers)."""
    rows = estimate(concurrency)
    lines = [
        "| pool | card | flex $/s | $/hour | memory plan at MAX_CONCURRENCY jobs | step (est.) | audio-s per s (est.) "
        "| $ per audio-hour (est.) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for per_audio_hour, card, p, step_s, audio_per_s in rows:
        slots = f"{p.slots} x {p.length} positions" if p.fits else "does not fit"
        lines.append(
            f"| {card.pool} | {card.name} | {card.flex_per_s:.5f} | {card.flex_per_s * 3600:.2f} | {slots} | "
            f"{step_s * 1000:.0f} ms | {audio_per_s:.1f} | {per_audio_hour:.3f} |"
        )
    return "\n".join(lines) + "\n"


def with_table(doc: str, text: str) -> str:
    pattern = re.compile(rf"(<!-- generated:{MARKER} -->\n).*?(<!-- /generated:{MARKER} -->)", re.DOTALL)
    return pattern.sub(lambda m: m.group(1) + text + m.group(2), doc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--concurrency",
        type=int,
        default=TEMPLATE_CONCURRENCY,
        help=f"MAX_CONCURRENCY (default: the template's, {TEMPLATE_CONCURRENCY})",
    )
    parser.add_argument("--write", action="store_true", help="rewrite the generated table of docs/costs.md")
    args = parser.parse_args(argv)
    shapes, in_use, weights = real_shapes()
    print(f"weights {weights / GB:.1f} GB bf16; in use after loading {in_use / GB:.1f} GB; prices read {PRICES_READ}")
    print(f"assumed: {EFFICIENCY:.0%} of peak bandwidth, {LIVE_POSITIONS} live positions a job; ESTIMATES")
    text = table(args.concurrency)
    print(text, end="")
    rows = estimate(args.concurrency)
    print(
        "pools by their dearest card (est. $ per audio-hour):",
        ", ".join(f"{p} {c:.4f}" for p, c in pools_by_dearest_card(rows)),
    )
    if args.write:
        if args.concurrency != TEMPLATE_CONCURRENCY:
            parser.error(f"--write writes the table at the template's {TEMPLATE_CONCURRENCY} jobs")
        COSTS_DOC.write_text(with_table(COSTS_DOC.read_text(), text))
        print(f"wrote {COSTS_DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
