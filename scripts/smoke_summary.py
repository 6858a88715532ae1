"""Run one job through handler.py's handler, write what it returns under out/, print a summary.

    .venv/bin/python scripts/smoke_summary.py '{"input": {"text": "Hello there.", "subtitles": "srt"}}'

``scripts/smoke.sh`` runs this. The audio (and the subtitles, when asked for) are
written to ``out/<output_name or smoke-<time>>.<ext>`` from the inline base64 or
downloaded from the presigned URLs, the result without its payloads next to them as
``.json``; the summary gives the path, duration, format and timings. The handler's
result may be a dict, or a list of stream items whose last item is the result.
RunPod's own local mode, which prints the raw result, stays
``python handler.py --test_input '{"input": {...}}'``.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def result_of(output: Any) -> dict:
    """The job's result from what the handler returned: a dict, or a list whose last item it is."""
    if isinstance(output, list):
        output = output[-1] if output else {}
    if not isinstance(output, dict):
        raise SystemExit(f"smoke: the handler returned {type(output).__name__}, not a result")
    return output


async def call(handler, job: dict) -> Any:
    value = handler(job)
    if inspect.isasyncgen(value):
        return [item async for item in value]
    if inspect.isawaitable(value):
        return await value
    return list(value) if inspect.isgenerator(value) else value


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310  presigned https URL from the worker
        return response.read()


def save(result: dict, job_input: dict, out_dir: Path) -> tuple[Path | None, Path | None]:
    stem = job_input.get("output_name") or time.strftime("smoke-%Y%m%d-%H%M%S")
    stem = stem.rsplit(".", 1)[0] if stem.endswith(f".{result.get('format')}") else stem
    out_dir.mkdir(parents=True, exist_ok=True)
    audio_path = out_dir / f"{stem}.{result.get('format', 'bin')}"
    if "audio_base64" in result:
        audio_path.write_bytes(base64.b64decode(result["audio_base64"]))
    elif result.get("audio_url"):
        audio_path.write_bytes(fetch(result["audio_url"]))
    else:
        audio_path = None
    subtitles_path = None
    subs = result.get("subtitles")
    if isinstance(subs, dict):
        subtitles_path = out_dir / f"{stem}.{subs.get('format', 'txt')}"
        if "text" in subs:
            subtitles_path.write_text(subs["text"], encoding="utf-8")
        elif subs.get("url"):
            subtitles_path.write_bytes(fetch(subs["url"]))
        else:
            subtitles_path = None
    brief = {k: v for k, v in result.items() if k != "audio_base64"}
    if isinstance(subs, dict):
        brief["subtitles"] = {k: v for k, v in subs.items() if k != "text"}
    (out_dir / f"{stem}.json").write_text(json.dumps(brief, indent=2) + "\n", encoding="utf-8")
    return audio_path, subtitles_path


def decodes(path: Path, result: dict) -> str:
    if result.get("format") == "pcm":
        return f"raw s16le, {path.stat().st_size // 2 / result['sample_rate']:.3f} s"
    import soundfile as sf

    info = sf.info(str(path))
    return f"decodes: {info.frames / info.samplerate:.3f} s at {info.samplerate} Hz"


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def summary(result: dict, audio_path: Path | None, subtitles_path: Path | None) -> list[str]:
    lines = []
    if audio_path is not None:
        size = audio_path.stat().st_size
        lines.append(f"audio      {shown(audio_path)} ({size} bytes; {decodes(audio_path, result)})")
    else:
        lines.append(f"audio      {result.get('s3_uri')} (stored in S3, no presigned URL to download)")
    lines.append(
        f"format     {result.get('format')}, {result.get('sample_rate')} Hz, {result.get('duration_s')} s, "
        f"{result.get('num_chunks')} chunk(s), seed {result.get('seed')}"
    )
    segments = result.get("segments") or []
    if segments:
        first = segments[0]
        lines.append(
            f"segments   {len(segments)} (first: {first['start_s']:.3f}-{first['end_s']:.3f} s {first['text'][:40]!r})"
        )
    if subtitles_path is not None:
        lines.append(f"subtitles  {shown(subtitles_path)}")
    loud = result.get("loudness")
    if loud:
        lines.append(
            f"loudness   {loud.get('before_lufs')} -> {loud.get('after_lufs')} LUFS "
            f"(target {loud.get('target_lufs')}), true peak {loud.get('true_peak_dbtp')} dBTP"
        )
    timings = result.get("timings") or {}
    lines.append("timings    " + ", ".join(f"{k} {v}" for k, v in timings.items()) + f", rtf {result.get('rtf')}")
    return lines


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    try:
        job = json.loads(argv[0])
    except json.JSONDecodeError as exc:
        print(f"smoke: the job is not JSON ({exc})", file=sys.stderr)
        return 2
    if not isinstance(job, dict) or not isinstance(job.get("input"), dict):
        print('smoke: give a job like \'{"input": {"text": "Hello there."}}\'', file=sys.stderr)
        return 2
    job.setdefault("id", "local_test")
    sys.path.insert(0, str(ROOT))
    import handler  # sets the SDK's log level before importing it, as on RunPod
    from higgs_worker import logs

    logs.setup()
    result = result_of(asyncio.run(call(handler.handler, job)))
    if "error" in result:
        print(f"smoke: the job failed: {result['error']}", file=sys.stderr)
        return 1
    audio_path, subtitles_path = save(result, job["input"], ROOT / "out")
    print("\n".join(summary(result, audio_path, subtitles_path)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
