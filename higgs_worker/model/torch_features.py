"""The private parts of torch the worker uses, each probed, each with a plain fallback.

We pin torch 2.9.1, but the GPU check runs on the device image's torch (2.11 at the time of
writing: scripts/gpu-check.sh's header), and a later pin may move any of these. None is needed
for correct audio; each one missing costs speed or a figure, never a job:

- ``torch._inductor.cudagraph_trees.local``: the per-thread state of CUDA-graph trees, which
  ``compiled_step.prepare_cudagraph_state`` gives to the scheduler thread
  (pytorch/pytorch#123177). Missing: nothing is prepared; if the trees still need it, the
  first capture fails and the compiled step falls back to the plain step (one warning line).
- ``torch._dynamo.config.fail_on_recompile_limit_hit``: makes a recompile-limit hit raise (so
  the step falls back with a warning) instead of running that size eagerly without a word.
  Missing: not set; a hit then runs eagerly, silently (slower, still correct).
- ``torch._dynamo.utils.counters["inductor"]``: FX-graph cache hits and misses, for the
  compile-cache report (graphs loaded / compiled). Missing: both read 0.
- ``torch._inductor.config.triton.cudagraph_dynamic_shape_warn_limit``: inductor warns once a
  compiled graph has recorded more CUDA graphs (distinct shapes) than this (50); the slot lane's
  batch-above-1 graph records its planned count on purpose, so the limit is raised to the plan
  (a warning then means shapes beyond the plan). Missing: not raised (one spurious warning).
- ``torch._dynamo.maybe_mark_dynamic`` and ``mark_static_address``: marking the attended length
  and batch dynamic, and the KV cache's addresses fixed for CUDA graphs. Missing: not marked
  (more recompiles, or graph-pool copies), still correct.

``probe()`` says which are present; the GPU check prints it before it builds anything, and the
functions below are what the rest of the model package calls instead of the private names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

log = logging.getLogger(__name__)


def _cudagraph_local():
    from torch._inductor import cudagraph_trees

    return cudagraph_trees.local


def _recompile_flag():
    return torch._dynamo.config.fail_on_recompile_limit_hit  # AttributeError where torch has none


def _counters():
    from torch._dynamo.utils import counters

    return counters["inductor"]


def _triton_config():
    from torch._inductor import config

    return config.triton


def _attribute(owner: Callable[[], object], name: str) -> Callable[[], object]:
    def get():
        return getattr(owner(), name)

    return get


PARTS: dict[str, Callable[[], object]] = {
    "torch._inductor.cudagraph_trees.local": _cudagraph_local,
    "torch._dynamo.config.fail_on_recompile_limit_hit": _recompile_flag,
    "torch._dynamo.utils.counters['inductor']": _counters,
    "torch._inductor.config.triton.cudagraph_dynamic_shape_warn_limit": _attribute(
        _triton_config, "cudagraph_dynamic_shape_warn_limit"
    ),
    "torch._dynamo.maybe_mark_dynamic": _attribute(lambda: torch._dynamo, "maybe_mark_dynamic"),
    "torch._dynamo.mark_static_address": _attribute(lambda: torch._dynamo, "mark_static_address"),
    "torch.compiler.reset": _attribute(lambda: torch.compiler, "reset"),
}


def probe() -> dict[str, str | None]:
    """Each private part: None when present, else why not (``Type: message``)."""
    found: dict[str, str | None] = {}
    for name, get in PARTS.items():
        try:
            get()
            found[name] = None
        except Exception as exc:
            found[name] = f"{type(exc).__name__}: {exc}"
    return found


def missing() -> list[str]:
    return [name for name, why in probe().items() if why is not None]


# -- what the model package calls ------------------------------------------------------------


def cudagraph_local():
    """The CUDA-graph trees' thread-local object, or None where torch has none."""
    try:
        return _cudagraph_local()
    except Exception:
        return None


def fail_on_recompile_limit() -> bool:
    """Make a recompile-limit hit raise (the compiled step then falls back with a warning);
    False where this torch has no such setting."""
    try:
        _recompile_flag()
    except Exception:
        log.warning("this torch has no fail_on_recompile_limit_hit: a recompile-limit hit runs eagerly, unreported")
        return False
    torch._dynamo.config.fail_on_recompile_limit_hit = True
    return True


def fx_graph_counts() -> tuple[int, int]:
    """(FX-graph cache hits, misses) so far; (0, 0) where torch counts none."""
    try:
        counts = _counters()
        return int(counts["fxgraph_cache_hit"]), int(counts["fxgraph_cache_miss"])
    except Exception:
        return 0, 0


def allow_cudagraph_shapes(count: int) -> bool:
    """Inductor warns past ``count`` CUDA graphs for one compiled graph, not past its default
    50; False where this torch has no such setting."""
    try:
        config = _triton_config()
        limit = config.cudagraph_dynamic_shape_warn_limit
    except Exception:
        return False
    if limit is not None and limit < count:
        config.cudagraph_dynamic_shape_warn_limit = count
    return True


def maybe_mark_dynamic(tensor: torch.Tensor, dim: int) -> None:
    """A dynamic dimension that any guard may narrow (no strict range, nothing to violate)."""
    mark = getattr(torch._dynamo, "maybe_mark_dynamic", None)
    if mark is not None:
        mark(tensor, dim)


def mark_static_address(tensor: torch.Tensor) -> None:
    mark = getattr(torch._dynamo, "mark_static_address", None)
    if mark is not None:
        mark(tensor)


def reset_compiled_state() -> None:
    """Dynamo's caches and the backends' (inductor's CUDA-graph trees among them)."""
    reset = getattr(torch.compiler, "reset", None) or torch._dynamo.reset
    reset()


CUDAGRAPH_TREES = "torch._inductor.cudagraph_trees"


def import_cudagraph_trees() -> bool:
    """Import inductor's CUDA-graph trees on the calling thread, which must live as long as the
    process: the main thread, at start, before any thread compiles.

    The module's import stashes two Python objects in the importing thread's C++ thread-local
    storage (``torch._C._stash_obj_in_tls``). When that thread ends, their destructor takes the
    GIL on a thread whose Python state is already gone, and the process can die of a segmentation
    fault (torch 2.9.1: about one run in eight of a script whose thread imports the module and
    ends; a pytest worker died of it in CI). Imported here first, the module stashes nothing on
    the threads that compile later (a scheduler thread, its replacement, a job's thread).
    False where this torch has no such module (nothing to stash)."""
    try:
        _cudagraph_local()
    except Exception:
        return False
    return True
