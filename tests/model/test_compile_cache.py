"""Compiled kernels on the volume (higgs_worker/model/compile_cache.py).

One slow test runs two real worker processes in turn against one volume folder with
``DECODE_COMPILE=true`` (inductor compiles the tiny model's decode step on the CPU):
the first compiles and publishes, the second loads. The bundle rules (foreign key,
truncated or corrupt file, workers writing together) are checked on the bundle layer
with plain files, which is all that layer sees of inductor's folder.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from higgs_worker.model import compile_cache
from higgs_worker.model.compile_cache import BUNDLE, MAGIC, CompileCache, cache_key, key_id
from higgs_worker.model.decode_loop import LoopSettings
from tests.conftest import ROOT

WORKER = r"""
import json
from torch._dynamo.utils import counters
from higgs_worker import logs
from higgs_worker.jobs import Worker
from higgs_worker.startup import warm_start
logs.setup()
worker = Worker()
phases = warm_start(worker)
graphs = lambda: counters["inductor"]["fxgraph_cache_hit"] + counters["inductor"]["fxgraph_cache_miss"]
before = graphs()
out = worker.run({"id": "first", "input": {"text": "Hello there.", "seed": 1, "max_new_tokens": 20}}).as_output()
print("RESULT " + json.dumps({"phases": phases, "timings": out.get("timings"), "error": out.get("error"),
                              "graphs_in_first_job": graphs() - before, "inductor": dict(counters["inductor"])}))
"""


def start_worker(env: dict) -> tuple[dict, str]:
    proc = subprocess.run(
        [sys.executable, "-c", WORKER], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    line = next(line for line in reversed(proc.stdout.splitlines()) if line.startswith("RESULT "))
    return json.loads(line[7:]), proc.stdout


@pytest.mark.slow
def test_second_worker_loads_the_compiled_kernels_the_first_one_left_on_the_volume(subprocess_env, tmp_path):
    cache_dir = tmp_path / "volume" / "compile-cache"
    env = {k: v for k, v in subprocess_env.items() if not k.startswith(("TORCHINDUCTOR_", "TRITON_"))}
    env.update({"DECODE_COMPILE": "true", "COMPILE_CACHE_DIR": str(cache_dir)})

    first, log1 = start_worker(env)
    assert first["error"] is None
    assert first["phases"]["warm"] and first["phases"]["compile_cache"] == "miss"
    assert first["phases"]["graphs_compiled"] >= 1 and first["inductor"]["fxgraph_cache_miss"] >= 1
    assert "compile cache miss" in log1 and "saved to" in log1
    bundles = list(cache_dir.glob(f"*/{BUNDLE}"))
    assert len(bundles) == 1 and bundles[0].read_bytes().startswith(MAGIC)
    # the model was on the volume: load and compile happened at start, not in the job
    assert first["timings"]["load_s"] == 0 and first["timings"]["warmup_s"] == 0
    assert first["graphs_in_first_job"] == 0

    second, log2 = start_worker(env)
    assert second["error"] is None
    assert second["phases"]["compile_cache"] == "hit" and "compile cache hit" in log2
    assert second["phases"]["graphs_loaded"] >= 1 and second["phases"]["graphs_compiled"] == 0
    assert second["inductor"]["fxgraph_cache_hit"] >= 1 and "fxgraph_cache_miss" not in second["inductor"]
    assert second["timings"]["warmup_s"] == 0 and second["graphs_in_first_job"] == 0
    assert "saved to" not in log2  # nothing new to publish
    assert "Traceback" not in log1 + log2


# -- the bundle layer --------------------------------------------------------------------------


@pytest.fixture
def key(engine) -> dict:
    return cache_key(engine, "abc123", str(Path(engine.model.name_or_path)))


def fill(folder: Path, names: dict[str, bytes]) -> Path:
    for name, data in names.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def local_dir(tmp_path: Path, name: str, files: dict[str, bytes] | None = None) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    return fill(folder, files or {})


KERNELS = {
    "fxgraph/ab/fabc/entry": b"graph" * 100,
    "ab/cabc.so": b"\x7fELF" + b"k" * 5000,
    "locks/cabc.lock": b"",
    "aotautograd/x/y": b"aot",
}


def test_key_names_what_invalidates_compiled_code(engine, key):
    assert {
        "torch",
        "triton",
        "transformers",
        "python",
        "cpu",
        "cpu_capability",
        "model_revision",
        "model_config_sha256",
        "dtype",
        "compile",
        "code_sha256",
    } <= set(key)
    assert key["dtype"] == "torch.float32" and key["model_revision"] == "abc123"
    assert key_id(key) == key_id(json.loads(json.dumps(key)))
    other_revision = cache_key(engine, "def456", str(Path(engine.model.name_or_path)))
    assert key_id(other_revision) != key_id(key)
    assert key_id({**key, "torch": "0.0.1"}) != key_id(key)
    saved = engine.loop.settings
    try:
        engine.loop.settings = replace(saved, compile_mode="max-autotune")
        assert key_id(cache_key(engine, "abc123", str(Path(engine.model.name_or_path)))) != key_id(key)
    finally:
        engine.loop.settings = saved


def test_publish_then_restore_into_another_workers_folder(tmp_path, key):
    root = tmp_path / "volume"
    writer = CompileCache(str(root), key, local_dir(tmp_path, "a", KERNELS))
    assert writer.save() is True
    assert json.loads((root / key_id(key) / "key.json").read_text()) == key
    reader = CompileCache(str(root), key, local_dir(tmp_path, "b"))
    status, detail = reader.restore()
    assert status == "hit", detail
    assert (reader.local / "ab/cabc.so").read_bytes() == KERNELS["ab/cabc.so"]
    assert not (reader.local / "locks").exists()  # lock files are not published
    assert writer.save() is False  # nothing new: the volume is not written again


def test_cache_of_another_torch_version_or_model_revision_is_not_used(tmp_path, key):
    root = tmp_path / "volume"
    for foreign in ({**key, "torch": "0.0.1"}, {**key, "model_revision": "old"}):
        CompileCache(str(root), foreign, local_dir(tmp_path, key_id(foreign), KERNELS)).save()
    ours = CompileCache(str(root), key, local_dir(tmp_path, "ours"))
    assert ours.restore()[0] == "miss" and not any(ours.local.iterdir())
    # a foreign bundle copied into our key's folder is refused by its header
    foreign_bundle = root / key_id({**key, "torch": "0.0.1"}) / BUNDLE
    ours.path.parent.mkdir(parents=True)
    ours.path.write_bytes(foreign_bundle.read_bytes())
    status, detail = ours.restore()
    assert status == "ignored" and "another key" in detail and "torch='0.0.1'" in detail
    assert not any(ours.local.iterdir())


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda data: data[: len(data) - 1000], "truncated"),
        (lambda data: data[:40], "truncated header"),
        (lambda data: data[:-3000] + b"X" * 10 + data[-2990:], "checksum"),
        (lambda data: b"not a bundle at all", "not a compile-cache bundle"),
    ],
)
def test_truncated_or_corrupt_bundle_is_ignored_then_rebuilt(tmp_path, key, damage, reason):
    root = tmp_path / "volume"
    CompileCache(str(root), key, local_dir(tmp_path, "a", KERNELS)).save()
    path = root / key_id(key) / BUNDLE
    path.write_bytes(damage(path.read_bytes()))
    worker = CompileCache(str(root), key, local_dir(tmp_path, "b"))
    status, detail = worker.restore()
    assert status == "ignored" and reason in detail
    assert not any(worker.local.iterdir())
    fill(worker.local, KERNELS)  # what this worker then compiles
    assert worker.save() is True  # the damaged bundle is replaced
    assert CompileCache(str(root), key, local_dir(tmp_path, "c")).restore()[0] == "hit"


# a child process that publishes its folder ROUNDS times (argv: root, key as JSON, local, rounds);
# a fresh interpreter (this pytest process has threads: a fork could inherit a lock one held)
PUBLISH = """
import json, sys
from pathlib import Path
from higgs_worker.model.compile_cache import CompileCache
root, key, local, rounds = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4])
for _ in range(rounds):
    assert CompileCache(root, key, Path(local)).save() in (True, False)
"""


def test_workers_publishing_together_leave_a_complete_bundle(tmp_path, key):
    root = tmp_path / "volume"
    shared = {"fxgraph/ab/fabc/entry": b"graph" * 1000}
    a = local_dir(tmp_path, "a", {**shared, "aa/kernel_a.so": b"A" * 200_000})
    b = local_dir(tmp_path, "b", {**shared, "bb/kernel_b.so": b"B" * 200_000})
    procs = [
        subprocess.Popen([sys.executable, "-c", PUBLISH, str(root), json.dumps(key), str(folder), "5"], cwd=ROOT)
        for folder in (a, b)
    ]
    try:
        assert [proc.wait(timeout=120) for proc in procs] == [0, 0]
    finally:
        for proc in procs:  # one still running is ended: nothing waits for it at exit
            proc.kill()
            proc.wait()
    reader = CompileCache(str(root), key, local_dir(tmp_path, "reader"))
    assert reader.restore()[0] == "hit"
    assert (reader.local / "aa/kernel_a.so").read_bytes() == b"A" * 200_000
    assert (reader.local / "bb/kernel_b.so").read_bytes() == b"B" * 200_000  # both workers' kernels kept
    assert not list((root / key_id(key)).glob(".*.tmp-*"))  # no temporary file left behind


def test_warm_up_without_compiling_leaves_the_volume_alone(engine, tmp_path):
    assert engine.loop.settings == LoopSettings()  # the CPU default: plain step
    report = compile_cache.warm_up(engine, str(tmp_path / "volume"), "abc123", str(tmp_path))
    assert report.status == "off" and report.warmup_s > 0
    assert not (tmp_path / "volume").exists()
