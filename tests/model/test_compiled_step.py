"""The compiled decode step is an optimisation, never a failure, and one thread owns it
(higgs_worker/model/compiled_step.py), on the tiny model.

Compile failures are injected with torch.compile backends that raise (dynamo traces the real
step, the backend stands for inductor/triton failing); the real missing-compiler case runs
handler.py with CXX pointing nowhere (tests/worker/test_compile_fallback.py). CUDA graphs themselves
need a GPU: what can be checked here is the per-thread state they need and who calls the step.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace

import pytest
import torch

from higgs_worker.model.compiled_step import CompiledStep, WrongThread, prepare_cudagraph_state
from higgs_worker.model.decode_loop import LoopSettings
from higgs_worker.model.engine import Engine, Sampling
from higgs_worker.model.prompt import SYSTEM_SINGLE, Prompt, Turn
from higgs_worker.model.scheduler import MAX_BUCKETS, buckets_for

FALLBACK_LINE = "now runs the plain (uncompiled) decode step"
SAMPLING = Sampling(temperature=0.9, top_k=40, max_new_tokens=24)


def prompt(index: int) -> Prompt:
    return Prompt(SYSTEM_SINGLE, ["Audio is recorded from a quiet room."], [Turn("user", f"Sentence {index}.")])


def engine_with(engine, backend, slots: int = 2) -> Engine:
    """The tiny model's modules behind a fresh scheduler whose batched step is compiled with ``backend``."""
    built = Engine(
        engine.model,
        engine.audio_tokenizer,
        engine.tokenizer,
        engine.feature_extractor,
        "cpu",
        LoopSettings(compile=True, compile_backend=backend),
        max_concurrency=slots,
    )
    built.loop.rules = replace(built.loop.rules, eos_id=engine.model.config.codebook_size + 100)  # exact lengths
    return built


def rows(engine, index: int, seed: int) -> torch.Tensor:
    return torch.stack(list(engine.generate_rows(prompt(index), SAMPLING, generator=engine.generator(seed))))


def concurrently(engine, count: int) -> dict[int, torch.Tensor]:
    got: dict[int, torch.Tensor] = {}
    threads = [threading.Thread(target=lambda i=i: got.__setitem__(i, rows(engine, i, seed=i))) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return got


def plain(engine) -> Engine:
    """The same modules and slots with the plain step: what every fallback must produce."""
    built = Engine(engine.model, engine.audio_tokenizer, engine.tokenizer, engine.feature_extractor, "cpu", None, 2)
    built.loop.rules = replace(built.loop.rules, eos_id=engine.model.config.codebook_size + 100)
    return built


@pytest.fixture(scope="module")
def plain_engine(engine):
    return plain(engine)


class Backend:
    """A torch.compile backend: runs the traced graph (so compiled == plain on the CPU), and
    records the thread of every compile and every call; ``fail`` decides when to raise."""

    def __init__(self, fail=lambda phase, size, calls: False):
        self.fail = fail
        self.compile_threads: list[threading.Thread] = []
        self.call_threads: list[threading.Thread] = []
        self.calls: dict[int, int] = {}

    def __call__(self, graph, example_inputs):
        size = next(t.shape[0] for t in example_inputs if isinstance(t, torch.Tensor) and t.dim() == 3)
        self.compile_threads.append(threading.current_thread())
        if self.fail("compile", size, 0):
            raise RuntimeError(f"injected compile failure at batch size {size}")

        def run(*args):
            self.call_threads.append(threading.current_thread())
            self.calls[size] = self.calls.get(size, 0) + 1
            if self.fail("call", size, self.calls[size]):
                raise RuntimeError(f"injected replay failure at batch size {size}")
            return graph.forward(*args)

        return run


def fallback_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if FALLBACK_LINE in r.getMessage()]


def test_a_failing_compile_turns_every_size_plain_once_and_jobs_get_the_plain_rows(engine, plain_engine, caplog):
    backend = Backend(fail=lambda phase, size, calls: phase == "compile")
    failing = engine_with(engine, backend)
    with caplog.at_level(logging.WARNING):
        failing.warm_up()  # the warm-up meets the failure: it completes, on the plain step
        got = concurrently(failing, 2)
    step = failing.scheduler.step
    assert step.all_plain and step.fallbacks == 1 and failing.compile_fallbacks == 1
    assert len(backend.compile_threads) == 1  # one failed attempt, not one per batch size
    lines = fallback_lines(caplog)
    assert len(lines) == 1, lines
    assert "injected compile failure" in lines[0] and "every batch size" in lines[0] and "cost:" in lines[0]
    assert "runs uncompiled for every batch size" in failing.compile_note
    for index in range(2):
        assert torch.equal(got[index], rows(plain_engine, index, seed=index))


def test_a_replay_failure_after_success_turns_only_that_size_plain(engine, plain_engine, caplog):
    backend = Backend(fail=lambda phase, size, calls: phase == "call" and size == 2 and calls == 2)
    flaky = engine_with(engine, backend)
    with caplog.at_level(logging.WARNING):
        flaky.warm_up()  # sizes 1 and 2, three calls each: size 2's second call fails
        got = concurrently(flaky, 2)
    step = flaky.scheduler.step
    assert step.plain_sizes == {2} and not step.all_plain and step.fallbacks == 1
    assert step.runs_compiled(1) and not step.runs_compiled(2)
    assert 1 in step.compiled_sizes
    (line,) = fallback_lines(caplog)
    assert "capturing or replaying at batch size 2" in line and "batch size 2 now runs" in line
    for index in range(2):  # the sequences of the failed step never saw it
        assert torch.equal(got[index], rows(plain_engine, index, seed=index))


def test_the_compiled_step_runs_only_on_the_scheduler_thread(engine):
    backend = Backend()
    compiled = engine_with(engine, backend)
    compiled.warm_up()
    concurrently(compiled, 2)
    scheduler = compiled.scheduler
    owner = scheduler._thread
    assert owner is not None and owner is not threading.current_thread()
    assert set(backend.compile_threads) == {owner} and len(backend.compile_threads) == 2  # sizes 1 and 2
    assert set(backend.call_threads) == {owner} and len(backend.call_threads) > 6
    assert scheduler.step.owner is owner and scheduler.step.fallbacks == 0
    with pytest.raises(WrongThread):  # a job thread (here: the test's) may never call it
        scheduler.step(torch.zeros((1, 1, 8), dtype=torch.long))


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the injected thread end
def test_a_replacement_scheduler_thread_compiles_the_step_again_and_nobody_hangs(engine, monkeypatch):
    backend = Backend()
    compiled = engine_with(engine, backend)
    compiled.warm_up()
    scheduler = compiled.scheduler
    first = scheduler._thread
    original = scheduler._iteration

    def dies_once():
        monkeypatch.setattr(scheduler, "_iteration", original)
        raise SystemExit("injected: the scheduler thread ends")

    monkeypatch.setattr(scheduler, "_iteration", dies_once)
    with pytest.raises(RuntimeError, match="scheduler thread ended"):
        rows(compiled, 0, seed=0)  # the job in flight fails with the reason instead of waiting forever
    first.join(timeout=30)
    assert not first.is_alive()
    calls_before = len(backend.call_threads)
    again = rows(compiled, 0, seed=0)  # a new thread takes over
    assert again.shape == (SAMPLING.max_new_tokens, 8)
    second = scheduler._thread
    assert second is not first and scheduler.step.owner is second and scheduler.step.builds == 2
    assert backend.compile_threads[-1] is second  # compiled anew on the new thread
    assert set(backend.call_threads[calls_before:]) == {second}
    assert len(backend.call_threads) - calls_before == SAMPLING.max_new_tokens - 1  # every step compiled


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the injected thread end
def test_jobs_submitted_while_the_scheduler_thread_ends_are_failed_or_served_never_left_waiting(engine):
    dying = plain(engine)
    step = dying.scheduler.step
    real_bind = step.bind
    state = {"left": 1}

    def bind_dies_once():
        if state["left"]:
            state["left"] -= 1
            raise SystemExit("injected: the scheduler thread ends at its start")
        real_bind()

    step.bind = bind_dies_once
    scheduler = dying.scheduler
    fail_everything = scheduler._fail_everything

    def fail_everything_slowly(error):  # widen the window between the last drain and the thread's end
        fail_everything(error)
        time.sleep(0.5)

    scheduler._fail_everything = fail_everything_slowly
    outcomes: dict[int, object] = {}

    def job(index: int) -> None:
        try:
            outcomes[index] = rows(dying, index, seed=index)
        except BaseException as exc:
            outcomes[index] = exc

    # daemon threads: a stuck one must not keep the test process from ending
    threads = [threading.Thread(target=job, args=(i,), daemon=True) for i in range(4)]
    threads[0].start()
    time.sleep(0.2)  # the others arrive while the first one's thread is ending
    for thread in threads[1:]:
        thread.start()
    deadline = time.monotonic() + 90
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), "a job was left waiting for a dead scheduler thread"
    assert len(outcomes) == 4
    assert all(isinstance(o, torch.Tensor) or "scheduler thread ended" in str(o) for o in outcomes.values())


def test_out_of_memory_is_no_compile_failure_it_fails_the_steps_jobs_and_lowers_capacity(engine, plain_engine):
    tight = plain(engine)
    step = tight.scheduler.step
    real = step.plain
    state = {"left": 1}

    def plain_step(codes, *rest):
        if codes.shape[0] == 2 and state["left"]:
            state["left"] -= 1
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return real(codes, *rest)

    step.plain = plain_step
    outcomes: dict[int, object] = {}

    def job(index: int) -> None:
        try:
            outcomes[index] = rows(tight, index, seed=index)
        except BaseException as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=job, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(isinstance(o, torch.OutOfMemoryError) for o in outcomes.values()), outcomes
    assert tight.scheduler.capacity == 1 and tight.capacity == 1
    assert torch.equal(rows(tight, 0, seed=0), rows(plain_engine, 0, seed=0))  # and it keeps serving

    # an out-of-memory raised from the compiled step is passed on, not taken for a compile failure
    def oom_backend(graph, example_inputs):
        def run(*args):
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")

        return run

    compiled = CompiledStep(lambda codes: codes.float(), True, oom_backend)
    compiled.bind()
    with pytest.raises(torch.OutOfMemoryError):
        compiled(torch.zeros((1, 1, 8)))
    assert compiled.fallbacks == 0 and not compiled.all_plain


@pytest.mark.parametrize("slots", [1, 2, 3, 8, 16, 17, 64, 100, 128, 129, 200, 256])
def test_batch_buckets_stay_within_dynamos_recompile_limit(slots):
    buckets = buckets_for(slots)
    assert buckets[0] == 1 and buckets[-1] == slots and buckets == sorted(set(buckets))
    assert len(buckets) <= MAX_BUCKETS <= torch._dynamo.config.recompile_limit


def test_cudagraph_tree_state_is_prepared_on_the_thread_that_needs_it():
    """pytorch/pytorch#123177: CUDA-graph trees find their per-thread state only on the thread
    that imported them; prepare_cudagraph_state gives it to another (the scheduler's)."""
    from torch._inductor import cudagraph_trees

    found: dict[str, object] = {}

    def probe(prepare: bool) -> None:
        if prepare:
            prepare_cudagraph_state()
        try:
            found[str(prepare)] = cudagraph_trees.get_container(0)
        except AssertionError as exc:
            found[str(prepare)] = exc

    for prepare in (False, True):
        thread = threading.Thread(target=probe, args=(prepare,))
        thread.start()
        thread.join()
    assert isinstance(found["False"], AssertionError)  # what the scheduler thread met before
    assert isinstance(found["True"], cudagraph_trees.TreeManagerContainer)


def test_the_batched_step_is_one_graph(engine, plain_engine):
    """fullgraph=True fails on any graph break: on CUDA each batch size is one CUDA graph."""
    whole = engine_with(engine, "eager")
    whole.loop.settings = LoopSettings(compile=True, compile_backend="eager", fullgraph=True)
    whole.build_scheduler()  # with the settings above
    whole.warm_up()
    assert whole.compile_fallbacks == 0, whole.compile_note
    assert torch.equal(rows(whole, 0, seed=5), rows(plain_engine, 0, seed=5))
