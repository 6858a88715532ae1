"""How far past its limit the runaway guard lets a chunk run (figures, no asserts).

    python benchmarks/runaway_guard.py [--silence 3.0] [--repeat 2.0]

The tiny real engine with its row generator replaced by the two stand-ins of
tests/model/test_runaway.py: one speaks for 1 s and then goes silent (first-codebook codes
of encoded silence, the others varying), one speaks for 1 s and then repeats one frame;
neither ever ends by itself. The table gives the rows generated after the speech, how far
past the limit that is, and what the chunk keeps and what was cut; then what the guard
costs per generated row.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--silence", type=float, default=3.0, help="RUNAWAY_SILENCE_SECONDS")
    parser.add_argument("--repeat", type=float, default=2.0, help="RUNAWAY_REPEAT_SECONDS")
    args = parser.parse_args()

    import torch

    from higgs_worker.devtools.tiny_model import build
    from higgs_worker.model.engine import Engine
    from higgs_worker.model.spec import SPEC
    from higgs_worker.synthesis import RunawayLimits
    from tests.model.test_runaway import SPEECH_FRAMES, StandInEngine, goes_silent, never_stops, run, speech_row

    model, tokenizer = build(Path(tempfile.mkdtemp()))
    engine = Engine.load(str(model), str(tokenizer), "cpu", torch.float32)
    limits = RunawayLimits(args.silence, args.repeat)
    print("| stand-in | limit s | rows after the speech | past the limit s | kept audio s | cut s |")
    print("|---|---|---|---|---|---|")
    for name, script, limit in (("goes silent", goes_silent, args.silence), ("never stops", never_stops, args.repeat)):
        stand_in = StandInEngine(engine, script(engine))
        result = run(stand_in, limits)
        after = stand_in.yielded - SPEECH_FRAMES
        past = (after - limit * SPEC.frames_per_second) / SPEC.frames_per_second
        kept = len(result.audio) / engine.sample_rate
        cut = result.runaways[0].cut_seconds if result.runaways else 0.0
        print(f"| {name} | {limit} | {after} | {past:.2f} | {kept:.2f} | {cut:.2f} |")
    guard = engine.runaway_guard(args.silence, args.repeat)
    rows = [speech_row(engine, step) for step in range(20_000)]
    started = time.perf_counter()
    for row in rows:
        guard.push(row)
    cost = (time.perf_counter() - started) / len(rows) * 1e6
    print(f"\nthe guard's cost: {cost:.2f} us per generated row (20,000 rows of speech, CPU tensors)")


if __name__ == "__main__":
    main()
