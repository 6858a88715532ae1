"""scripts/image-check.sh without building anything: the script parses, the image's COPY lines
bring every file the entrypoint needs, and its helper's checks (scripts/image_check.py) fail
where they must. The real run, image built and started, is the script itself (.ci/run).

The entrypoint's needs are found, not listed: the ENTRYPOINT's file, every repository file its
shell code names, every repository module that handler.py and the entrypoint's Python reach by
imports, and every repository-root file those modules name in a string."""

from __future__ import annotations

import ast
import http.server
import json
import re
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port

SCRIPT = ROOT / "scripts" / "image-check.sh"
HELPER = ROOT / "scripts" / "image_check.py"
DOCKERFILE = ROOT / "Dockerfile.runpod.ultra"
APP = "/app"


# ---------------------------------------------------------------------------------- the script
def test_the_script_and_its_helper_parse():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0
    proc = subprocess.run([sys.executable, str(HELPER), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "watch-http" in proc.stdout


def test_the_script_checks_every_phase_and_reads_only_the_entrypoints_outside():
    """Phases 1-5 of issue 27, each failing by name; nothing read from bootstrap's own log lines
    (bootstrap.sh is being rewritten: the check must hold for any entrypoint with the same
    environment variables, volume, arguments, /ping and exit codes)."""
    text = SCRIPT.read_text()
    for phase in ("1-first-start", "2-second-start", "3-http-while-installing", "4-non-root", "5-decode-compile"):
        assert re.search(rf"\b{phase}\b", text), phase
    assert "[bootstrap]" not in text and "bootstrap.sh" not in text.split("set -Eeuo pipefail", 1)[1]
    assert "--isolation chroot" in text and "--storage-driver vfs" in text
    assert "Dockerfile.runpod.ultra" in text


# ---------------------------------------------------------------------------------- COPY coverage
def instructions(text: str) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def allowed_by_dockerignore(path: str) -> bool:
    rules = [r.strip() for r in (ROOT / ".dockerignore").read_text().splitlines()]
    allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    return any(path == a or path.startswith(a + "/") for a in allowed)


def files_under(relative: str) -> list[str]:
    path = ROOT / relative
    if path.is_file():
        return [relative]
    return sorted(str(p.relative_to(ROOT)) for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def image_files(dockerfile_text: str) -> dict[str, str]:
    """Path in the image -> repository path, for what the COPY lines bring (build context
    filtered by .dockerignore)."""
    workdir, image = "/", {}
    for op, rest in instructions(dockerfile_text):
        if op == "WORKDIR":
            workdir = rest if rest.startswith("/") else f"{workdir.rstrip('/')}/{rest}"
        elif op == "COPY":
            parts = [p for p in rest.split() if not p.startswith("--")]
            sources, dest = parts[:-1], parts[-1]
            dest = dest if dest.startswith("/") else f"{workdir.rstrip('/')}/{dest.removeprefix('./')}"
            for source in sources:
                source = source.rstrip("/")
                if not (ROOT / source).exists() or not allowed_by_dockerignore(source):
                    continue
                for rel in files_under(source):
                    if not allowed_by_dockerignore(rel):
                        continue
                    if (ROOT / source).is_dir():
                        inside = rel[len(source) + 1 :]
                        target = f"{dest.rstrip('/')}/{inside}"
                    else:
                        target = f"{dest.rstrip('/')}/{Path(rel).name}" if dest.endswith("/") else dest
                    image[target] = rel
    return image


def root_files() -> set[str]:
    return {p.name for p in ROOT.iterdir() if p.is_file() and not p.name.startswith(".")}


def module_file(module: str) -> str | None:
    parts = module.split(".")
    for candidate in (Path(*parts).with_suffix(".py"), Path(*parts) / "__init__.py"):
        if (ROOT / candidate).is_file():
            return str(candidate)
    return None


def reached_modules(start: list[str]) -> set[str]:
    """Repository .py files reached from ``start`` by imports (absolute and relative)."""
    seen: set[str] = set()
    todo = list(start)
    while todo:
        rel = todo.pop()
        if rel in seen:
            continue
        seen.add(rel)
        package = str(Path(rel).parent).replace("/", ".")
        if not rel.endswith("__init__.py"):
            package = package  # a module's package is its folder
        tree = ast.parse((ROOT / rel).read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)] if node.level > 1 else anchor
                    base = ".".join([*anchor, base] if base else anchor).strip(".")
                names = [base] + [f"{base}.{a.name}" for a in node.names]
            for name in names:
                parts = name.split(".")
                for i in range(1, len(parts) + 1):  # a package's __init__ runs before its modules
                    found = module_file(".".join(parts[:i]))
                    if found:
                        todo.append(found)
    return seen


def entrypoint_needs(dockerfile_text: str) -> set[str]:
    """Repository files the entrypoint needs at run time (see the module docstring)."""
    entry = next(json.loads(rest) for op, rest in instructions(dockerfile_text) if op == "ENTRYPOINT")
    entry_file = entry[0].removeprefix(f"{APP}/")
    needs = {entry_file}
    shell = "\n".join(
        line for line in (ROOT / entry_file).read_text().splitlines() if not line.lstrip().startswith("#")
    )
    names = root_files()
    needs |= {name for name in names if re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w.-])", shell)}
    python = {n for n in needs if n.endswith(".py")}
    # modules the shell runs: `python -m X`, or `-c '... from X import ...'` / `import X`
    run = re.findall(r"-m\s+([A-Za-z_][\w.]*)", shell) + re.findall(r"\bfrom\s+([A-Za-z_][\w.]*)\s+import\b", shell)
    for module in run:
        found = module_file(module)
        if found:
            python.add(found)
    if (ROOT / "handler.py").is_file():
        python.add("handler.py")
    modules = reached_modules(sorted(python))
    needs |= modules
    for rel in modules:
        for node in ast.walk(ast.parse((ROOT / rel).read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
                needs.add(node.value)
    # bootstrap installs the lock of a requirements file: X.txt's is X.lock beside it
    needs |= {f"{n[:-4]}.lock" for n in needs if n.endswith(".txt") and f"{n[:-4]}.lock" in names}
    return needs


def missing_from_image(dockerfile_text: str) -> set[str]:
    brought = set(image_files(dockerfile_text).values())
    return {need for need in entrypoint_needs(dockerfile_text) if need not in brought}


def test_the_copy_lines_bring_every_file_the_entrypoint_needs():
    text = DOCKERFILE.read_text()
    needs = entrypoint_needs(text)
    assert {"bootstrap.sh", "handler.py", "requirements-runtime.txt", "higgs_worker/jobs.py"} <= needs
    assert {"higgs_worker/bootstrap.py", "requirements-runtime.lock"} <= needs
    assert missing_from_image(text) == set()
    image = image_files(text)
    assert image[f"{APP}/bootstrap.sh"] == "bootstrap.sh" and image[f"{APP}/higgs_worker/jobs.py"]
    assert not any(path.startswith(f"{APP}/tests/") for path in image)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ("requirements-runtime.txt requirements-runtime.lock handler.py", "handler.py"),
            {"requirements-runtime.txt", "requirements-runtime.lock"},
        ),
        (("requirements-runtime.lock handler.py", "handler.py"), {"requirements-runtime.lock"}),
        (("COPY higgs_worker/ ./higgs_worker/\n", ""), {"higgs_worker/__init__.py", "higgs_worker/jobs.py"}),
    ],
)
def test_the_coverage_check_names_what_a_dockerfile_leaves_out(edit, expected):
    old, new = edit
    text = DOCKERFILE.read_text()
    assert old in text
    missing = missing_from_image(text.replace(old, new))
    assert expected <= missing


# ---------------------------------------------------------------------------------- the helper
def helper(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(HELPER), *args], capture_output=True, text=True, timeout=timeout)


class StandIn(http.server.BaseHTTPRequestHandler):
    """A stand-in for the second container's port (the real one runs in the image check): /ping
    answers what ``answers`` says for the time since start; the speech route returns ``audio``."""

    answers: list[tuple[float, int]] = []  # (from second, status)
    audio = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(64)
    started = 0.0

    def log_message(self, *args):
        pass

    def do_GET(self):
        since = time.time() - self.started
        status = [s for t, s in self.answers if since >= t][-1]
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        ok = self.headers.get("Authorization") == "Bearer k"
        body = self.audio if ok else b'{"error": "no key"}'
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "audio/wav")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def watch(tmp_path: Path, answers: list[tuple[float, int]], publish_at: float | None) -> subprocess.CompletedProcess:
    port = free_port()
    handler = type("Server", (StandIn,), {"answers": answers, "started": time.time()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    venvs = tmp_path / "venvs"
    venvs.mkdir()
    (venvs / ".tmp-installing").mkdir()  # an install in progress is not a published runtime
    timer = None
    if publish_at is not None:
        timer = threading.Timer(publish_at, lambda: (venvs / "py3.11-0123456789abcdef").mkdir())
        timer.start()
    try:
        return helper(
            "watch-http", "--port", str(port), "--api-key", "k", "--venv-root", str(venvs),
            "--started-at", str(handler.started), "--timeout", "20",
        )  # fmt: skip
    finally:
        if timer:
            timer.cancel()
        server.shutdown()
        server.server_close()


def test_watch_http_passes_204_while_installing_then_200_and_audio(tmp_path):
    proc = watch(tmp_path, [(0, 204), (4.0, 200)], publish_at=2.5)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "204 x" in proc.stdout and "POST /v1/audio/speech: 200 audio/wav" in proc.stdout


@pytest.mark.parametrize(
    ("answers", "publish_at", "reason"),
    [
        ([(0, 200)], 1.0, "never answered 204"),  # ready at once: it did not wait for the install
        ([(0, 204), (3.0, 200)], 6.0, "before the runtime was published"),
        ([(0, 204), (3.0, 503)], 6.0, "answered 503 while starting"),
        ([(0, 204), (3.0, 200)], None, "before the runtime was published on the volume (none was)"),
    ],
)
def test_watch_http_fails_on_a_wrong_sequence(tmp_path, answers, publish_at, reason):
    proc = watch(tmp_path, answers, publish_at)
    assert proc.returncode == 1 and reason in proc.stdout.strip().splitlines()[-1], proc.stdout


def test_part_sizes_attributes_added_files_to_their_debian_package(tmp_path):
    base = tmp_path / "base"
    (base / "usr/bin").mkdir(parents=True)
    (base / "usr/bin/python3").write_bytes(b"x" * 1000)
    with tarfile.open(tmp_path / "base.tar", "w") as tar:
        tar.add(base, arcname=".")
    image = tmp_path / "image"
    shutil.copytree(base, image)
    (image / "usr/bin/gcc-12").write_bytes(b"g" * 3_000_000)
    (image / "app").mkdir()
    (image / "app/handler.py").write_bytes(b"h" * 2_000_000)
    (image / "var/lib/dpkg/info").mkdir(parents=True)
    (image / "var/lib/dpkg/info/gcc-12:amd64.list").write_text("/usr\n/usr/bin\n/usr/bin/gcc-12\n")
    proc = helper("part-sizes", "--base-tar", str(tmp_path / "base.tar"), "--root", str(image))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert re.search(r"3\.0 MB\s+gcc-12$", lines[1]) and re.search(r"2\.0 MB\s+/app", lines[2])
    assert "python3" not in proc.stdout  # unchanged from the base: not counted
