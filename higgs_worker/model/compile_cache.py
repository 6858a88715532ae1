"""Compiled kernels kept on the network volume: a new worker loads them instead of compiling.

Each worker process compiles into its own local inductor cache folder
(``TORCHINDUCTOR_CACHE_DIR`` and ``TRITON_CACHE_DIR``, set here before the first
compile). The volume keeps one bundle per key::

    COMPILE_CACHE_DIR/<key id>/key.json          the key, for people
    COMPILE_CACHE_DIR/<key id>/inductor.bundle   magic line, JSON header line, tar payload

The key is what invalidates compiled code: torch/triton/transformers/python versions,
the GPU's name and compute capability (or the CPU's architecture and vector ISA), the
model revision and config, the dtype, the compile settings and a hash of the
decode-loop source files. The header repeats the key and carries the payload's size
and sha256: a bundle written for another key, truncated or corrupt is ignored with a
log line and replaced by the next worker that compiles, never a failure. A bundle is
written to a temporary file and renamed into place under a file lock, so workers
sharing a volume only ever read complete bundles.

Why a bundle of inductor's folder: torch's portable mega-cache
(``torch.compiler.save_cache_artifacts``) holds the FX graph and AOTAutograd entries
(and, on CUDA, the Triton kernels bundled into them) but not the C++ kernels inductor
builds for the CPU, so a worker still runs the C++ compiler; inductor's folder holds
everything. Measured once on a 2-core CPU with the tiny model (warm-up of a fresh
process): 59 s compiling, 36 s with the mega-cache loaded, 12 s with the folder. Pointing ``TORCHINDUCTOR_CACHE_DIR``
straight at the volume would put thousands of small writes and lock files on a
network file system during compilation and leave partial or damaged files to other
workers with no check.
"""

from __future__ import annotations

import atexit
import hashlib
import io
import json
import logging
import os
import platform
import shutil
import socket
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

log = logging.getLogger(__name__)

FORMAT = 1
MAGIC = b"HIGGS-WORKER-COMPILE-CACHE 1\n"
BUNDLE = "inductor.bundle"
MAX_HEADER_BYTES = 8 * 2**20
LOCK_TIMEOUT_SECONDS = 120.0
# The modules whose code decides what is compiled (the single decode step and its inputs).
CODE_FILES = (
    "compiled_step.py",
    "decode_loop.py",
    "engine.py",
    "lane.py",
    "scheduler.py",
    "slot_attention.py",
    "slot_cache.py",
    "step_runner.py",
)


@dataclass
class CacheReport:
    """What the compile cache did for one warm-up."""

    status: str  # off | hit | miss | ignored
    detail: str = ""
    graphs_loaded: int = 0
    graphs_compiled: int = 0
    restore_s: float = 0.0
    warmup_s: float = 0.0
    save_s: float = 0.0
    saved: bool = False
    fallbacks: int = 0  # times the compiled step fell back to the plain step during warm-up
    extra: dict = field(default_factory=dict)


# -- the key ----------------------------------------------------------------------------


def code_hash(files: tuple[str, ...] = CODE_FILES) -> str:
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in files:
        digest.update(name.encode() + b"\0" + (here / name).read_bytes() + b"\0")
    return digest.hexdigest()


def hardware_key(device: str) -> dict:
    import torch

    if device.startswith("cuda"):
        index = torch.device(device).index
        index = torch.cuda.current_device() if index is None else index
        major, minor = torch.cuda.get_device_capability(index)
        return {
            "gpu": torch.cuda.get_device_name(index),
            "compute_capability": f"{major}.{minor}",
            "cuda": torch.version.cuda,
        }
    return {"cpu": platform.machine(), "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def cache_key(engine, model_revision: str, model_dir: str) -> dict:
    """Everything that invalidates the compiled decode step of ``engine``."""
    import torch
    import transformers

    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    config = Path(model_dir) / "config.json"
    settings = engine.loop.settings
    return {
        "format": FORMAT,
        "torch": torch.__version__,
        "triton": triton_version,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        **hardware_key(str(engine.device)),
        "model_revision": model_revision,
        "model_config_sha256": hashlib.sha256(config.read_bytes()).hexdigest() if config.is_file() else None,
        "dtype": str(engine.model.dtype),
        "compile": {
            "backend": str(settings.compile_backend),
            "mode": settings.compile_mode,
            "fullgraph": settings.fullgraph,
        },
        "code_sha256": code_hash(),
    }


def key_id(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]


def _differences(ours: dict, theirs: dict) -> str:
    names = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
    return ", ".join(f"{k}={theirs.get(k)!r}" for k in names) or "none"


# -- the local inductor folder ------------------------------------------------------------


def use_local_dir(path: str | None = None) -> Path:
    """Point inductor and triton at a private local folder (before anything compiles)."""
    if path is None:
        path = tempfile.mkdtemp(prefix="higgs-inductor-")
        atexit.register(shutil.rmtree, path, True)
    local = Path(path)
    local.mkdir(parents=True, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(local)
    os.environ["TRITON_CACHE_DIR"] = str(local / "triton")
    return local


def _local_files(local: Path) -> list[str]:
    """Cache files worth keeping: not lock files, not half-written temporaries."""
    names = []
    for path in local.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        rel = path.relative_to(local)
        parts = rel.parts
        if parts[0] == "locks" or rel.suffix in (".lock", ".tmp") or any(p.startswith("tmp.") for p in parts):
            continue
        names.append(rel.as_posix())
    return sorted(names)


# -- the bundle on the volume ----------------------------------------------------------------


class BadBundle(Exception):
    """The bundle cannot be used (foreign key, truncated, corrupt); the reason is the message."""


class CompileCache:
    def __init__(self, root: str, key: dict, local: Path):
        self.key = key
        self.id = key_id(key)
        self.folder = Path(root) / self.id
        self.path = self.folder / BUNDLE
        self.local = local

    def _read(self) -> tuple[dict, bytes]:
        """Header and payload of the bundle, checked; raises BadBundle or OSError."""
        with open(self.path, "rb") as handle:
            if handle.readline(len(MAGIC) + 1) != MAGIC:
                raise BadBundle("not a compile-cache bundle")
            line = handle.readline(MAX_HEADER_BYTES)
            if not line.endswith(b"\n"):
                raise BadBundle("truncated header")
            try:
                header = json.loads(line)
            except ValueError:
                raise BadBundle("unreadable header") from None
            if not isinstance(header, dict) or header.get("key") != self.key:
                theirs = header.get("key") if isinstance(header, dict) else None
                raise BadBundle(f"written for another key ({_differences(self.key, theirs or {})})")
            payload = handle.read()
        if len(payload) != header.get("size"):
            raise BadBundle(f"truncated ({len(payload)} of {header.get('size')} bytes)")
        if hashlib.sha256(payload).hexdigest() != header.get("sha256"):
            raise BadBundle("checksum mismatch (corrupt)")
        return header, payload

    def _extract(self, payload: bytes, only: set[str] | None = None) -> int:
        count = 0
        with tarfile.open(fileobj=io.BytesIO(payload), mode="r:") as tar:
            for member in tar.getmembers():
                if member.isfile() and (only is None or member.name in only):
                    tar.extract(member, self.local, filter="data")
                    count += 1
        return count

    def restore(self) -> tuple[str, str]:
        """Unpack the volume's bundle into the local folder: ("hit" | "miss" | "ignored", detail)."""
        if not self.path.exists():
            return "miss", f"no bundle in {self.folder}"
        try:
            header, payload = self._read()
            files = self._extract(payload)
        except BadBundle as exc:
            return "ignored", f"{self.path}: {exc}"
        except (OSError, tarfile.TarError, ValueError) as exc:
            return "ignored", f"{self.path}: unreadable ({type(exc).__name__}: {exc})"
        return "hit", f"{files} files from {self.path} ({len(payload) / 2**20:.1f} MB)"

    def save(self) -> bool:
        """Publish the local folder as the bundle (with what a valid bundle there already has)."""
        ours = set(_local_files(self.local))
        if not ours:
            return False
        self.folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.folder / ".lock"), timeout=LOCK_TIMEOUT_SECONDS):
            try:
                header, payload = self._read()
            except (BadBundle, OSError, ValueError):
                header, payload = None, b""
            if header is not None:
                theirs = set(header.get("files", []))
                if ours <= theirs:
                    return False  # another worker already published all of it
                self._extract(payload, only=theirs - ours)  # keep theirs too (names are content hashes)
            self._write()
        return True

    def _write(self) -> None:
        files = _local_files(self.local)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:") as tar:
            for name in files:
                tar.add(self.local / name, arcname=name, recursive=False)
        payload = buffer.getvalue()
        header = {
            "key": self.key,
            "size": len(payload),
            "sha256": hashlib.sha256(payload).hexdigest(),
            "files": files,
            "written_by": {"host": socket.gethostname(), "pid": os.getpid(), "at": time.time()},
        }
        _atomic_write(self.path, MAGIC + json.dumps(header).encode() + b"\n" + payload)
        _atomic_write(self.folder / "key.json", json.dumps(self.key, indent=1, sort_keys=True).encode())


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# -- warm-up with the cache ---------------------------------------------------------------------


def _graph_counts() -> tuple[int, int]:
    from . import torch_features  # imports torch: not before the cache folders are set

    return torch_features.fx_graph_counts()  # (0, 0) where this torch counts none


def warm_up(engine, cache_dir: str, model_revision: str, model_dir: str) -> CacheReport:
    """``engine.warm_up()`` with the volume's compiled kernels restored before and saved after."""
    if not engine.loop.settings.compile:
        report = CacheReport("off", "the decode step is not compiled (DECODE_COMPILE)")
    elif not cache_dir:
        report = CacheReport("off", "COMPILE_CACHE_DIR is empty")
    else:
        return _warm_up_cached(engine, cache_dir, model_revision, model_dir)
    started = time.perf_counter()
    engine.warm_up()
    report.warmup_s = time.perf_counter() - started
    report.fallbacks = engine.compile_fallbacks
    return report


def _warm_up_cached(engine, cache_dir: str, model_revision: str, model_dir: str) -> CacheReport:
    started = time.perf_counter()
    cache = CompileCache(cache_dir, cache_key(engine, model_revision, model_dir), use_local_dir())
    try:
        status, detail = cache.restore()
    except Exception as exc:  # never fail a worker over its cache
        status, detail = "ignored", f"{type(exc).__name__}: {exc}"
    report = CacheReport(status, detail, restore_s=time.perf_counter() - started)
    (log.warning if status == "ignored" else log.info)("compile cache %s: %s", status, detail)

    hits, misses = _graph_counts()
    started = time.perf_counter()
    engine.warm_up()
    report.warmup_s = time.perf_counter() - started
    after_hits, after_misses = _graph_counts()
    report.graphs_loaded, report.graphs_compiled = after_hits - hits, after_misses - misses
    report.fallbacks = engine.compile_fallbacks

    if report.fallbacks:  # what compiled here is incomplete: leave the volume to a worker that can
        log.warning("compile cache: not saved (the decode step fell back to the plain step here)")
    elif report.graphs_compiled or status != "hit":
        started = time.perf_counter()
        try:
            report.saved = cache.save()
        except Timeout:
            log.warning("compile cache: another worker holds %s; not saved", cache.folder / ".lock")
        except Exception as exc:
            log.warning("compile cache: could not save to %s (%s: %s)", cache.folder, type(exc).__name__, exc)
        report.save_s = time.perf_counter() - started
    log.info(
        "compile cache: %d graph(s) loaded, %d compiled; warm-up %.1fs%s%s",
        report.graphs_loaded,
        report.graphs_compiled,
        report.warmup_s,
        f"; saved to {cache.path} in {report.save_s:.1f}s" if report.saved else "",
        f"; {report.fallbacks} compile fallback(s): {engine.compile_note}" if report.fallbacks else "",
    )
    return report
