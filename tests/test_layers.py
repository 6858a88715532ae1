"""The package's folders are its layers: an import never climbs to a higher one.

A small AST walk over higgs_worker/ resolves every import (relative or absolute,
at module level or inside a function) to the layer it reaches and checks it against
the layer's allowed list. The layers and what each may import are the package
docstrings' rules (higgs_worker/__init__.py)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "higgs_worker"

# layer -> the layers it may import (itself always allowed). "top" is the modules at
# the package's root (jobs, synthesis, narration, startup, logs).
ALLOWED = {
    "contract": set(),
    "text": {"contract"},
    "model": {"contract"},
    "audio": {"contract", "text"},
    "io": {"contract", "text", "audio"},
    "top": {"contract", "text", "model", "audio", "io"},
    "http": {"contract", "text", "model", "audio", "io", "top"},
    "devtools": {"contract", "text", "model", "audio", "io", "top"},
}


def layer_of(module: str, package: Path = PACKAGE) -> str:
    """``higgs_worker.model.engine`` -> ``model``; ``higgs_worker.jobs`` -> ``top``."""
    parts = module.split(".")
    assert parts[0] == "higgs_worker", module
    if len(parts) >= 2 and (package / parts[1]).is_dir():
        return parts[1]
    return "top"


def module_name(path: Path, package: Path = PACKAGE) -> str:
    rel = path.relative_to(package.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, package: Path = PACKAGE) -> list[tuple[int, str]]:
    """Every higgs_worker module ``path`` imports, with its line number."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = module_name(path, package).split(".")
    containing = here if path.name == "__init__.py" else here[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith("higgs_worker")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = containing[: len(containing) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("higgs_worker"):
                continue
            if node.module is None or (package.parent / target.replace(".", "/")).is_dir():
                # `from . import x` / `from .audio import codecs`: the names are modules
                found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, target))
    return found


def violations(package: Path = PACKAGE) -> list[str]:
    bad = []
    for path in sorted(package.rglob("*.py")):
        layer = layer_of(module_name(path, package), package) if path.parent != package else "top"
        for line, target in imported_modules(path, package):
            reached = layer_of(target, package)
            if reached != layer and reached not in ALLOWED[layer]:
                bad.append(f"{path.relative_to(package.parent)}:{line} ({layer}) imports {target} ({reached})")
    return bad


def test_every_folder_is_a_known_layer_with_a_docstring():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == set(ALLOWED) - {"top"}
    for name in folders:
        init = PACKAGE / name / "__init__.py"
        assert ast.get_docstring(ast.parse(init.read_text())), f"{init} needs a docstring saying what lives there"


def test_no_import_climbs_to_a_higher_layer():
    assert violations() == []


def test_only_handler_and_the_http_layer_import_http():
    root = PACKAGE.parent
    importers = []
    for path in [root / "handler.py", *PACKAGE.rglob("*.py")]:
        if path.is_relative_to(PACKAGE / "http"):
            continue
        if any(layer_of(t) == "http" for _, t in imported_modules(path)):
            importers.append(path.name)
    assert importers == ["handler.py"]


def test_the_walk_sees_an_upward_import(tmp_path):
    """The checker itself: a model module that imports the jobs layer is reported."""
    fake = tmp_path / "higgs_worker"
    for folder, layer in (("model", "model"), ("contract", "contract")):
        (fake / folder).mkdir(parents=True)
        (fake / folder / "__init__.py").write_text(f'"""{layer}."""\n')
    (fake / "__init__.py").write_text("")
    (fake / "jobs.py").write_text("X = 1\n")
    (fake / "model" / "engine.py").write_text("from ..contract import errors\n\ndef f():\n    from ..jobs import X\n")
    assert violations(fake) == ["higgs_worker/model/engine.py:4 (model) imports higgs_worker.jobs (top)"]
