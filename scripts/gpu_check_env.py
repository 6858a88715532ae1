"""The versions section of scripts/gpu-check.sh: what the check runs on.

Prints the interpreter, torch (and the GPU it sees), triton, transformers, and every package
carried in GPU_CHECK_SITE (the wheels of scripts/gpu-wheels.sh), each imported and said to
come from there; then imports the worker and the check's own modules. Exits non-zero when one
of them fails to import, when a carried package is shadowed by the image's own copy, when
transformers is not the version requirements-runtime.txt pins, or (unless GPU_CHECK_DRY=1)
when torch sees no CUDA device. torch and triton other than our pins (torch 2.9.1 brings
triton 3.5.1) are reported, not refused: the device image's cannot be replaced within a
device call's 64 MiB (scripts/gpu-check.sh's header), so the figures say what they ran on.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRITON_WITH_PINNED_TORCH = "3.5.1"


def carried_modules(site: Path) -> list[str]:
    """Top-level packages and modules a --target install put in ``site``."""
    names = []
    for entry in sorted(site.iterdir()):
        if entry.name.startswith(("_", ".")) or entry.suffix in (".dist-info", ".data") or entry.name == "bin":
            continue
        if entry.is_dir() and (entry / "__init__.py").is_file():
            names.append(entry.name)
        elif entry.suffix == ".py":
            names.append(entry.stem)
    return names


def pinned(name: str) -> str | None:
    text = (ROOT / "requirements-runtime.txt").read_text()
    match = re.search(rf"^{re.escape(name)}==([^\s;#]+)", text, re.M | re.I)
    return match.group(1) if match else None


def main() -> int:
    problems = []
    dry = os.environ.get("GPU_CHECK_DRY") == "1"
    print(f"python {sys.version.split()[0]} at {sys.executable}")
    import torch
    import transformers

    cuda = torch.cuda.is_available()
    print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), CUDA device visible: {cuda}")
    if cuda:
        props = torch.cuda.get_device_properties(0)
        print(
            f"  {props.name}: {props.total_memory / 2**30:.0f} GiB, {props.multi_processor_count} SMs, "
            f"capability {props.major}.{props.minor}"
        )
    elif not dry:
        problems.append("torch sees no CUDA device")
    want_torch = pinned("torch")
    if want_torch and not torch.__version__.startswith(want_torch):
        print(f"NOTE: torch {torch.__version__} is the device's, not our pin {want_torch} (cannot be carried)")
    try:
        import triton

        same = triton.__version__ == TRITON_WITH_PINNED_TORCH
        print(f"triton {triton.__version__}" + ("" if same else f" (our torch pin brings {TRITON_WITH_PINNED_TORCH})"))
    except ImportError:
        print("triton: not installed (compiling on CUDA needs it)")
    print(f"transformers {transformers.__version__} from {Path(transformers.__file__).parent}")
    want = pinned("transformers")
    if want and transformers.__version__ != want:
        problems.append(f"transformers {transformers.__version__}, requirements-runtime.txt pins {want}")

    site = os.environ.get("GPU_CHECK_SITE", "")
    if site and os.environ.get("PYTHONPATH", "").split(os.pathsep)[0] == site and Path(site).is_dir():
        print(f"carried in {site}:")
        for name in carried_modules(Path(site)):
            try:
                module = importlib.import_module(name)
            except Exception as exc:  # report every one, then fail
                problems.append(f"{name} does not import: {type(exc).__name__}: {exc}")
                print(f"  {name:<20} FAILED: {type(exc).__name__}: {exc}")
                continue
            origin = Path(module.__file__ or "").resolve()
            carried = Path(site).resolve() in origin.parents
            if not carried:
                problems.append(f"{name} comes from {origin}, not {site}")
            print(f"  {name:<20} {getattr(module, '__version__', '')!s:<12} {'ok' if carried else origin}")
    else:
        print("no carried packages (PYTHONPATH does not start with GPU_CHECK_SITE)")

    try:
        sys.path.insert(0, str(ROOT))
        for name in ("higgs_worker.jobs", "higgs_worker.devtools.bench", "higgs_worker.devtools.numerics"):
            importlib.import_module(name)
        print("worker modules import")
    except Exception as exc:
        problems.append(f"the worker does not import: {type(exc).__name__}: {exc}")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
