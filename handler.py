"""RunPod serverless entry point for the Higgs Audio v2 worker.

    python -u handler.py                      # on RunPod (bootstrap.sh runs this)
    python handler.py --test_input '{"input": {"text": "Hello there."}}'
    python handler.py --rp_serve_api          # local /run, /runsync, /status, /stream

The handler is an async generator so that ``/stream`` works: a job with
``"stream": true`` yields audio pieces while it is generated, and every job yields its
full output (or ``{"error": ...}``) last. With ``return_aggregate_stream`` the output of
``/run`` + ``/status`` and ``/runsync`` is the list of yielded items; its last item is
the result. ``--test_input`` (the SDK's local mode, which cannot run generators)
returns that last item alone.
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

from higgs_worker import logs  # noqa: E402
from higgs_worker.config import SettingsError  # noqa: E402
from higgs_worker.jobs import Worker  # noqa: E402
from higgs_worker.startup import warm_start  # noqa: E402

_worker: Worker | None = None


def get_worker() -> Worker:
    global _worker
    if _worker is None:
        _worker = Worker()
    return _worker


def _progress_sender(job: dict):
    if not os.environ.get("RUNPOD_WEBHOOK_POST_OUTPUT"):
        return None  # local modes have no progress channel

    def send(index: int, total: int) -> None:
        import runpod

        runpod.serverless.progress_update(job, f"chunk {index} of {total}")

    return send


async def handler(job: dict):
    """Run the job in a thread; pass stream pieces on as they come; the result last.

    A cancel or timeout from RunPod cancels this task: generation then stops at its
    next step (the thread checks ``stop``)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    stop = threading.Event()

    def emit(item: dict) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, (False, item))

    def work() -> None:
        result = get_worker().run(job, stop.is_set, _progress_sender(job), emit)
        loop.call_soon_threadsafe(queue.put_nowait, (True, result))

    # A stop from RunPod cancels this task, possibly while the SDK is posting a stream item
    # and this generator is suspended at ``yield`` (its ``finally`` would then not run until
    # the task is collected): stop generation as soon as the task is done, however it ends.
    asyncio.current_task().add_done_callback(lambda _task: stop.set())
    threading.Thread(target=work, name=f"job-{job.get('id')}", daemon=True).start()
    try:
        while True:
            last, item = await queue.get()
            yield item
            if last:
                return
    finally:
        stop.set()


def concurrency_modifier(current: int) -> int:
    """How many jobs this worker takes at once (the SDK asks between jobs): MAX_CONCURRENCY,
    or auto: 16 on CUDA, 1 on the CPU. Jobs share every decode step (higgs_worker.scheduler)."""
    from higgs_worker.engine import concurrency_for, pick_device

    settings = get_worker().settings
    return concurrency_for(settings.max_concurrency, pick_device(settings.device))


async def run_to_result(job: dict) -> dict:
    """The last item of ``handler`` (the job's output), for the SDK's local test mode."""
    result: dict = {}
    async for item in handler(job):
        result = item
    return result


def main() -> None:
    import runpod

    logs.setup()
    try:
        worker = get_worker()  # every environment variable is parsed and checked here, once
    except SettingsError as exc:
        logging.getLogger("handler").error("%s; the worker cannot start", exc)
        sys.exit(2)
    warm_start(worker)  # load + compile before the first job when the model is on the volume
    local_test = not (
        os.environ.get("RUNPOD_WEBHOOK_GET_JOB")
        or os.environ.get("RUNPOD_REALTIME_PORT")
        or "--rp_serve_api" in sys.argv
    )
    if local_test:  # --test_input or test_input.json: the SDK's local mode runs plain handlers only
        runpod.serverless.start({"handler": run_to_result, "concurrency_modifier": concurrency_modifier})
    else:
        runpod.serverless.start(
            {"handler": handler, "return_aggregate_stream": True, "concurrency_modifier": concurrency_modifier}
        )


if __name__ == "__main__":
    main()
