"""The container's entry point (run by ``bootstrap.sh``): install the locked runtime, then exec handler.py.

Standard library only: it runs with the image's bare Python, before the runtime exists, and
imports nothing else from this package.

1. Makes sure the locked runtime (``requirements-runtime.lock``: every distribution that
   ``requirements-runtime.txt`` needs, pinned with its PyPI hashes, written by
   ``scripts/lock.sh``) is installed in a virtual environment, with ``--require-hashes``. With a
   network volume the environment lives on the volume, keyed by a hash of the requirements,
   the lock, the Python version, the platform and the pip options, so only the first worker on
   a volume pays for the install; later cold starts reuse it. Without a volume it is installed
   on the container disk. "A volume" means a real mount at BOOTSTRAP_VOLUME_DIR (read from
   /proc/self/mountinfo), not just a folder of that name: the worker itself creates
   /runpod-volume/... on the container disk when no volume is attached, and a runtime
   installed there would be lost (and installed again) with the container.
2. exec's ``python -u handler.py ARGS`` with the environment's Python, so
   ``./bootstrap.sh --test_input '{...}'`` and ``./bootstrap.sh --rp_serve_api`` reach the
   runpod SDK unchanged.

The lock of ``X.txt`` is ``X.lock`` beside it; its header records the sha256 of the
requirements it was made from, and a lock that does not match them is refused (run
``bash scripts/lock.sh``). With TORCH_INDEX_URL set, torch comes from another index whose
wheels have other hashes: the environment is then installed from the requirements file
without hashes (its own key; a warning says so).

HTTP mode (WORKER_MODE=http, RunPod load-balancing endpoints): while it installs or waits
for another worker's install, a small responder (threads of this process) answers GET /ping
with 204 (RunPod: "initializing") on PORT_HEALTH and PORT, and every other request with 503
and Retry-After, so the load balancer sees a starting worker, not a dead port (RunPod stops
a worker whose port does not answer after about 8 minutes). It is stopped, and its ports are
free, before handler.py starts; it dies with this process. Queue mode starts no responder.

Safety: the install runs under a lock on the venv folder (concurrent workers build once),
into a temporary folder next to its final place, and is published with one atomic rename
only when pip succeeded, so an install that crashed or was killed is never used. Everything
is logged to stdout (RunPod's console) with phase timings; credentials in URLs are hidden.

Settings (environment; production defaults in brackets):
  BOOTSTRAP_VOLUME_DIR     [/runpod-volume]  network volume mount point
  BOOTSTRAP_MOUNTINFO      [/proc/self/mountinfo]  mount table read to tell a mounted volume
                            from a plain folder
  BOOTSTRAP_VENV_ROOT      [<volume>/higgs-worker/venvs, or BOOTSTRAP_LOCAL_DIR without a
                            volume]  folder that holds the environments
  BOOTSTRAP_LOCAL_DIR      [/tmp/higgs-worker/venvs]  used when there is no volume
  BOOTSTRAP_REQUIREMENTS   [<app>/requirements-runtime.txt]  (its lock: the same name, .lock)
  BOOTSTRAP_PYTHON         [python3]  interpreter the environment is made from (bootstrap.sh
                            runs this module with it)
  BOOTSTRAP_APP_DIR        [folder of bootstrap.sh]  where handler.py lives
  BOOTSTRAP_PIP_ARGS       []  extra pip arguments (word-split), part of the key
  BOOTSTRAP_LOCK_TIMEOUT   [RUNPOD_INIT_TIMEOUT - 60, RunPod's default 420 s when that is
                            unset]  seconds to wait for another worker's install; capped there,
                            so the worker gives up with a clear message before RunPod marks it
                            unhealthy
  BOOTSTRAP_MIN_FREE_GB    [12]  warn when the venv folder has less free space
  WORKER_MODE, PORT, PORT_HEALTH   [queue, 8000, PORT]  the worker's own settings, read here
                            for the /ping responder of HTTP mode
  TORCH_INDEX_URL          []  PyTorch wheel index, passed as --extra-index-url (e.g.
                            https://download.pytorch.org/whl/cu126); part of the key. Empty:
                            PyPI's torch build (CUDA 12.8), from the lock.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import hashlib
import http.server
import json
import os
import platform
import re
import shlex
import shutil
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from dataclasses import dataclass
from pathlib import Path

LAYOUT_VERSION = 1
LOCK_MARGIN = 60  # seconds kept between the end of the lock wait and RUNPOD_INIT_TIMEOUT
DEFAULT_INIT_TIMEOUT = 420  # RunPod's, when RUNPOD_INIT_TIMEOUT is unset
NOTE_EVERY = 15.0  # seconds between "waiting for the install lock" lines
RECORD = ".bootstrap.json"


class BootstrapError(Exception):
    """The worker cannot start; the message says why and what to change."""


# ---------------------------------------------------------------- logging and timings
def log(message: str) -> None:
    print(f"[bootstrap] {message}", flush=True)


def warn(message: str) -> None:
    log(f"WARNING: {message}")


def since(start: float) -> str:
    """Seconds elapsed since a ``time.monotonic()`` value, as ``12.345s``."""
    return f"{time.monotonic() - start:.3f}s"


_CREDENTIALS = re.compile(r"(://)[^/@\s]+@")


def redact(text: str) -> str:
    """Hide credentials in URLs: ``scheme://user:password@host`` -> ``scheme://***@host``."""
    return _CREDENTIALS.sub(r"\1***@", text)


# ---------------------------------------------------------------- settings
def _whole_number(name: str, value: str) -> int:
    if not re.fullmatch(r"[0-9]+", value):
        raise BootstrapError(f"{name} must be a whole number of seconds, got '{value}'")
    return int(value)


def lock_timeout(init_timeout: int, requested: str | None) -> tuple[int, str | None]:
    """The install-lock wait: RUNPOD_INIT_TIMEOUT - 60 s (at least 5 s), or the requested one
    capped there, so the worker gives up before RunPod marks it unhealthy. Returns the wait
    and a warning when the request was capped."""
    limit = init_timeout - LOCK_MARGIN if init_timeout > LOCK_MARGIN + 5 else 5
    if requested is None or requested == "":
        return limit, None
    wanted = _whole_number("BOOTSTRAP_LOCK_TIMEOUT", requested)
    if wanted <= limit:
        return wanted, None
    return limit, (
        f"BOOTSTRAP_LOCK_TIMEOUT={wanted}s outlives RUNPOD_INIT_TIMEOUT={init_timeout}s (RunPod would mark"
        f" this worker unhealthy first); waiting at most {limit}s. Raise RUNPOD_INIT_TIMEOUT to wait longer"
    )


def lock_path_of(requirements: Path) -> Path:
    """The lock of ``X.txt`` is ``X.lock`` in the same folder."""
    name = requirements.name[: -len(".txt")] if requirements.name.endswith(".txt") else requirements.name
    return requirements.with_name(name + ".lock")


@dataclass(frozen=True)
class Settings:
    app_dir: Path
    requirements: Path
    python: str
    volume_dir: Path
    local_dir: Path
    mountinfo: str
    venv_root: str
    init_timeout: int
    lock_timeout: int
    lock_timeout_warning: str | None
    min_free_gb: int
    torch_index_url: str
    pip_args: str

    @property
    def lock_file(self) -> Path:
        return lock_path_of(self.requirements)

    @property
    def locked(self) -> bool:
        """Installed from the hash lock (not with TORCH_INDEX_URL, whose torch has other hashes)."""
        return not self.torch_index_url


def read_settings(environ: dict[str, str], script_dir: Path) -> Settings:
    """The settings from the environment, checked; BootstrapError says what is wrong."""
    app_dir = Path(environ.get("BOOTSTRAP_APP_DIR") or script_dir)
    init_timeout = _whole_number("RUNPOD_INIT_TIMEOUT", environ.get("RUNPOD_INIT_TIMEOUT") or str(DEFAULT_INIT_TIMEOUT))
    wait, capped = lock_timeout(init_timeout, environ.get("BOOTSTRAP_LOCK_TIMEOUT"))
    min_free = environ.get("BOOTSTRAP_MIN_FREE_GB", "12")
    if not re.fullmatch(r"[0-9]+", min_free):
        raise BootstrapError(f"BOOTSTRAP_MIN_FREE_GB must be a whole number, got '{min_free}'")
    settings = Settings(
        app_dir=app_dir,
        requirements=Path(environ.get("BOOTSTRAP_REQUIREMENTS") or app_dir / "requirements-runtime.txt"),
        python=sys.executable,
        volume_dir=Path(environ.get("BOOTSTRAP_VOLUME_DIR") or "/runpod-volume"),
        local_dir=Path(environ.get("BOOTSTRAP_LOCAL_DIR") or "/tmp/higgs-worker/venvs"),
        mountinfo=environ.get("BOOTSTRAP_MOUNTINFO", "/proc/self/mountinfo"),
        venv_root=environ.get("BOOTSTRAP_VENV_ROOT", ""),
        init_timeout=init_timeout,
        lock_timeout=wait,
        lock_timeout_warning=capped,
        min_free_gb=int(min_free),
        torch_index_url=environ.get("TORCH_INDEX_URL", ""),
        pip_args=environ.get("BOOTSTRAP_PIP_ARGS", ""),
    )
    if not os.access(settings.requirements, os.R_OK) or not settings.requirements.is_file():
        raise BootstrapError(
            f"requirements file '{settings.requirements}' not found or unreadable; set BOOTSTRAP_REQUIREMENTS"
        )
    if not (app_dir / "handler.py").is_file():
        raise BootstrapError(f"handler.py not found in '{app_dir}'; set BOOTSTRAP_APP_DIR to the folder that holds it")
    return settings


# ---------------------------------------------------------------- the lock file
_INPUT_LINE = re.compile(r"^# input (\S+) sha256=([0-9a-f]{64})$", re.MULTILINE)


def lock_inputs(lock_text: str) -> dict[str, str]:
    """The inputs a lock records in its header (``# input NAME sha256=HEX``): name -> sha256."""
    return {name: digest for name, digest in _INPUT_LINE.findall(lock_text)}


def check_lock(requirements: Path, lock: Path) -> bytes:
    """The lock's bytes, when it exists and was made from these requirements; else BootstrapError."""
    try:
        data = lock.read_bytes()
    except OSError as exc:
        raise BootstrapError(
            f"the lock '{lock}' of {requirements.name} cannot be read ({exc.strerror}): it is made by"
            " 'bash scripts/lock.sh' and must sit beside the requirements (the image copies both)"
        ) from None
    recorded = lock_inputs(data.decode("utf-8", "replace")).get(requirements.name)
    actual = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if recorded != actual:
        raise BootstrapError(
            f"the lock '{lock}' is stale: it was not made from this {requirements.name}"
            f" (sha256 {actual[:12]}..., the lock records {(recorded or 'none')[:12]}...). Run 'bash scripts/lock.sh'"
        )
    return data


# ---------------------------------------------------------------- environment key
def key_parts(settings: Settings, requirements: bytes, lock: bytes | None) -> list[str]:
    """Everything that decides the installed files; the key is a hash of these lines."""
    libc = " ".join(platform.libc_ver()) or "unknown-libc"
    return [
        f"layout={LAYOUT_VERSION}",
        f"python={sys.implementation.name}-{sys.version_info[0]}.{sys.version_info[1]}",
        f"platform={sysconfig.get_platform()}",
        f"libc={libc}",
        f"base={os.path.realpath(sys.executable)}",
        f"torch_index={settings.torch_index_url}",
        f"pip_args={settings.pip_args}",
        f"requirements_sha256={hashlib.sha256(requirements).hexdigest()}",
        f"lock_sha256={hashlib.sha256(lock).hexdigest() if lock is not None else 'unlocked'}",
    ]


def environment_key(parts: list[str]) -> str:
    """``py3.11-<16 hex>``: the environment's folder name."""
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    return f"py{sys.version_info[0]}.{sys.version_info[1]}-{digest}"


# ---------------------------------------------------------------- where it lives
def mountinfo_escape(path: str) -> str:
    """A path as /proc/self/mountinfo writes it (space, tab, newline, backslash as octal)."""
    return path.replace("\\", "\\134").replace(" ", "\\040").replace("\t", "\\011").replace("\n", "\\012")


def volume_mounted(directory: Path, mountinfo: str) -> bool:
    """Is ``directory`` itself a mount point? Read from the mount table (field 5 of each line),
    or without one, whether it sits on another device than its parent."""
    try:
        real = os.path.realpath(directory, strict=True)
    except OSError:
        return False
    if not os.path.isdir(real):
        return False
    if mountinfo and os.access(mountinfo, os.R_OK):
        wanted = mountinfo_escape(real)
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as fh:
            return any(len(f := line.split()) > 4 and f[4] == wanted for line in fh)
    return os.stat(real).st_dev != os.stat(os.path.join(real, "..")).st_dev


def writable_dir(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK)


def choose_venv_root(settings: Settings) -> tuple[Path, str]:
    """(folder of the environments, how it was chosen), saying why in the log."""
    if settings.venv_root:
        return Path(settings.venv_root), "BOOTSTRAP_VENV_ROOT"
    volume = settings.volume_dir
    mounted = volume_mounted(volume, settings.mountinfo)
    if mounted and writable_dir(volume / "higgs-worker" / "venvs"):
        log(f"network volume mounted at {volume}: the runtime is installed there once and reused by every worker")
        return volume / "higgs-worker" / "venvs", "network volume"
    if mounted:
        warn(f"network volume {volume} is not writable; installing on the container disk instead")
    elif volume.is_dir():
        warn(
            f"NO NETWORK VOLUME is mounted at {volume}: that folder is only on the container disk (left by an"
            " earlier start of this container), so nothing there survives the container. Installing on the"
            f" container disk in {settings.local_dir}; every new worker pays the install and the model"
            " download. Attach a network volume to the endpoint to cache them"
        )
    else:
        log(
            f"no network volume at {volume}: installing on the container disk (every new worker pays the"
            " install; attach a volume to cache it)"
        )
    return settings.local_dir, "container disk"


def venv_usable(venv: Path) -> bool:
    """A published environment: its record and a Python that starts."""
    python = venv / "bin" / "python"
    if not (venv / RECORD).is_file() or not os.access(python, os.X_OK):
        return False
    try:
        return subprocess.run([str(python), "-c", "import sys"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


# ---------------------------------------------------------------- /ping while installing
BUSY = json.dumps(
    {
        "error": {
            "message": "the worker is starting: its runtime is being installed; retry in a minute",
            "type": "server_error",
            "code": "model_loading",
            "param": None,
        }
    }
).encode()


class _Ping(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def answer(self) -> None:
        if self.path.split("?", 1)[0] == "/ping":
            self.send_response(204)  # RunPod's load balancer: initializing
            self.end_headers()
            return
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Retry-After", "30")
        self.send_header("Content-Length", str(len(BUSY)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(BUSY)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = answer  # noqa: N815


def responder_ports(environ: dict[str, str]) -> list[int]:
    """The ports to answer /ping on in HTTP mode (PORT and PORT_HEALTH, once each); none in queue mode."""
    if "".join(environ.get("WORKER_MODE", "queue").split()).lower() != "http":
        return []
    port = environ.get("PORT", "8000")
    ports: list[int] = []
    for value in (port, environ.get("PORT_HEALTH", port)):
        if not re.fullmatch(r"[0-9]{1,5}", value) or not 1 <= int(value) <= 65535:
            warn(
                f"HTTP mode: port '{value}' (PORT / PORT_HEALTH) is not a port number; no /ping answers while"
                " installing (handler.py will refuse it)"
            )
            continue
        if int(value) not in ports:
            ports.append(int(value))
    return ports


class PingResponder:
    """Answers /ping with 204 on the given ports from threads of this process until ``stop()``."""

    def __init__(self, ports: list[int]):
        self.servers: list[http.server.ThreadingHTTPServer] = []
        for port in ports:
            try:
                server = http.server.ThreadingHTTPServer(("0.0.0.0", port), _Ping)
            except OSError as exc:
                warn(f"/ping responder: port {port}: {exc.strerror}")
                continue
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.servers.append(server)
        if self.servers:
            bound = ", ".join(str(s.server_address[1]) for s in self.servers)
            log(f"HTTP mode: /ping answers 204 (initializing) on port {bound} until handler.py starts")

    def stop(self) -> None:
        """Stop answering and free the ports."""
        for server in self.servers:
            server.shutdown()
            server.server_close()
        self.servers = []


# ---------------------------------------------------------------- the install lock
def lock_holder(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[:300].strip() or "another worker (it left no note)"
    except OSError:
        return "another worker"


def acquire_install_lock(fd: int, path: Path, timeout: float, key: str, init_timeout: int) -> str:
    """flock(2) ``fd``, waiting at most ``timeout`` seconds and saying whom it waits for.
    Returns "acquired", "timeout" or "unsupported" (a file system without locks). The kernel
    releases the lock when this process dies, so a crashed worker never leaves a stale lock."""
    start = time.monotonic()
    next_note = start
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return "acquired"
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                warn(f"locking {path} failed ({exc.strerror})")
                return "unsupported"
        now = time.monotonic()
        if now - start >= timeout:
            return "timeout"
        if now >= next_note:
            log(
                f"waiting for the install lock {path}: {lock_holder(path)} is installing; this worker needs"
                f" environment {key} ({now - start:.0f}s so far, giving up in {timeout - (now - start):.0f}s,"
                f" before RUNPOD_INIT_TIMEOUT={init_timeout}s)"
            )
            next_note = now + NOTE_EVERY
        time.sleep(0.25)


def remove_leftovers(root: Path) -> None:
    """Under the lock nobody else is installing: every ``.tmp-*`` folder is a leftover of an
    install that crashed or was killed."""
    for stale in sorted(root.glob(".tmp-*")):
        log(f"removing leftover of an interrupted install: {stale}")
        shutil.rmtree(stale, ignore_errors=True)


def check_free_space(root: Path, min_free_gb: int) -> None:
    try:
        free = shutil.disk_usage(root).free
    except OSError:
        return
    log(f"free space in {root}: {free // 1024**3} GB")
    if free < min_free_gb * 1024**3:
        warn(
            f"less than {min_free_gb} GB free in {root}; the runtime (torch + CUDA libraries) needs about 8 GB"
            f" and the model about 12 GB. Enlarge the network volume or delete old environments in {root}"
        )


# ---------------------------------------------------------------- build
def pip_supports_python_option(python: str) -> bool:
    """pip 22.3+ installs into another interpreter's environment (``--python``)."""
    try:
        out = subprocess.run([python, "-m", "pip", "--help"], capture_output=True, text=True, timeout=120).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "--python " in out


def create_venv(python: str, target: Path) -> list[str]:
    """Make an empty environment at ``target``; returns the pip command that fills it."""
    if pip_supports_python_option(python):
        # fast: an environment without its own pip, filled by the base interpreter's pip
        command, pip = [python, "-m", "venv", "--without-pip", str(target)], [python, "-m", "pip", "--python"]
        pip.append(str(target / "bin" / "python"))
    else:
        command, pip = [python, "-m", "venv", str(target)], [str(target / "bin" / "python"), "-m", "pip"]
    if subprocess.run(command).returncode != 0:
        raise BootstrapError(f"python -m venv failed for {target}")
    return pip


def pip_install_args(settings: Settings) -> list[str]:
    """pip's arguments: the lock with hashes required, or the requirements with TORCH_INDEX_URL."""
    args = ["install", "--no-cache-dir", "--disable-pip-version-check", "--no-input", "--progress-bar", "off"]
    if settings.torch_index_url:
        args += ["--extra-index-url", settings.torch_index_url]
    args += shlex.split(settings.pip_args)
    if settings.locked:
        # the lock is the whole tree: --no-deps (pip's secure-install form; pip < 24 also fails on a
        # dependency's extras under --require-hashes without it); build() runs pip check after
        return [*args, "--require-hashes", "--no-deps", "-r", str(settings.lock_file)]
    return [*args, "-r", str(settings.requirements)]


def run_pip(command: list[str]) -> tuple[int, str]:
    """Run pip with its output passed through to the log; returns (exit code, the output)."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        lines.append(line)
    return proc.wait(), "".join(lines)


def pip_failure_reason(output: str, root: Path) -> str:
    """What most likely made pip fail, from its output."""
    if re.search(r"no space left on device", output, re.IGNORECASE):
        return f"the disk holding {root} is full: enlarge the network volume or delete old environments in {root}"
    if re.search(r"Could not find a version|No matching distribution", output, re.IGNORECASE):
        return (
            "a pinned package is not available from the configured index (check TORCH_INDEX_URL and BOOTSTRAP_PIP_ARGS)"
        )
    if re.search(r"THESE PACKAGES DO NOT MATCH THE HASHES", output, re.IGNORECASE):
        return "a downloaded file does not match the lock's hash (a changed or tampered file, or another index)"
    if re.search(r"connection|timed out|Temporary failure in name resolution", output, re.IGNORECASE):
        return "the package index could not be reached (network)"
    return "see pip's output above"


def repoint_scripts(tmp: Path, final: Path) -> None:
    """The environment was built at its temporary path: point pyvenv.cfg and the scripts in bin/
    at the final path, so console scripts keep working after the rename."""
    old, new = str(tmp).encode(), str(final).encode()
    targets = [tmp / "pyvenv.cfg", *sorted((tmp / "bin").iterdir())]
    for path in targets:
        if path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        if old in data and b"\0" not in data[:4096]:
            path.write_bytes(data.replace(old, new))


def write_record(tmp: Path, final: Path, settings: Settings, key: str, mode: str, seconds: float, freeze: str) -> dict:
    """``.bootstrap.json``: what was installed, from what, how long it took (no credentials)."""
    record = {
        "key": key,
        "path": str(final),
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "created_by_host": socket.gethostname(),
        "install_seconds": round(seconds, 3),
        "mode": mode,
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": sysconfig.get_platform(),
        "requirements_file": str(settings.requirements),
        "requirements_sha256": hashlib.sha256(settings.requirements.read_bytes()).hexdigest(),
        "lock_file": str(settings.lock_file) if settings.locked else None,
        "lock_sha256": hashlib.sha256(settings.lock_file.read_bytes()).hexdigest() if settings.locked else None,
        "torch_index_url": redact(settings.torch_index_url),
        "pip_args": redact(settings.pip_args),
        "packages": [line for line in freeze.splitlines() if line.strip()],
    }
    path = tmp / RECORD
    with open(path, "w") as fh:
        json.dump(record, fh, indent=2)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    return record


def publish(tmp: Path, final: Path) -> bool:
    """rename(2) is atomic: readers see no environment or the complete one. False when another
    worker published the same key first (this copy is then discarded)."""
    try:
        os.rename(tmp, final)
        return True
    except OSError:
        if venv_usable(final):
            shutil.rmtree(tmp, ignore_errors=True)
            return False
        raise BootstrapError(f"could not move {tmp} to {final}") from None


# ---------------------------------------------------------------- the handler
def exec_handler(venv: Path, app_dir: Path, args: list[str], how: str, started: float) -> None:
    """Replace this process with ``python -u handler.py ARGS`` from the environment."""
    os.environ["VIRTUAL_ENV"] = str(venv)
    os.environ["PATH"] = f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ.pop("PYTHONHOME", None)
    os.chdir(app_dir)
    log(f"environment {how}; bootstrap took {since(started)}; starting handler.py with {len(args)} argument(s)")
    python = str(venv / "bin" / "python")
    os.execv(python, [python, "-u", "handler.py", *args])


# ---------------------------------------------------------------- the whole start
def install(settings: Settings, root: Path, venv: Path, key: str, mode: str, started: float) -> bool:
    """Build the environment under the install lock and publish it; True when this worker built it,
    False when another worker published it meanwhile."""
    lock_file = root / ".install.lock"
    phase = time.monotonic()
    try:
        fd = os.open(lock_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        raise BootstrapError(f"cannot open the lock file '{lock_file}' ({exc.strerror})") from None
    try:
        log(
            f"install lock {lock_file}: waiting at most {settings.lock_timeout}s for another worker's install"
            f" (RUNPOD_INIT_TIMEOUT={settings.init_timeout}s)"
        )
        state = acquire_install_lock(fd, lock_file, settings.lock_timeout, key, settings.init_timeout)
        if state == "timeout":
            raise BootstrapError(
                f"gave up after {settings.lock_timeout}s waiting for the install lock {lock_file}"
                f" ({lock_holder(lock_file)}): that install is still running. RunPod restarts this worker, which"
                " then reuses it once published. To wait longer, raise RUNPOD_INIT_TIMEOUT (the wait is capped"
                f" {LOCK_MARGIN}s below it)"
            )
        if state == "acquired":
            log(f"install lock acquired after {since(phase)}")
            # a note for workers that wait meanwhile (the lock is on the file, not its text)
            note = f"worker {os.environ.get('HOSTNAME', '?')} (pid {os.getpid()}, installing {key} since"
            note += f" {datetime.datetime.now(datetime.UTC):%H:%M:%SZ})\n"
            try:
                lock_file.write_text(note)
            except OSError:
                pass
        else:
            warn(
                f"the file system of {root} does not support locks; continuing without one (a concurrent worker"
                " may install too; the atomic publish keeps that safe)"
            )
        if venv_usable(venv):
            return False
        if state == "acquired":
            remove_leftovers(root)
        if venv.exists():
            warn(f"{venv} exists but is not a complete environment; moving it aside and rebuilding")
            aside = root / f".tmp-broken-{os.getpid()}"
            os.rename(venv, aside)
            shutil.rmtree(aside, ignore_errors=True)
        check_free_space(root, settings.min_free_gb)
        return build(settings, root, venv, key, mode, started)
    finally:
        os.close(fd)


def build(settings: Settings, root: Path, venv: Path, key: str, mode: str, started: float) -> bool:
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", os.environ.get("HOSTNAME") or "host")
    tmp = root / f".tmp-{key}-{host}-{os.getpid()}"
    log(f"building a new environment in {tmp}")
    try:
        phase = time.monotonic()
        pip = create_venv(settings.python, tmp)
        log(f"phase venv: {since(phase)}")

        phase = time.monotonic()
        log(
            "phase pip install: started (torch and the CUDA libraries are several GB; this takes minutes on the"
            " first start)"
        )
        rc, output = run_pip([*pip, *pip_install_args(settings)])
        if rc != 0:
            raise BootstrapError(
                f"pip install failed (exit {rc}) after {since(phase)}: {pip_failure_reason(output, root)}."
                " Nothing was published; the next start retries from scratch"
            )
        if settings.locked:
            rc, output = run_pip([*pip, "check", "--disable-pip-version-check"])
            if rc != 0:
                raise BootstrapError(
                    f"the lock {settings.lock_file} misses a dependency (pip check above). Nothing was published;"
                    " relock with 'bash scripts/lock.sh'"
                )
        log(f"phase pip install: {since(phase)}")

        phase = time.monotonic()
        seconds = time.monotonic() - started
        freeze = subprocess.run([*pip, "freeze", "--all"], capture_output=True, text=True).stdout
        repoint_scripts(tmp, venv)
        write_record(tmp, venv, settings, key, mode, seconds, freeze)
        if publish(tmp, venv):
            log(f"phase publish: {since(phase)}; recorded {venv / RECORD}")
            return True
        log(f"another worker published {venv} first; discarding this copy")
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(args: list[str], script_dir: Path) -> int:
    started = time.monotonic()
    responder: PingResponder | None = None
    try:
        settings = read_settings(dict(os.environ), script_dir)
        if settings.lock_timeout_warning:
            warn(settings.lock_timeout_warning)
        phase = time.monotonic()
        requirements = settings.requirements.read_bytes()
        lock = check_lock(settings.requirements, settings.lock_file) if settings.locked else None
        key = environment_key(key_parts(settings, requirements, lock))
        root, mode = choose_venv_root(settings)
        if not writable_dir(root):
            raise BootstrapError(f"cannot create or write the venv folder '{root}'")
        venv = root / key
        log(
            f"python {sys.implementation.name} {platform.python_version()} ({settings.python}),"
            f" platform {sysconfig.get_platform()}"
        )
        log(f"requirements {settings.requirements} (sha256 {hashlib.sha256(requirements).hexdigest()[:12]}...)")
        if lock is not None:
            log(f"lock {settings.lock_file} (sha256 {hashlib.sha256(lock).hexdigest()[:12]}...): installed with hashes")
        else:
            warn(
                "TORCH_INDEX_URL is set: installing requirements-runtime.txt from that index WITHOUT the lock's"
                " hashes (its torch wheels are other files); only the pins in the requirements hold"
            )
        log(f"torch index: {redact(settings.torch_index_url or 'PyPI default (CUDA 12.8 build)')}")
        if settings.pip_args:
            log(f"extra pip args: {redact(settings.pip_args)}")
        log(f"environment {venv} ({mode}); key computed in {since(phase)}")

        if venv_usable(venv):
            exec_handler(venv, settings.app_dir, args, "reused (no install)", started)

        responder = PingResponder(responder_ports(dict(os.environ)))
        built = install(settings, root, venv, key, mode, started)
        responder.stop()
        how = "built and published" if built else "reused (built by another worker while this one waited)"
        exec_handler(venv, settings.app_dir, args, how, started)
    except Exception as exc:  # every failure ends in one clear line, never a silent exit
        if responder is not None:
            responder.stop()
        message = str(exc) if isinstance(exc, BootstrapError) else f"unexpected failure: {exc!r}"
        log(f"ERROR: {redact(message)}")
        log("ERROR: the worker cannot start; see the message above.")
        return 1
    return 0  # not reached: exec_handler replaces this process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], Path(__file__).resolve().parents[1]))
