"""How well a chunk's generation bound (higgs_worker/text/pace.py) fits its speech.

    python benchmarks/token_estimate.py                          # espeak-ng speech, CPU, ~1 minute
    python benchmarks/token_estimate.py --model-dir M --tokenizer-dir T [--device cuda]

Without a model: espeak-ng speaks a set of texts (prose, dialogue, numbers, lists, a very short
one; five English voices and speeds from 140 to 210 words a minute, and Mandarin) and its
durations stand for a speaker whose pace is unknown. Printed: how much duration / measure varies
per voice for characters, words and spoken units (coefficient of variation); the error of the
voice-aware prediction (pace learned from two other texts of the same voice, as from a job's two
earlier chunks): actual / predicted, median, p95, extremes; and the bound against the speech for
the old estimate (characters, x2) and the new one (units; x1.5 with the voice's pace, x2 without):
bound / actual (below 1 cuts the audio) and how many positions the bound reserves.

With a model (the real checkpoint on a GPU is what this is for): a long text is synthesized
chunk by chunk as the worker does (the voice's pace from its earlier chunks), each chunk until
its natural end; per chunk its frames against its bound and whether it hit the bound. On the
tiny random-weight model the figures only check the plumbing: its codes are noise and nearly
every chunk runs to its bound.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from higgs_worker.text.pace import bound_seconds, spoken_units  # noqa: E402

ENGLISH = [
    "The sun rises in the east and sets in the west. This simple fact has been observed for ages.",
    "It was the night before my birthday. Hooray! It's almost here! It may not be a holiday, but it's the best "
    "day of the year.",
    "Please call me back at 555-0142 before 6:30 pm on March 3rd, 2024, or email the office.",
    "In 1969, Apollo 11 carried three astronauts 384,400 kilometres to the Moon and back in eight days.",
    "Well, I suppose we could try again tomorrow; the weather, after all, can't stay this bad forever.",
    "Photosynthesis converts electromagnetic radiation into chemical energy through extraordinarily complicated "
    "biochemical pathways.",
    "Yes. No. Maybe. I don't know! Ask her, not me.",
    "Chapter one. The old lighthouse keeper climbed the spiral stairs, counting each of the one hundred and twelve "
    "steps as he always did.",
    "Add two cups of flour, one teaspoon of salt, and three eggs; whisk for 5 minutes, then bake at 180 degrees "
    "for 25 minutes.",
    "She whispered, 'Are you sure?' and he nodded, though he wasn't sure at all.",
    "The quarterly report shows revenue of $4.2 million, up 12% from last year, with operating costs flat at "
    "$1.1 million.",
    "Once upon a time, in a kingdom far away, there lived a princess who loved to read books more than anything "
    "else in the world.",
    "Hi.",
    "Good morning, everyone, and welcome to today's meeting.",
    "Beneath the quiet surface of the lake, an entire ecosystem thrived: fish, frogs, insects, and countless "
    "microscopic creatures.",
    "We walked for hours along the beach, talking about everything and nothing, until the sun disappeared behind "
    "the hills.",
]
MANDARIN = [
    "今天天气很好，我们一起去公园散步吧。",
    "他每天早上六点起床，然后跑步半个小时。",
    "这本书讲述了一个关于勇气和友谊的故事，非常感人。",
    "请在下午三点之前把报告发给我，谢谢。",
]
VOICES = [("en-us", 175), ("en-us", 140), ("en-us", 210), ("en-gb", 160), ("en-us+f3", 175)]


def spoken_seconds(text: str, voice: str, speed: int) -> float:
    """espeak-ng's duration of ``text``, from the first to the last audible sample."""
    import soundfile as sf

    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text], capture_output=True, check=True, timeout=60
    ).stdout
    audio, rate = sf.read(io.BytesIO(wav))
    loud = np.nonzero(np.abs(audio) > 0.01 * np.abs(audio).max())[0]
    return float(loud[-1] - loud[0]) / rate if len(loud) else 0.0


def old_bound_seconds(text: str) -> float:
    """The estimate before text/pace.py: 14 characters a second, twice that."""
    return 2.0 * max(1.0, len(text) / 14.0)


def quantiles(values: list[float]) -> dict:
    ordered = sorted(values)
    return {
        "median": ordered[len(ordered) // 2],
        "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
        "min": ordered[0],
        "max": ordered[-1],
    }


def espeak_figures() -> dict:
    speech = {f"{v}@{s}": [(t, spoken_seconds(t, v, s)) for t in ENGLISH] for v, s in VOICES}
    speech["cmn@175"] = [(t, spoken_seconds(t, "cmn", 175)) for t in MANDARIN]
    measures = {"characters": len, "words": lambda t: len(t.split()), "spoken units": spoken_units}
    variation = {}
    for name, measure in measures.items():
        cvs = []
        for voice, items in speech.items():
            if voice.startswith("cmn") and name == "words":
                continue
            ratios = [seconds / measure(text) for text, seconds in items if len(text) > 5]
            cvs.append(statistics.pstdev(ratios) / statistics.mean(ratios))
        variation[name] = statistics.mean(cvs)

    errors, old, new_known, new_unknown = [], [], [], []
    reserved = {"old": 0.0, "new, pace known": 0.0, "new, pace unknown": 0.0, "speech": 0.0}
    for items in speech.values():
        longer = [item for item in items if spoken_units(item[0]) > 40]
        for index, (text, seconds) in enumerate(items):
            others = [item for item in longer if item[0] != text]
            start = index % len(others)
            context = (others + others)[start : start + 2]  # two "earlier chunks" of the same voice
            seconds_per_unit = sum(s for _, s in context) / sum(spoken_units(t) for t, _ in context)
            predicted = spoken_units(text) * seconds_per_unit
            errors.append(seconds / predicted)
            old.append(old_bound_seconds(text) / seconds)
            known = bound_seconds(text, seconds_per_unit)
            unknown = bound_seconds(text)
            new_known.append(known / seconds)
            new_unknown.append(unknown / seconds)
            reserved["old"] += old_bound_seconds(text)
            reserved["new, pace known"] += known
            reserved["new, pace unknown"] += unknown
            reserved["speech"] += seconds
    return {
        "texts": sum(len(items) for items in speech.values()),
        "voices": list(speech),
        "variation": variation,
        "actual_over_predicted": quantiles(errors),
        "bound_over_actual": {
            "old (characters, x2)": quantiles(old),
            "new, pace known (units, x1.5)": quantiles(new_known),
            "new, pace unknown (units, x2)": quantiles(new_unknown),
        },
        "reserved_over_speech": {k: v / reserved["speech"] for k, v in reserved.items() if k != "speech"},
    }


def print_espeak(result: dict) -> None:
    print(f"espeak-ng speech: {result['texts']} texts, voices {', '.join(result['voices'])}")
    print("duration / measure, variation per voice (coefficient of variation):")
    for name, cv in result["variation"].items():
        print(f"  {name:<14}{cv:>8.3f}")
    e = result["actual_over_predicted"]
    print(
        "pace learned from two other texts of the voice: actual / predicted "
        f"median {e['median']:.2f}, p95 {e['p95']:.2f}, min {e['min']:.2f}, max {e['max']:.2f}"
    )
    print(f"{'bound / actual speech':<34}{'median':>8}{'p95':>8}{'min':>8}{'max':>8}")
    for name, q in result["bound_over_actual"].items():
        print(f"  {name:<32}{q['median']:>8.2f}{q['p95']:>8.2f}{q['min']:>8.2f}{q['max']:>8.2f}")
    print("positions reserved / positions spoken (all texts):")
    for name, ratio in result["reserved_over_speech"].items():
        print(f"  {name:<32}{ratio:>8.2f}")


def model_figures(args) -> dict:
    """Synthesize a long text chunk by chunk with the given model; each chunk's frames vs its bound."""
    from higgs_worker.contract.schema import SynthesisRequest
    from higgs_worker.model.engine import Engine, pick_dtype
    from higgs_worker.model.prompt import SYSTEM_SINGLE
    from higgs_worker.synthesis import VoiceSetup, synthesize

    engine = Engine.load(args.model_dir, args.tokenizer_dir, args.device, pick_dtype("auto", args.device))
    text = " ".join(ENGLISH * args.repeat)
    request = SynthesisRequest.model_validate({"text": text, "chunk_max_words": args.chunk_words, "seed": 1})
    chunks: list[dict] = []
    generate_rows = engine.generate_rows

    def counting(prompt, sampling, *rest, **kwargs):  # each chunk: its text, bound and rows
        said = prompt.turns[-1].text
        chunks.append({"units": spoken_units(said), "bound": sampling.max_new_tokens, "rows": 0})
        for row in generate_rows(prompt, sampling, *rest, **kwargs):
            chunks[-1]["rows"] += 1
            yield row

    engine.generate_rows = counting
    for _ in synthesize(engine, request, VoiceSetup(system=SYSTEM_SINGLE), args.cap):
        pass
    for chunk in chunks:
        chunk["hit"] = chunk["rows"] >= chunk["bound"]  # no natural end: the audio was cut
    per_chunk = chunks
    return {
        "chunks": len(per_chunk),
        "rows_over_bound": quantiles([c["rows"] / c["bound"] for c in per_chunk]),
        "hit_the_bound": sum(c["hit"] for c in per_chunk),
        "per_chunk": per_chunk,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", help="a model folder (the real checkpoint: a GPU)")
    parser.add_argument("--tokenizer-dir")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--repeat", type=int, default=2, help="the texts this many times, as one long text")
    parser.add_argument("--chunk-words", type=int, default=100)
    parser.add_argument("--cap", type=int, default=15000)
    args = parser.parse_args(argv)
    print(f"python benchmarks/token_estimate.py {' '.join(sys.argv[1:] if argv is None else argv)}")
    if args.model_dir:
        result = model_figures(args)
        q = result["rows_over_bound"]
        print(
            f"{result['chunks']} chunks: generated rows / bound median {q['median']:.2f}, p95 {q['p95']:.2f}, "
            f"max {q['max']:.2f}; {result['hit_the_bound']} hit the bound (cut)"
        )
    else:
        result = espeak_figures()
        print_espeak(result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
