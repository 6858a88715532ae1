"""The scheduler's batched decode step: compiled where that works, the plain step where not.

Compilation (``torch.compile``; on CUDA with CUDA graphs, mode "reduce-overhead") is an
optimisation, never a failure. Whatever goes wrong compiling, capturing or replaying the
compiled step for a batch size (no C compiler for triton or inductor, an inductor or triton
error, a CUDA-graph capture error, dynamo's recompile limit), the step is run again at once
with the plain step, so the sequences of that step never see it; the batch size runs plain
from then on, and one warning line says what failed, that the step now runs uncompiled and
what that costs. When nothing has compiled yet (the environment cannot compile at all), every
batch size turns plain at the first failure: one line, not one per size, and no time spent
failing each of them. ``fallbacks`` counts these events (the engine reports them: warm-up log,
job output ``warnings``, HTTP ``/v1/state``). An out-of-memory error is not a compile failure:
it is raised (the scheduler fails that step's sequences and lowers its concurrency).

One thread owns the compiled graphs. CUDA-graph trees keep per-thread state
(``torch._inductor.cudagraph_trees``: a thread other than the importing one finds none and
fails an assertion, pytorch/pytorch#123177), so ``bind`` prepares that state on the calling
thread and builds the compiled callable there; compile, warm-up, capture and every replay then
happen on that thread (calls from any other thread raise ``WrongThread``). When the scheduler
thread is replaced, the new thread calls ``bind`` again: its CUDA-graph state is prepared
first (the reset that follows shuts the old trees down through it), then dynamo's caches are
reset and the step is compiled anew on it. The same reset happens when another step is built in the same
process (tests, benchmarks): dynamo keeps compiled code per code object, and every scheduler's
step shares one, so a second scheduler's sizes would count against the first one's
recompile limit. Steps built together (one scheduler's lanes: ``group``) bind without resetting
each other.

The step's first input is the batch (``codes``, its first dimension the batch size that names
a graph); further inputs are passed on (the lane's key columns, whose length the lane marks
dynamic, so one graph per batch size serves every length).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable

import torch

from ..contract.errors import is_out_of_memory
from . import torch_features

log = logging.getLogger(__name__)

Step = Callable[..., torch.Tensor]
UNCOMPILED_COST = (
    "correct audio, slower decode steps (no fused kernels and no CUDA graphs: on a GPU a step "
    "costs several times the compiled one; see scripts/gpu-check.sh's batch-1 figures)"
)


_last_built: tuple[int, threading.Thread] | None = None  # (id of the step, its thread) that compiled last


class WrongThread(RuntimeError):
    """The compiled step was called from a thread that does not own its graphs."""


def prepare_cudagraph_state() -> None:
    """Give this thread the per-thread state CUDA-graph trees expect (the module sets it up
    only on the thread that imports it; pytorch/pytorch#123177)."""
    if torch_features.CUDAGRAPH_TREES not in sys.modules and threading.current_thread() is not threading.main_thread():
        log.warning(
            "CUDA-graph trees first imported on thread %s: the process may crash when it ends "
            "(call torch_features.import_cudagraph_trees() on the main thread at start)",
            threading.current_thread().name,
        )
    local = torch_features.cudagraph_local()
    if local is None:  # this torch keeps no such state (torch_features): nothing to prepare
        return
    if not hasattr(local, "tree_manager_containers"):
        local.tree_manager_containers = {}
        local.tree_manager_locks = defaultdict(threading.Lock)


def describe(exc: BaseException) -> str:
    """``Outer: Inner: first line`` of an exception and the one it wraps (dynamo and inductor
    wrap the backend's or compiler's error)."""
    inner = getattr(exc, "inner_exception", None) or exc.__cause__
    text = next((line.strip() for line in str(inner or exc).splitlines() if line.strip()), "")[:300]
    if inner is None or text.startswith(type(inner).__name__):
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return f"{type(exc).__name__}: {type(inner).__name__}: {text}"


class CompiledStep:
    """``step(codes) -> logits``: the compiled ``plain`` where it works, ``plain`` elsewhere."""

    def __init__(
        self,
        plain: Step,
        compile_on: bool,
        backend: str | object = "inductor",
        mode: str | None = "reduce-overhead",
        fullgraph: bool = False,
        group: object | None = None,
        lane: str = "",
    ):
        self.plain = plain
        self.group = group  # steps of one group (one scheduler's lanes) share the compiled state
        self.lane = lane  # named in messages ("solo lane") when not the main one
        self.compile_on = compile_on
        self.backend, self.mode, self.fullgraph = backend, mode, fullgraph
        self.owner: threading.Thread | None = None
        self.builds = 0  # times the compiled callable was built (once per owning thread)
        self.compiled_sizes: set[int] = set()  # batch sizes that ran compiled at least once
        self.plain_sizes: set[int] = set()  # batch sizes that fell back
        self.all_plain = not compile_on  # every size runs the plain step
        self.fallbacks = 0
        self.last_fallback: str | None = None
        self._compiled: Step | None = None
        self._calls = 0

    @property
    def note(self) -> str | None:
        """One line for job outputs and operators, or None while the step runs as configured."""
        if not self.fallbacks:
            return None
        sizes = "every batch size" if self.all_plain else f"batch size(s) {sorted(self.plain_sizes)}"
        which = f"the {self.lane}'s decode step" if self.lane else "the decode step"
        return (
            f"{which} runs uncompiled for {sizes} on this worker ({self.last_fallback}); "
            "audio is correct, generation slower"
        )

    def bind(self) -> None:
        """Build the compiled callable on the calling thread, which owns it from now on."""
        global _last_built
        thread = threading.current_thread()
        if self.owner is not None and self.owner is not thread:
            log.warning("decode step: new scheduler thread %s; compiling the step again on it", thread.name)
        self.owner = thread
        if not self.compile_on or self.all_plain:
            return
        group = id(self.group if self.group is not None else self)
        # first: the reset below shuts down inductor's CUDA-graph trees through this thread's
        # state (reset_cudagraph_trees), which a new thread lacks until it is prepared
        prepare_cudagraph_state()
        if _last_built is not None and (_last_built[0] != group or _last_built[1] is not thread):
            # another thread's or another step's compiled code and cudagraph trees: never replayed here
            torch_features.reset_compiled_state()
        self.compiled_sizes.clear()
        _last_built = (group, thread)  # the thread object: an ended thread's ident is reused
        # a recompile-limit hit would otherwise run that size eagerly without a word
        torch_features.fail_on_recompile_limit()
        backend = self.backend
        self._compiled = torch.compile(
            self.plain,
            backend=backend,
            mode=self.mode if backend == "inductor" else None,
            fullgraph=self.fullgraph,
            dynamic=False,
        )
        self.builds += 1

    def runs_compiled(self, size: int) -> bool:
        return self._compiled is not None and not self.all_plain and size not in self.plain_sizes

    def __call__(self, codes: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        if threading.current_thread() is not self.owner:
            raise WrongThread(
                f"the decode step belongs to thread {self.owner.name if self.owner else None}, "
                f"called from {threading.current_thread().name}"
            )
        size = codes.shape[0]
        if not self.runs_compiled(size):
            return self.plain(codes, *rest)
        started = time.perf_counter()
        try:
            logits = self._compiled(codes, *rest)
            logits = logits.clone()  # CUDA-graph outputs are overwritten by the next replay
        except Exception as exc:
            if is_out_of_memory(exc):
                raise
            self._fall_back(size, exc, time.perf_counter() - started)
            return self.plain(codes, *rest)
        self.compiled_sizes.add(size)
        return logits

    def _fall_back(self, size: int, exc: BaseException, seconds: float) -> None:
        self.fallbacks += 1
        what = describe(exc)
        stage = "capturing or replaying" if size in self.compiled_sizes else "compiling"
        where = f"{self.lane} " if self.lane else ""
        self.last_fallback = f"{where}{stage} at batch size {size} failed: {what}"
        if not self.compiled_sizes:  # nothing compiles here: stop trying for every size
            self.all_plain = True
            self._compiled = None
            scope = "every batch size now runs the plain (uncompiled) decode step"
        else:
            self.plain_sizes.add(size)
            scope = f"batch size {size} now runs the plain (uncompiled) decode step"
        log.warning(
            "decode step: %s (after %.1fs); %s; cost: %s; DECODE_COMPILE=false skips compiling",
            self.last_fallback,
            seconds,
            scope,
            UNCOMPILED_COST,
        )
