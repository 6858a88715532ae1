"""A replacement scheduler thread binds the compiled step with the worker's real compile
settings (inductor, reduce-overhead), and the private torch parts the step uses degrade to the
plain path where torch lacks them (higgs_worker/model/compiled_step.py, torch_features.py;
issue 25 findings 2 and 8).

Binding compiles nothing (the compile happens at the first call), so both binds run here on the
CPU; what they exercise is the order of dynamo's reset and the CUDA-graph trees' per-thread
state: the reset shuts the trees down through the calling thread's state, which a new thread
has only once ``prepare_cudagraph_state`` gave it (before the fix: AssertionError in
``cudagraph_trees.get_obj`` on the second thread, and the scheduler thread died in ``bind``).
"""

from __future__ import annotations

import threading
import traceback

import pytest
import torch

from higgs_worker.model import compiled_step as compiled_step_module
from higgs_worker.model import torch_features
from higgs_worker.model.compiled_step import CompiledStep


def bind_on_new_thread(step: CompiledStep) -> tuple[threading.Thread, str | None]:
    """Bind on a fresh thread; what it raised, as text (the exception itself holds the dead
    thread's frames, which the interpreter may fail to collect)."""
    outcome: dict[str, str | None] = {"error": None}

    def bind() -> None:
        try:
            step.bind()
        except BaseException as exc:
            outcome["error"] = "".join(traceback.format_exception_only(exc)).strip() or type(exc).__name__

    thread = threading.Thread(target=bind, name="decode-scheduler")
    thread.start()
    thread.join()
    return thread, outcome["error"]


def test_two_scheduler_threads_one_after_the_other_both_bind_with_inductor_reduce_overhead():
    step = CompiledStep(lambda codes: codes.float() * 2, True, backend="inductor", mode="reduce-overhead")
    first, error = bind_on_new_thread(step)
    assert error is None, error
    second, error = bind_on_new_thread(step)
    assert error is None, error  # before the fix: AssertionError from reset_cudagraph_trees
    assert step.owner is second and step.builds == 2 and step._compiled is not None


def test_a_step_of_another_group_binds_after_the_first_on_another_thread():
    """Another scheduler in the same process (tests, benchmarks) resets the first one's state."""
    one = CompiledStep(lambda codes: codes.float(), True, backend="inductor", mode="reduce-overhead")
    other = CompiledStep(lambda codes: codes.float() + 1, True, backend="inductor", mode="reduce-overhead")
    assert bind_on_new_thread(one)[1] is None
    assert bind_on_new_thread(other)[1] is None
    assert compiled_step_module._last_built[0] == id(other)


def test_every_private_part_is_present_on_the_pinned_torch():
    assert torch_features.missing() == [], torch_features.probe()


def test_missing_private_parts_degrade_to_the_plain_path(monkeypatch, caplog):
    from torch._dynamo import utils as dynamo_utils
    from torch._inductor import cudagraph_trees

    monkeypatch.delattr(cudagraph_trees, "local")
    monkeypatch.delattr(torch._dynamo, "maybe_mark_dynamic")
    monkeypatch.delattr(dynamo_utils, "counters")
    monkeypatch.setattr(torch_features, "_recompile_flag", lambda: (_ for _ in ()).throw(AttributeError("gone")))
    missing = torch_features.missing()
    assert set(missing) >= {
        "torch._inductor.cudagraph_trees.local",
        "torch._dynamo.maybe_mark_dynamic",
        "torch._dynamo.utils.counters['inductor']",
    }
    assert torch_features.cudagraph_local() is None
    compiled_step_module.prepare_cudagraph_state()  # nothing to prepare, no error
    assert torch_features.fx_graph_counts() == (0, 0)
    torch_features.maybe_mark_dynamic(torch.zeros(3), 0)  # not marked, no error
    assert torch_features.fail_on_recompile_limit() is False
    assert "no fail_on_recompile_limit_hit" in caplog.text
    # (no reset: this torch's own reset_cudagraph_trees would read the module state deleted above)
    monkeypatch.setattr(compiled_step_module, "_last_built", None)
    step = CompiledStep(lambda codes: codes.float() * 3, True, backend="eager")
    _, error = bind_on_new_thread(step)
    assert error is None and step._compiled is not None


@pytest.fixture(autouse=True)
def _restore_recompile_flag():
    before = torch._dynamo.config.fail_on_recompile_limit_hit
    yield
    torch._dynamo.config.fail_on_recompile_limit_hit = before
