"""The thread that first imports inductor's CUDA-graph trees must live as long as the process
(higgs_worker/model/torch_features.py ``import_cudagraph_trees``; handler.main calls it).

The import stashes Python objects in the importing thread's C++ thread-local storage; when that
thread ends, their destructor runs without the thread's Python state and the process can die of a
segmentation fault (torch 2.9.1: about one run in eight; a pytest worker died of it in CI). Each
check runs in a fresh interpreter, where nothing has imported the module yet (this pytest process
imported it at its start, tests/conftest.py).
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

# after the main thread's import, a thread that binds a compiled step (which reads the trees'
# per-thread state) and ends holds nothing in its C++ thread-local storage
BIND_ON_A_THREAD = r"""
import json, sys, threading
import torch
from higgs_worker.model import torch_features
from higgs_worker.model.compiled_step import CompiledStep

imported = torch_features.import_cudagraph_trees() if sys.argv[1] == "main" else None
found = {}

def bind():
    step = CompiledStep(lambda codes: codes.float() * 2, True, backend="inductor", mode="reduce-overhead")
    step.bind()
    found["stashed_on_thread"] = torch._C._is_key_in_tls("tree_manager_containers")

thread = threading.Thread(target=bind)
thread.start()
thread.join()
for _ in range(20):  # other threads start and end after it (where the crash showed)
    other = threading.Thread(target=lambda: torch.ones(3).sum())
    other.start()
    other.join()
found["imported"] = imported
found["stashed_on_main"] = torch._C._is_key_in_tls("tree_manager_containers")
print("RESULT " + json.dumps(found))
"""


def bind_on_a_thread(import_on_main: bool) -> tuple[int, dict | None, str]:
    proc = subprocess.run(
        [sys.executable, "-c", BIND_ON_A_THREAD, "main" if import_on_main else "thread"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    line = next((line for line in proc.stdout.splitlines() if line.startswith("RESULT ")), None)
    return proc.returncode, json.loads(line[7:]) if line else None, proc.stderr


def test_imported_on_the_main_thread_the_threads_that_compile_later_stash_nothing():
    code, found, stderr = bind_on_a_thread(import_on_main=True)
    assert code == 0, stderr[-2000:]
    assert found == {"imported": True, "stashed_on_main": True, "stashed_on_thread": False}
    assert "first imported on thread" not in stderr


def test_imported_first_on_a_thread_the_worker_warns():
    """Without the import at start, the binding thread is the one that imports: the stash is
    that thread's, the main thread has none, and the compiled step says so in the log."""
    code, found, stderr = bind_on_a_thread(import_on_main=False)
    if code == 0:  # the crash this prevents is not certain to happen in one run
        assert found["stashed_on_thread"] is True and found["stashed_on_main"] is False
    assert "CUDA-graph trees first imported on thread" in stderr


def test_the_handler_imports_them_at_start_only_where_the_worker_compiles(subprocess_env):
    """One interpreter: first a worker on the plain path (nothing imported: the import costs
    seconds at start), then one that compiles (imported, on the main thread)."""
    script = (
        "import os, sys, handler\n"
        "from higgs_worker.contract.config import Settings\n"
        "from higgs_worker.jobs import Worker\n"
        "for setting in ('false', 'true'):\n"
        "    worker = Worker(Settings.from_env({**os.environ, 'DECODE_COMPILE': setting, 'DEVICE': 'cpu'}))\n"
        "    handler.import_compiler_state(worker)\n"
        "    print('IMPORTED', setting, 'torch._inductor.cudagraph_trees' in sys.modules)\n"
    )
    command = [sys.executable, "-c", script]
    proc = subprocess.run(command, cwd=ROOT, env=subprocess_env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "IMPORTED false False" in proc.stdout and "IMPORTED true True" in proc.stdout, proc.stdout
