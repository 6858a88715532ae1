"""RunPod serverless entry point for the Higgs Audio v2 worker.

python -u handler.py                      # on RunPod (bootstrap.sh runs this)
python handler.py --test_input '{"input": {"text": "Hello there."}}'
python handler.py --rp_serve_api          # local /run, /runsync, /status, /stream
"""

from __future__ import annotations

import asyncio
import os
import threading

# The runpod SDK logs whole job outputs at DEBUG, its default; outputs hold presigned
# URLs and base64 audio. Set before the SDK is imported.
os.environ.setdefault("RUNPOD_LOG_LEVEL", "INFO")

from higgs_worker import logs
from higgs_worker.jobs import Worker

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


async def handler(job: dict) -> dict:
    """Run the job in a thread so that a cancel or timeout from RunPod (which cancels
    this task) stops generation at its next step."""
    stop = threading.Event()
    try:
        return await asyncio.to_thread(get_worker().run, job, stop.is_set, _progress_sender(job))
    except asyncio.CancelledError:
        stop.set()
        raise


def main() -> None:
    import runpod

    logs.setup()
    worker = get_worker()
    if worker.settings.preload_models:
        worker.ensure_engine()
    runpod.serverless.start({"handler": handler})


if __name__ == "__main__":
    main()
