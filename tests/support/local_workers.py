"""Real workers behind the RunPod look-alike: ``python handler.py`` on the runpod SDK's production
loop (as on RunPod), pulling jobs from tests/support/fake_endpoint.py. Used by the client's
tests and by benchmarks/book_client.py --local."""

from __future__ import annotations

from pathlib import Path

from tests.support.fake_endpoint import FakeEndpoint
from tests.support.worker_process import WorkerProcess


class LocalWorker(WorkerProcess):
    """``python handler.py`` on the SDK's production loop, pulling jobs from the look-alike."""

    def __init__(self, env: dict, worker_id: str):
        super().__init__(env)
        self.worker_id = worker_id


class LocalEndpoint:
    """The look-alike in front of up to two real workers (the machine has two cores)."""

    def __init__(self, base_env: dict, home: Path):
        self.fake = FakeEndpoint(lost_after_s=6.0).__enter__()
        self.base_env = {
            **base_env,
            "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",  # they need 8.8.8.8:53 and a GPU
            "RUNPOD_SKIP_GPU_CHECK": "true",
            "HOME": str(home),
            "PRELOAD_MODELS": "true",  # load before the first job-take, as a FlashBoot worker does
            "MODEL_DOWNLOAD_ATTEMPTS": "1",
        }
        self.workers: dict[str, LocalWorker] = {}

    def start(self, worker_id: str) -> LocalWorker:
        worker = LocalWorker({**self.base_env, **self.fake.worker_env(worker_id)}, worker_id)
        self.workers[worker_id] = worker
        return worker

    def wait_ready(self, timeout: float = 240) -> None:
        """Every worker has asked for a job (so the model is loaded)."""
        for worker_id, worker in self.workers.items():
            try:
                self.fake.wait_for(lambda w=worker_id: w in self.fake._seen, timeout, f"job-take from {worker_id}")
            except TimeoutError:
                raise AssertionError(f"{worker_id} did not start:\n{worker.output()[-4000:]}") from None

    def ensure(self, count: int = 2) -> None:
        for n in range(1, count + 1):
            worker_id = f"worker-{n}"
            worker = self.workers.get(worker_id)
            if worker is None or worker.proc.poll() is not None:
                self.fake._seen.pop(worker_id, None)
                self.start(worker_id)
        self.wait_ready()

    def close(self) -> None:
        for worker in self.workers.values():
            worker.kill()
        self.fake.__exit__(None, None, None)
