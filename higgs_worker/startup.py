"""What a worker does before its first job, and how long each part took.

When the model is already complete on the volume (or ``PRELOAD_MODELS=true``), the
worker loads it and warms up (compiling the decode step, or loading its compiled
kernels from ``COMPILE_CACHE_DIR``) before it takes a job, so no job pays for it.
On an empty volume nothing happens here: the first job downloads the model, as the
product promises.
"""

from __future__ import annotations

import logging
import os

from .jobs import Timer, Worker
from .model.engine import peak_rss_mb
from .model.model_store import find_local

log = logging.getLogger(__name__)


def process_age_s() -> float | None:
    """Seconds since this process started (Linux /proc), or None elsewhere."""
    try:
        with open("/proc/self/stat") as handle:
            started_ticks = int(handle.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as handle:
            uptime = float(handle.read().split()[0])
        return max(0.0, uptime - started_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def model_on_volume(worker: Worker) -> bool:
    settings = worker.settings
    return all(find_local(source, settings.hf_cache_dir) for source in (settings.model, settings.tokenizer))


def warm_start(worker: Worker) -> dict:
    """Load and warm up before the first job when the model is on the volume (or
    ``PRELOAD_MODELS``); return the phase timings in seconds (also logged)."""
    phases: dict = {"imports_s": process_age_s()}  # process start -> here: interpreter and imports
    if not (worker.settings.preload_models or model_on_volume(worker)):
        log.info(
            "the model is not on the volume yet: the first job downloads and loads it "
            "(PRELOAD_MODELS=true does it at start)"
        )
        phases["warm"] = False
        return phases
    timer = Timer()
    try:
        worker.ensure_engine(timer)
    except Exception as exc:  # the first job retries and reports the error to its caller
        log.error("start-up load failed: %s", exc)
        phases["warm"] = False
        return phases
    report = worker.warmup_report
    phases.update({key: round(timer.marks.get(key, 0.0), 3) for key in ("download_s", "load_s", "warmup_s")})
    phases.update(
        warm=True,
        compile_cache=report.status if report else "failed",
        graphs_loaded=report.graphs_loaded if report else 0,
        graphs_compiled=report.graphs_compiled if report else 0,
        peak_rss_mb=round(peak_rss_mb(), 1),
        ready_s=process_age_s(),
    )
    log.info(
        "worker ready %s after process start: imports %s, download %.1fs, load %.1fs (peak host RSS %.0f MB), "
        "compile/warm-up %.1fs (compile cache %s: %d graph(s) loaded, %d compiled)",
        _seconds(phases["ready_s"]),
        _seconds(phases["imports_s"]),
        phases["download_s"],
        phases["load_s"],
        phases["peak_rss_mb"],
        phases["warmup_s"],
        phases["compile_cache"],
        phases["graphs_loaded"],
        phases["graphs_compiled"],
    )
    return phases


def _seconds(value: float | None) -> str:
    return "?" if value is None else f"{value:.1f}s"
