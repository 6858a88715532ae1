"""bootstrap.sh (higgs_worker/bootstrap.py), really run with bash against a temporary "network volume".

bootstrap.sh takes a folder for a volume only when the kernel's mount table lists it
as a mount point. Most tests give it a mount table (BOOTSTRAP_MOUNTINFO, the format of
/proc/self/mountinfo) that lists the temporary folder as mounted, which is what the
kernel's table would say of a real volume; one test mounts a real tmpfs (as root) and
lets bootstrap.sh read /proc/self/mountinfo itself.

The requirements are a tiny wheel written by the test, locked with its hash the way
scripts/lock.sh does and installed with ``--no-index --find-links``, so nothing here needs
the network. tests/shipping/test_bootstrap_functions.py tests the module function by function. The handler is a
stand-in handler.py that reports its argv, interpreter and working directory.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = ROOT / "bootstrap.sh"
PKG = "higgs_bootstrap_probe"
DIST = "higgs-bootstrap-probe"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is required")


# --------------------------------------------------------------------------- helpers
def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def build_wheel(dest: Path, version: str) -> Path:
    """Write a minimal, valid wheel with one module and one console script."""
    dist_info = f"{PKG}-{version}.dist-info"
    files = {
        f"{PKG}/__init__.py": (f'VERSION = "{version}"\n\n\ndef main():\n    print("probe-ok", VERSION)\n').encode(),
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {DIST}\nVersion: {version}\nSummary: test package for bootstrap.sh\n"
        ).encode(),
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: test_bootstrap\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
        f"{dist_info}/entry_points.txt": (f"[console_scripts]\n{DIST} = {PKG}:main\n").encode(),
    }
    record = [_record_line(p, d) for p, d in files.items()] + [f"{dist_info}/RECORD,,"]
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / f"{PKG}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return wheel


HANDLER = r"""
import json, os, sys
info = {"argv": sys.argv[1:], "executable": sys.executable, "prefix": sys.prefix,
        "virtual_env": os.environ.get("VIRTUAL_ENV"), "cwd": os.getcwd()}
try:
    import higgs_bootstrap_probe
    info["probe"] = higgs_bootstrap_probe.VERSION
except ImportError:
    info["probe"] = None
print("HANDLER " + json.dumps(info), flush=True)
"""


class Env:
    """A temporary app dir, volume and wheelhouse, and a way to run bootstrap.sh."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.app = tmp / "app"
        self.app.mkdir()
        (self.app / "handler.py").write_text(HANDLER)
        self.req = self.app / "requirements-runtime.txt"
        self.lock = self.app / "requirements-runtime.lock"
        self.volume = tmp / "runpod-volume"
        self.volume.mkdir()
        self.mountinfo = tmp / "mountinfo"
        self.mountinfo.write_text(
            "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
            f"99 22 0:99 / {self.volume.resolve()} rw,relatime - fuse.mfs volume rw\n"
        )
        self.wheels = tmp / "wheels"
        build_wheel(self.wheels, "1.0")
        build_wheel(self.wheels, "2.0")
        self.venvs = self.volume / "higgs-worker" / "venvs"
        self.pin("1.0")

    def pin(self, version: str, digest: str | None = None) -> None:
        """Require the probe at ``version`` and lock it the way scripts/lock.sh does: a header with
        the requirements' sha256, the pin with the wheel's hash (or ``digest``)."""
        self.req.write_text(f"{DIST}=={version}\n")
        wheel = self.wheels / f"{PKG}-{version}-py3-none-any.whl"
        if digest is None:
            digest = hashlib.sha256(wheel.read_bytes()).hexdigest() if wheel.exists() else "0" * 64
        self.lock.write_text(
            f"# input requirements-runtime.txt sha256={hashlib.sha256(self.req.read_bytes()).hexdigest()}\n"
            f"{DIST}=={version} \\\n    --hash=sha256:{digest}\n"
        )

    def environ(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PIP_", "BOOTSTRAP_", "PYTHON"))
            and k not in ("VIRTUAL_ENV", "TORCH_INDEX_URL", "RUNPOD_INIT_TIMEOUT")
        }
        env.update(
            PIP_CONFIG_FILE=os.devnull,
            NO_PROXY="127.0.0.1,localhost",
            no_proxy="127.0.0.1,localhost",
            BOOTSTRAP_PYTHON=sys.executable,
            BOOTSTRAP_APP_DIR=str(self.app),
            BOOTSTRAP_VOLUME_DIR=str(self.volume),
            BOOTSTRAP_MOUNTINFO=str(self.mountinfo),
            BOOTSTRAP_LOCAL_DIR=str(self.tmp / "local-venvs"),
            BOOTSTRAP_REQUIREMENTS=str(self.req),
            BOOTSTRAP_PIP_ARGS=f"--no-index --find-links {self.wheels}",
            BOOTSTRAP_LOCK_TIMEOUT="60",
            BOOTSTRAP_MIN_FREE_GB="0",
        )
        env.update(extra)
        return env

    def run(self, *args: str, timeout: float = 120, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(BOOTSTRAP), *args],
            env=self.environ(**extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )

    def start(self, *args: str, log: Path, **extra: str) -> subprocess.Popen:
        fh = open(log, "w")  # noqa: SIM115 - closed by the caller via finish()
        proc = subprocess.Popen(
            ["bash", str(BOOTSTRAP), *args],
            env=self.environ(**extra),
            stdout=fh,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        proc._log_handle = fh  # type: ignore[attr-defined]
        return proc

    def published(self) -> list[Path]:
        if not self.venvs.is_dir():
            return []
        return sorted(p for p in self.venvs.iterdir() if p.is_dir() and not p.name.startswith("."))

    def leftovers(self) -> list[Path]:
        if not self.venvs.is_dir():
            return []
        return sorted(p for p in self.venvs.iterdir() if p.name.startswith(".tmp-"))


def handler_report(output: str) -> dict:
    lines = [line for line in output.splitlines() if line.startswith("HANDLER ")]
    assert len(lines) == 1, f"handler.py did not run exactly once:\n{output}"
    return json.loads(lines[0][len("HANDLER ") :])


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def finish(proc: subprocess.Popen, log: Path, timeout: float = 120) -> tuple[int, str]:
    try:
        rc = proc.wait(timeout=timeout)
    finally:
        proc._log_handle.close()  # type: ignore[attr-defined]
    return rc, log.read_text()


@pytest.fixture()
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


# --------------------------------------------------------------------------- tests
def test_first_run_builds_and_records_second_run_reuses_without_installing(env: Env) -> None:
    first = env.run("--rp_serve_api")
    assert first.returncode == 0, first.stdout
    assert "built and published" in first.stdout
    for phase in ("phase venv:", "phase pip install:", "phase publish:", "bootstrap took"):
        assert phase in first.stdout, f"missing timing '{phase}':\n{first.stdout}"

    [venv] = env.published()
    assert env.leftovers() == []
    assert venv.name.startswith(f"py{sys.version_info[0]}.{sys.version_info[1]}-")
    record = json.loads((venv / ".bootstrap.json").read_text())
    assert record["key"] == venv.name
    assert record["path"] == str(venv)
    assert record["mode"] == "network volume"
    assert record["requirements_sha256"] == hashlib.sha256(env.req.read_bytes()).hexdigest()
    assert f"{DIST}==1.0" in record["packages"]

    report = handler_report(first.stdout)
    assert report["argv"] == ["--rp_serve_api"]
    assert Path(report["prefix"]) == venv
    assert report["virtual_env"] == str(venv)
    assert report["probe"] == "1.0"
    assert Path(report["cwd"]).resolve() == env.app.resolve()

    # Built in a temporary folder and renamed: the console script must point at the
    # final path, not at the temporary one.
    script = venv / "bin" / DIST
    assert ".tmp-" not in script.read_text().splitlines()[0]
    probe = subprocess.run([str(script)], capture_output=True, text=True, timeout=30)
    assert probe.stdout.strip() == "probe-ok 1.0", probe.stderr

    # Second start: the wheelhouse is gone, so any install attempt would fail.
    shutil.rmtree(env.wheels)
    inode = venv.stat().st_ino
    second = env.run("--rp_serve_api")
    assert second.returncode == 0, second.stdout
    assert "reused (no install)" in second.stdout
    assert "phase pip install" not in second.stdout
    assert "install lock" not in second.stdout
    assert env.published() == [venv] and venv.stat().st_ino == inode
    assert json.loads((venv / ".bootstrap.json").read_text()) == record
    assert Path(handler_report(second.stdout)["prefix"]) == venv


def test_arguments_reach_handler_unchanged(env: Env) -> None:
    test_input = json.dumps({"input": {"text": 'He said "hi" & $HOME; `echo no`', "seed": 3}})
    args = ["--test_input", test_input, "", "two words", "--rp_log_level", "INFO"]
    result = env.run(*args)
    assert result.returncode == 0, result.stdout
    report = handler_report(result.stdout)
    assert report["argv"] == args
    assert report["probe"] == "1.0"
    assert f"starting handler.py with {len(args)} argument(s)" in result.stdout


def test_key_follows_requirements_and_torch_index(env: Env) -> None:
    assert env.run().returncode == 0
    [v1] = env.published()

    env.pin("2.0")
    result = env.run()
    assert result.returncode == 0, result.stdout
    assert handler_report(result.stdout)["probe"] == "2.0"
    v2 = [p for p in env.published() if p != v1]
    assert len(v2) == 1 and (v1 / ".bootstrap.json").is_file()

    # Another torch index is another environment; its credentials never reach the log
    # or the record. (--no-index makes pip ignore the index itself.)
    result = env.run(TORCH_INDEX_URL="https://user:s3cr3tpw@example.invalid/whl/cu126")
    assert result.returncode == 0, result.stdout
    assert len(env.published()) == 3
    assert "s3cr3tpw" not in result.stdout
    assert "https://***@example.invalid/whl/cu126" in result.stdout
    records = [json.loads((p / ".bootstrap.json").read_text()) for p in env.published()]
    assert all("s3cr3tpw" not in json.dumps(r) for r in records)


def test_two_workers_at_once_build_once(env: Env) -> None:
    env.venvs.mkdir(parents=True)
    lock_path = env.venvs / ".install.lock"
    logs = [env.tmp / "worker-a.log", env.tmp / "worker-b.log"]
    with open(lock_path, "a") as holder:
        # Hold the install lock ourselves so both workers are certain to contend.
        fcntl.flock(holder, fcntl.LOCK_EX)
        procs = [env.start("--rp_serve_api", log=log) for log in logs]
        wait_for(
            lambda: all("waiting for the install lock" in log.read_text() for log in logs),
            60,
            "both workers to wait for the lock",
        )
        fcntl.flock(holder, fcntl.LOCK_UN)
    results = [finish(p, log) for p, log in zip(procs, logs, strict=True)]
    for rc, out in results:
        assert rc == 0, out
    outputs = [out for _, out in results]
    assert sum("built and published" in out for out in outputs) == 1, outputs
    assert sum("reused (built by another worker while this one waited)" in out for out in outputs) == 1
    assert sum("phase pip install:" in out for out in outputs) == 1
    [venv] = env.published()
    assert env.leftovers() == []
    assert {handler_report(out)["prefix"] for out in outputs} == {str(venv)}


class _StallingIndex(http.server.ThreadingHTTPServer):
    """A find-links page whose wheel download stalls halfway while ``stall`` is set (a
    worker killed mid-install), or with ``finish=True`` stalls until ``release`` and then
    sends the whole wheel (a slow install that succeeds)."""

    daemon_threads = True

    def __init__(self, wheel: Path, finish: bool = False):
        self.wheel = wheel.read_bytes()
        self.wheel_name = wheel.name
        self.finish = finish
        self.stall = threading.Event()
        self.stall.set()
        self.download_started = threading.Event()
        self.release = threading.Event()
        super().__init__(("127.0.0.1", 0), _IndexHandler)


class _IndexHandler(http.server.BaseHTTPRequestHandler):
    server: _StallingIndex

    def log_message(self, *args) -> None:  # keep pytest output quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        srv = self.server
        if self.path.rstrip("/") in ("", "/links"):
            body = f'<html><body><a href="/files/{srv.wheel_name}">{srv.wheel_name}</a></body></html>'.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == f"/files/{srv.wheel_name}":
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(srv.wheel)))
            self.end_headers()
            if srv.stall.is_set():
                self.wfile.write(srv.wheel[: len(srv.wheel) // 2])
                self.wfile.flush()
                srv.download_started.set()
                srv.release.wait(60)
                if srv.finish:
                    self.wfile.write(srv.wheel[len(srv.wheel) // 2 :])
                return
            self.wfile.write(srv.wheel)
        else:
            self.send_error(404)


def test_killed_install_is_never_used_and_is_cleaned_up(env: Env) -> None:
    server = _StallingIndex(env.wheels / f"{PKG}-1.0-py3-none-any.whl")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    pip_args = f"--no-index --find-links http://127.0.0.1:{server.server_port}/links --trusted-host 127.0.0.1"
    try:
        log = env.tmp / "killed.log"
        proc = env.start("--rp_serve_api", log=log, BOOTSTRAP_PIP_ARGS=pip_args)
        try:
            assert server.download_started.wait(60), log.read_text()
            assert env.leftovers(), "the install should be running in a temporary folder"
        finally:
            os.killpg(proc.pid, signal.SIGKILL)  # the worker dies mid-install
            rc, out = finish(proc, log)
        assert rc == -signal.SIGKILL, out
        assert "HANDLER " not in out
        assert env.published() == [], "a killed install must not be published"
        [partial] = env.leftovers()
        assert not (partial / ".bootstrap.json").exists()
        server.release.set()

        # The next worker (same key) must not use the partial install: it cleans it
        # up and builds a complete one. A lock left behind would make it wait.
        server.stall.clear()
        result = env.run("--rp_serve_api", BOOTSTRAP_PIP_ARGS=pip_args, BOOTSTRAP_LOCK_TIMEOUT="20")
        assert result.returncode == 0, result.stdout
        assert f"removing leftover of an interrupted install: {partial}" in result.stdout
        assert "built and published" in result.stdout
        [venv] = env.published()
        assert env.leftovers() == []
        assert handler_report(result.stdout)["probe"] == "1.0"
        assert Path(handler_report(result.stdout)["prefix"]) == venv
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()


def test_failed_install_fails_loudly_and_publishes_nothing(env: Env) -> None:
    env.pin("9.9")  # not in the wheelhouse
    result = env.run("--rp_serve_api")
    assert result.returncode == 1
    assert "[bootstrap] ERROR: pip install failed" in result.stdout
    assert "Nothing was published" in result.stdout
    assert "not available from the configured index" in result.stdout
    assert "HANDLER " not in result.stdout
    assert env.published() == [] and env.leftovers() == []


def test_missing_requirements_or_python_fail_with_a_clear_message(env: Env) -> None:
    result = env.run(BOOTSTRAP_REQUIREMENTS=str(env.tmp / "nope.txt"))
    assert result.returncode == 1
    assert "requirements file" in result.stdout and "BOOTSTRAP_REQUIREMENTS" in result.stdout

    result = env.run(BOOTSTRAP_PYTHON="python-does-not-exist-3.11")
    assert result.returncode == 1
    assert "BOOTSTRAP_PYTHON" in result.stdout


def test_without_a_volume_installs_on_the_container_disk(env: Env) -> None:
    result = env.run("--rp_serve_api", BOOTSTRAP_VOLUME_DIR=str(env.tmp / "no-volume-here"))
    assert result.returncode == 0, result.stdout
    assert "no network volume at" in result.stdout
    local = env.tmp / "local-venvs"
    [venv] = [p for p in local.iterdir() if not p.name.startswith(".")]
    assert json.loads((venv / ".bootstrap.json").read_text())["mode"] == "container disk"
    assert Path(handler_report(result.stdout)["prefix"]) == venv
    assert not (env.tmp / "no-volume-here").exists()


def test_a_folder_that_is_not_a_mount_is_not_taken_for_a_volume(env: Env) -> None:
    # /runpod-volume exists (the worker created it on the container disk at an earlier
    # start) but no volume is mounted there: install on the container disk, and say so.
    env.mountinfo.write_text("22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n")
    result = env.run("--rp_serve_api")
    assert result.returncode == 0, result.stdout
    assert f"NO NETWORK VOLUME is mounted at {env.volume}" in result.stdout
    assert not env.venvs.exists()
    [venv] = [p for p in (env.tmp / "local-venvs").iterdir() if not p.name.startswith(".")]
    assert json.loads((venv / ".bootstrap.json").read_text())["mode"] == "container disk"


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("mount") is None, reason="mounting a tmpfs needs root")
def test_a_real_mount_is_read_from_the_kernel_mount_table(env: Env) -> None:
    target = env.tmp / "real-volume"
    target.mkdir()
    unmounted = env.run("--rp_serve_api", BOOTSTRAP_VOLUME_DIR=str(target), BOOTSTRAP_MOUNTINFO="")
    assert unmounted.returncode == 0, unmounted.stdout
    assert "NO NETWORK VOLUME is mounted" in unmounted.stdout
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(target)], check=True)
    try:
        mounted = env.run("--rp_serve_api", BOOTSTRAP_VOLUME_DIR=str(target), BOOTSTRAP_MOUNTINFO="")
        assert mounted.returncode == 0, mounted.stdout
        assert f"network volume mounted at {target}" in mounted.stdout
        assert Path(handler_report(mounted.stdout)["prefix"]).parent == target / "higgs-worker" / "venvs"
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def test_the_lock_wait_ends_before_runpod_init_timeout_and_says_what_it_waits_for(env: Env) -> None:
    env.venvs.mkdir(parents=True)
    lock_path = env.venvs / ".install.lock"
    with open(lock_path, "a") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)  # another worker installing, for good
        holder.write("worker other-host (pid 7, installing py3.11-abc since 10:00:00Z)\n")
        holder.flush()
        start = time.monotonic()
        # 1800 s would outlive RunPod's 63 s init timeout: capped at 5 s (the floor).
        result = env.run("--rp_serve_api", RUNPOD_INIT_TIMEOUT="63", BOOTSTRAP_LOCK_TIMEOUT="1800")
        elapsed = time.monotonic() - start
    assert result.returncode == 1, result.stdout
    assert "BOOTSTRAP_LOCK_TIMEOUT=1800s outlives RUNPOD_INIT_TIMEOUT=63s" in result.stdout
    assert "waiting at most 5s" in result.stdout
    assert "worker other-host (pid 7, installing py3.11-abc" in result.stdout  # who it waits for
    assert "giving up in" in result.stdout and "gave up after 5s" in result.stdout
    assert elapsed < 60


def test_the_default_lock_wait_derives_from_runpod_init_timeout(env: Env) -> None:
    environ = env.environ(RUNPOD_INIT_TIMEOUT="1200")
    del environ["BOOTSTRAP_LOCK_TIMEOUT"]
    result = subprocess.run(
        ["bash", str(BOOTSTRAP), "--rp_serve_api"],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout
    assert "waiting at most 1140s for another worker's install (RUNPOD_INIT_TIMEOUT=1200s)" in result.stdout
    assert "outlives" not in result.stdout


# --------------------------------------------------------------------------- /ping while installing (HTTP mode)
# A stand-in handler.py for HTTP mode: it binds PORT and PORT_HEALTH the way the worker's
# server does, which fails (EADDRINUSE) if bootstrap's /ping responder still holds them.
HTTP_HANDLER = r"""
import json, os, socket
bound = []
for port in dict.fromkeys(int(os.environ[name]) for name in ("PORT", "PORT_HEALTH")):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", port))
    sock.listen()
    bound.append(port)
print("HANDLER " + json.dumps({"bound": bound}), flush=True)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(port: int, path: str = "/ping") -> tuple[int, dict, bytes] | None:
    """(status, headers, body) of GET http://127.0.0.1:port/path, or None when nothing listens."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    except OSError:
        return None
    finally:
        conn.close()


def _http_env(port: int, health: int) -> dict[str, str]:
    return {"WORKER_MODE": "HTTP", "PORT": str(port), "PORT_HEALTH": str(health)}


def test_http_mode_answers_ping_while_installing_then_frees_the_ports_for_the_handler(env: Env) -> None:
    """Issue 18: nothing answered /ping while bootstrap.sh installed the runtime, and RunPod's
    load balancer stops a worker whose port does not answer (after about 8 minutes)."""
    (env.app / "handler.py").write_text(HTTP_HANDLER)
    port, health = _free_port(), _free_port()
    server = _StallingIndex(env.wheels / f"{PKG}-1.0-py3-none-any.whl", finish=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pip_args = f"--no-index --find-links http://127.0.0.1:{server.server_port}/links --trusted-host 127.0.0.1"
    log = env.tmp / "http.log"
    try:
        start = time.monotonic()
        proc = env.start(log=log, BOOTSTRAP_PIP_ARGS=pip_args, **_http_env(port, health))
        wait_for(lambda: (_get(port) or (0,))[0] == 204, 10, f"/ping 204 on port {port}")
        first_answer = time.monotonic() - start
        assert first_answer < 2.0, f"/ping answered only {first_answer:.2f} s after the start"
        assert _get(health)[0] == 204  # PORT_HEALTH too
        assert server.download_started.wait(60), log.read_text()  # ...while the install is under way
        assert _get(port)[0] == 204
        status, headers, body = _get(port, "/v1/audio/speech")
        assert status == 503 and headers["Retry-After"] == "30"
        assert json.loads(body)["error"]["code"] == "model_loading"
        server.release.set()  # the install finishes; handler.py binds the same ports
        rc, out = finish(proc, log)
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
    assert rc == 0, out
    assert f"/ping answers 204 (initializing) on port {port}, {health} until handler.py starts" in out
    assert "built and published" in out
    assert handler_report(out)["bound"] == [port, health]
    assert _get(port) is None and _get(health) is None  # nothing left behind


def test_http_mode_answers_ping_while_waiting_for_another_workers_install(env: Env) -> None:
    (env.app / "handler.py").write_text(HTTP_HANDLER)
    port = _free_port()
    env.venvs.mkdir(parents=True)
    log = env.tmp / "wait.log"
    with open(env.venvs / ".install.lock", "a") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)  # another worker installing
        proc = env.start(log=log, **_http_env(port, port))
        wait_for(lambda: "waiting for the install lock" in log.read_text(), 30, "the lock wait")
        wait_for(lambda: (_get(port) or (0,))[0] == 204, 10, "/ping 204 during the wait")
        fcntl.flock(holder, fcntl.LOCK_UN)
    rc, out = finish(proc, log)
    assert rc == 0, out
    assert f"on port {port} until" in out  # one port: PORT_HEALTH is PORT
    assert "reused (built by another worker while this one waited)" not in out  # it installed after the wait
    assert handler_report(out)["bound"] == [port]


def test_the_responder_stops_when_bootstrap_fails_or_is_killed(env: Env) -> None:
    port = _free_port()
    env.pin("9.9")  # not in the wheelhouse: pip fails
    failed = env.run(**_http_env(port, port))
    assert failed.returncode == 1 and "pip install failed" in failed.stdout
    assert "/ping answers 204" in failed.stdout
    assert _get(port) is None

    log = env.tmp / "killed.log"
    with open(env.venvs / ".install.lock", "a") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        proc = env.start(log=log, **_http_env(port, port))
        try:
            wait_for(lambda: (_get(port) or (0,))[0] == 204, 30, "/ping 204")
            os.kill(proc.pid, signal.SIGKILL)  # bootstrap.sh alone dies; its responder notices
            finish(proc, log)
            wait_for(lambda: _get(port) is None, 10, "the responder to stop answering")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of its process group


def test_queue_mode_starts_no_responder(env: Env) -> None:
    port = _free_port()
    env.venvs.mkdir(parents=True)
    log = env.tmp / "queue.log"
    with open(env.venvs / ".install.lock", "a") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        proc = env.start(log=log, PORT=str(port))  # WORKER_MODE unset: queue
        wait_for(lambda: "waiting for the install lock" in log.read_text(), 30, "the lock wait")
        assert _get(port) is None
        fcntl.flock(holder, fcntl.LOCK_UN)
    rc, out = finish(proc, log)
    assert rc == 0, out
    assert "/ping" not in out
