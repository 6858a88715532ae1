"""Entry point of the Higgs Audio v2 worker: RunPod's queue loop or the HTTP server.

    python -u handler.py                      # on RunPod (bootstrap.sh runs this)
    python handler.py --test_input '{"input": {"text": "Hello there."}}'
    python handler.py --rp_serve_api          # local /run, /runsync, /status, /stream
    WORKER_MODE=http python handler.py        # OpenAI-compatible HTTP server (docs/http-mode.md)

Queue mode (the default): ``handler`` returns the job's output dict, so ``/runsync``
answers ``{"output": {...}}``. With ``STREAM_JOBS=true`` the endpoint streams:
``stream_handler`` (an async generator, with ``return_aggregate_stream``) yields a job's
stream items while it is generated and its output last, and ``/run`` + ``/status`` and
``/runsync`` give the list of items. A job asking for ``"stream": true`` on an endpoint
that does not stream is refused with ``invalid_input``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading

# The runpod SDK logs whole job outputs at DEBUG, its default; outputs hold presigned
# URLs and base64 audio. Set before the SDK is imported.
os.environ.setdefault("RUNPOD_LOG_LEVEL", "INFO")

from pydantic import TypeAdapter, ValidationError  # noqa: E402

from higgs_worker import logs  # noqa: E402
from higgs_worker.contract.config import SettingsError  # noqa: E402
from higgs_worker.contract.errors import INVALID_INPUT  # noqa: E402
from higgs_worker.job_thread import JobThread  # noqa: E402
from higgs_worker.jobs import Worker  # noqa: E402
from higgs_worker.startup import warm_start  # noqa: E402

log = logging.getLogger("handler")
_worker: Worker | None = None

STREAM_REFUSED = (
    f"{INVALID_INPUT}: this endpoint does not stream jobs; set STREAM_JOBS=true on the endpoint for /stream, "
    "or run the worker with WORKER_MODE=http for streamed speech over HTTP (docs/http-mode.md); "
    "or leave out 'stream'"
)


def get_worker() -> Worker:
    global _worker
    if _worker is None:
        _worker = Worker()
    return _worker


def load_model(worker: Worker) -> None:
    """Download, load and warm up the model (compiled kernels from the volume when there):
    HTTP mode calls this at start; queue mode through ``warm_start`` when the model is
    already on the volume (or PRELOAD_MODELS), else the first job does it."""
    worker.ensure_engine()


def start_torch_threads() -> None:
    """One small parallel torch op on the main thread, before any job thread runs torch.

    When the first parallel op of the process ran on another thread (a job's or a loader's),
    CPU generation was about 8-15 times slower for every later job here (tiny model, torch's
    OpenMP intra-op pool); one op on the main thread at start avoids it."""
    import torch

    torch.ones(256, 256) @ torch.ones(256, 256)


def import_compiler_state(worker: Worker) -> None:
    """Where the decode step will be compiled, import inductor's CUDA-graph trees here, on the main
    thread: the thread that imports them first must live as long as the process, or the process can
    crash when it ends (``torch_features.import_cudagraph_trees``). Nothing on the plain path (the
    CPU default): the import costs seconds there."""
    if worker.compiles():
        from higgs_worker.model import torch_features

        torch_features.import_cudagraph_trees()


def _progress_sender(job: dict):
    if not os.environ.get("RUNPOD_WEBHOOK_POST_OUTPUT"):
        return None  # local modes have no progress channel

    def send(index: int, total: int) -> None:
        import runpod

        runpod.serverless.progress_update(job, f"chunk {index} of {total}")

    return send


def _start(job: dict, emit_item) -> tuple[asyncio.Queue, threading.Event]:
    """Run ``job`` in a thread (``JobThread``). The queue gets ``(False, stream item)`` for each
    item passed to ``emit_item`` (when not None) and always exactly one ``(True, output)`` last."""
    thread = JobThread()
    emit = (lambda item: thread.put((False, item))) if emit_item else None
    thread.start(
        f"job-{job.get('id')}",
        lambda: get_worker().run(job, should_stop=thread.stop.is_set, progress=_progress_sender(job), emit=emit),
        last=lambda outcome: (True, outcome.as_output()),
    )
    return thread.events, thread.stop


def _asks_to_stream(job: dict) -> bool:
    job_input = job.get("input") if isinstance(job, dict) else None
    if not isinstance(job_input, dict) or "stream" not in job_input:
        return False
    try:
        return TypeAdapter(bool).validate_python(job_input["stream"])
    except ValidationError:
        return False  # the schema reports the bad value


async def handler(job: dict) -> dict:
    """Queue mode without streaming: the job's output dict (or ``{"error": ...}``).

    A cancel or timeout from RunPod cancels this task: generation then stops at its
    next step (the thread checks ``stop``)."""
    if _asks_to_stream(job):
        return {"error": STREAM_REFUSED}
    queue, stop = _start(job, emit_item=False)
    try:
        _last, result = await queue.get()
        return result
    finally:
        stop.set()


async def stream_handler(job: dict):
    """Queue mode with STREAM_JOBS=true: stream items while generating, the output last."""
    queue, stop = _start(job, emit_item=True)
    # A stop from RunPod cancels this task, possibly while the SDK is posting a stream item
    # and this generator is suspended at ``yield`` (its ``finally`` would then not run until
    # the task is collected): stop generation as soon as the task is done, however it ends.
    asyncio.current_task().add_done_callback(lambda _task: stop.set())
    try:
        while True:
            last, item = await queue.get()
            yield item
            if last:
                return
    finally:
        stop.set()


def concurrency_modifier(current: int) -> int:
    """How many jobs this worker takes at once (the SDK asks between jobs): MAX_CONCURRENCY
    generation slots (auto: 16 on CUDA, 1 on the CPU; the generating jobs share every decode
    step) plus IO_JOBS that fetch inputs or deliver results meanwhile (higgs_worker.admission).
    Each job is checked completely as soon as it is taken, before it waits for a slot."""
    return get_worker().jobs_at_once


async def run_to_result(job: dict) -> dict:
    """The last item of ``stream_handler`` (the job's output), for the SDK's local test mode."""
    result: dict = {}
    async for item in stream_handler(job):
        result = item
    return result


def start_config(worker: Worker) -> dict:
    """The config for ``runpod.serverless.start`` in queue mode."""
    local_test = not (
        os.environ.get("RUNPOD_WEBHOOK_GET_JOB")
        or os.environ.get("RUNPOD_REALTIME_PORT")
        or "--rp_serve_api" in sys.argv
    )
    if not worker.settings.stream_jobs:
        return {"handler": handler, "concurrency_modifier": concurrency_modifier}
    if local_test:  # --test_input or test_input.json: the SDK's local mode runs plain handlers only
        return {"handler": run_to_result, "concurrency_modifier": concurrency_modifier}
    return {"handler": stream_handler, "return_aggregate_stream": True, "concurrency_modifier": concurrency_modifier}


def main() -> None:
    logs.setup()
    start_torch_threads()
    try:
        worker = get_worker()  # every environment variable is parsed and checked here, once
    except SettingsError as exc:
        log.error("%s; the worker cannot start", exc)
        sys.exit(2)
    import_compiler_state(worker)
    if worker.settings.worker_mode == "http":
        from higgs_worker.http.app import serve

        serve(worker, load=lambda: load_model(worker))  # loads the model at start; /ping says when
        return
    warm_start(worker)  # load + compile before the first job when the model is on the volume
    import runpod

    runpod.serverless.start(start_config(worker))


if __name__ == "__main__":
    main()
