"""higgs_worker/bootstrap.py function by function (tests/shipping/test_bootstrap.py runs the whole
entry point through bash), plus the lock's end-to-end cases: a stale lock is refused, a file
that does not match the lock's hash is never installed, and the lock is part of the key."""

from __future__ import annotations

import fcntl
import hashlib
import http.client
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from higgs_worker import bootstrap
from tests.shipping.test_bootstrap import DIST, Env

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


def settings_of(env: Env, **extra: str) -> bootstrap.Settings:
    return bootstrap.read_settings(env.environ(**extra), ROOT)


# --------------------------------------------------------------------------- pure functions
def test_redact_hides_credentials_in_every_url_and_nothing_else() -> None:
    text = "https://user:s3cr3t@host/whl --x http://tok@other:8080/p https://plain.example/a@b"
    assert bootstrap.redact(text) == "https://***@host/whl --x http://***@other:8080/p https://plain.example/a@b"


@pytest.mark.parametrize(
    ("init", "requested", "wait", "capped"),
    [
        (420, None, 360, False),  # RunPod's default: 60 s below it
        (1200, "", 1140, False),
        (63, None, 5, False),  # the floor
        (1200, "30", 30, False),
        (63, "1800", 5, True),
        (420, "361", 360, True),
    ],
)
def test_lock_timeout_ends_before_runpod_init_timeout(init: int, requested, wait: int, capped: bool) -> None:
    got, warning = bootstrap.lock_timeout(init, requested)
    assert got == wait
    assert (warning is not None) == capped
    if capped:
        assert f"BOOTSTRAP_LOCK_TIMEOUT={requested}s outlives RUNPOD_INIT_TIMEOUT={init}s" in warning


def test_settings_refuse_non_numbers_with_the_variables_name(env: Env) -> None:
    for name, value in [
        ("BOOTSTRAP_LOCK_TIMEOUT", "soon"),
        ("RUNPOD_INIT_TIMEOUT", "7m"),
        ("BOOTSTRAP_MIN_FREE_GB", "-1"),
    ]:
        with pytest.raises(bootstrap.BootstrapError, match=f"{name} must be a whole number"):
            settings_of(env, **{name: value})


def test_settings_defaults_and_the_lock_beside_the_requirements(env: Env) -> None:
    environ = {"BOOTSTRAP_APP_DIR": str(env.app)}
    settings = bootstrap.read_settings(environ, ROOT)
    assert settings.requirements == env.app / "requirements-runtime.txt"
    assert settings.lock_file == env.app / "requirements-runtime.lock"
    assert settings.volume_dir == Path("/runpod-volume")
    assert settings.local_dir == Path("/tmp/higgs-worker/venvs")
    assert settings.mountinfo == "/proc/self/mountinfo"
    assert (settings.init_timeout, settings.lock_timeout, settings.min_free_gb) == (420, 360, 12)
    assert settings.locked
    assert not bootstrap.read_settings({**environ, "TORCH_INDEX_URL": "https://x/whl"}, ROOT).locked
    assert bootstrap.lock_path_of(Path("/a/reqs")) == Path("/a/reqs.lock")


def test_settings_say_what_is_missing(env: Env) -> None:
    with pytest.raises(bootstrap.BootstrapError, match="BOOTSTRAP_REQUIREMENTS"):
        settings_of(env, BOOTSTRAP_REQUIREMENTS=str(env.tmp / "nope.txt"))
    with pytest.raises(bootstrap.BootstrapError, match="BOOTSTRAP_APP_DIR"):
        settings_of(env, BOOTSTRAP_APP_DIR=str(env.tmp))


def test_check_lock_accepts_only_a_lock_made_from_these_requirements(env: Env) -> None:
    assert bootstrap.check_lock(env.req, env.lock) == env.lock.read_bytes()
    env.req.write_text(f"{DIST}==2.0\n")  # requirements changed, not relocked
    with pytest.raises(bootstrap.BootstrapError, match=r"is stale.*bash scripts/lock.sh"):
        bootstrap.check_lock(env.req, env.lock)
    env.lock.unlink()
    with pytest.raises(bootstrap.BootstrapError, match="cannot be read"):
        bootstrap.check_lock(env.req, env.lock)


def test_the_key_follows_the_lock_the_requirements_and_the_options(env: Env) -> None:
    settings = settings_of(env)
    req, lock = env.req.read_bytes(), env.lock.read_bytes()
    key = bootstrap.environment_key(bootstrap.key_parts(settings, req, lock))
    assert key == bootstrap.environment_key(bootstrap.key_parts(settings, req, lock))  # stable
    assert key.startswith(f"py{sys.version_info[0]}.{sys.version_info[1]}-") and len(key.split("-")[1]) == 16
    others = {
        bootstrap.environment_key(bootstrap.key_parts(settings, req, lock + b"# relocked\n")),
        bootstrap.environment_key(bootstrap.key_parts(settings, req + b"\n", lock)),
        bootstrap.environment_key(bootstrap.key_parts(settings, req, None)),
        bootstrap.environment_key(bootstrap.key_parts(settings_of(env, BOOTSTRAP_PIP_ARGS="--pre"), req, lock)),
        bootstrap.environment_key(bootstrap.key_parts(settings_of(env, TORCH_INDEX_URL="https://x"), req, lock)),
    }
    assert key not in others and len(others) == 5


def test_mountinfo_escape_writes_paths_the_way_the_kernel_does() -> None:
    assert bootstrap.mountinfo_escape("/mnt/a b\tc\\d\ne") == "/mnt/a\\040b\\011c\\134d\\012e"


def test_volume_mounted_reads_field_five_of_the_mount_table(tmp_path: Path) -> None:
    volume = tmp_path / "my volume"
    volume.mkdir()
    table = tmp_path / "mountinfo"
    table.write_text(f"99 22 0:99 / {bootstrap.mountinfo_escape(str(volume))} rw - fuse.mfs v rw\n")
    assert bootstrap.volume_mounted(volume, str(table))
    assert not bootstrap.volume_mounted(tmp_path, str(table))  # a folder above is not the mount
    assert not bootstrap.volume_mounted(tmp_path / "absent", str(table))
    table.write_text(f"99 22 0:99 {volume} /elsewhere rw - fuse.mfs v rw\n")  # field 4 is the root, not the mount
    assert not bootstrap.volume_mounted(volume, str(table))
    # no mount table: a mount point sits on another device than its parent; tmp_path does not
    assert not bootstrap.volume_mounted(volume, "")


def test_responder_ports_only_in_http_mode_and_only_real_ports(capsys) -> None:
    assert bootstrap.responder_ports({}) == []
    assert bootstrap.responder_ports({"WORKER_MODE": "queue", "PORT": "9000"}) == []
    assert bootstrap.responder_ports({"WORKER_MODE": " HTTP "}) == [8000]
    assert bootstrap.responder_ports({"WORKER_MODE": "http", "PORT": "9000"}) == [9000]
    assert bootstrap.responder_ports({"WORKER_MODE": "http", "PORT": "9000", "PORT_HEALTH": "9001"}) == [9000, 9001]
    assert bootstrap.responder_ports({"WORKER_MODE": "http", "PORT": "70000", "PORT_HEALTH": "9001"}) == [9001]
    assert "port '70000' (PORT / PORT_HEALTH) is not a port number" in capsys.readouterr().out


def test_ping_responder_answers_204_then_frees_its_port() -> None:
    responder = bootstrap.PingResponder([0])  # port 0: the kernel picks a free one
    [server] = responder.servers
    port = server.server_address[1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/ping?x=1")
    assert conn.getresponse().status == 204
    conn.close()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("POST", "/v1/audio/speech", body=b"{}")
    response = conn.getresponse()
    assert response.status == 503 and response.getheader("Retry-After") == "30"
    assert json.loads(response.read())["error"]["code"] == "model_loading"
    conn.close()
    responder.stop()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    with pytest.raises(OSError):
        conn.request("GET", "/ping")
        conn.getresponse()


def test_acquire_install_lock_waits_names_the_holder_and_gives_up(tmp_path: Path, capsys) -> None:
    path = tmp_path / ".install.lock"
    with open(path, "a") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        holder.write("worker h1 (pid 7, installing py3.11-abc since 10:00:00Z)\n")
        holder.flush()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        try:
            assert bootstrap.acquire_install_lock(fd, path, 0.6, "py3.11-abc", 420) == "timeout"
            out = capsys.readouterr().out
            assert "waiting for the install lock" in out and "worker h1 (pid 7" in out
            fcntl.flock(holder, fcntl.LOCK_UN)
            assert bootstrap.acquire_install_lock(fd, path, 5, "py3.11-abc", 420) == "acquired"
        finally:
            os.close(fd)


def test_pip_args_install_the_lock_with_hashes_or_the_requirements_with_torch_index(env: Env) -> None:
    locked = bootstrap.pip_install_args(settings_of(env, BOOTSTRAP_PIP_ARGS="--no-index --find-links '/a b'"))
    assert locked[-4:] == ["--require-hashes", "--no-deps", "-r", str(env.lock)]
    assert ["--find-links", "/a b"] == locked[locked.index("--find-links") : locked.index("--find-links") + 2]
    unlocked = bootstrap.pip_install_args(settings_of(env, TORCH_INDEX_URL="https://i/whl/cu126"))
    assert "--require-hashes" not in unlocked and unlocked[-2:] == ["-r", str(env.req)]
    assert unlocked[unlocked.index("--extra-index-url") + 1] == "https://i/whl/cu126"


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        ("OSError: [Errno 28] No space left on device", "is full"),
        ("ERROR: No matching distribution found for x==1", "not available from the configured index"),
        ("ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE.", "does not match the lock"),
        ("Connection reset by peer", "could not be reached"),
        ("something else", "see pip's output above"),
    ],
)
def test_pip_failure_reason(output: str, reason: str, tmp_path: Path) -> None:
    assert reason in bootstrap.pip_failure_reason(output, tmp_path)


def test_repoint_scripts_moves_text_files_to_the_final_path_only(tmp_path: Path) -> None:
    tmp, final = tmp_path / ".tmp-key-host-1", tmp_path / "key"
    (tmp / "bin").mkdir(parents=True)
    (tmp / "pyvenv.cfg").write_text(f"home = /usr/bin\ncommand = python -m venv {tmp}\n")
    (tmp / "bin" / "tool").write_text(f"#!{tmp}/bin/python\nimport tool\n")
    (tmp / "bin" / "blob").write_bytes(b"\0ELF" + str(tmp).encode())  # binary: untouched
    (tmp / "bin" / "python").symlink_to("/usr/bin/python3")
    bootstrap.repoint_scripts(tmp, final)
    assert (tmp / "bin" / "tool").read_text() == f"#!{final}/bin/python\nimport tool\n"
    assert str(final) in (tmp / "pyvenv.cfg").read_text() and str(tmp) not in (tmp / "pyvenv.cfg").read_text()
    assert (tmp / "bin" / "blob").read_bytes() == b"\0ELF" + str(tmp).encode()
    assert os.readlink(tmp / "bin" / "python") == "/usr/bin/python3"


def test_remove_leftovers_removes_only_temporary_folders(tmp_path: Path, capsys) -> None:
    (tmp_path / ".tmp-py3.11-abc-host-12" / "lib").mkdir(parents=True)
    (tmp_path / "py3.11-abc").mkdir()
    (tmp_path / ".install.lock").write_text("")
    bootstrap.remove_leftovers(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".install.lock", "py3.11-abc"]
    assert "removing leftover of an interrupted install" in capsys.readouterr().out


def test_publish_is_one_rename_and_yields_to_an_environment_published_first(tmp_path: Path) -> None:
    tmp, final = tmp_path / ".tmp-a", tmp_path / "key"
    tmp.mkdir()
    (tmp / "marker").write_text("mine")
    assert bootstrap.publish(tmp, final) and (final / "marker").read_text() == "mine" and not tmp.exists()
    # another worker's complete environment is there: this copy is discarded, theirs is kept
    (final / "bin").mkdir()
    (final / "bin" / "python").symlink_to(sys.executable)
    (final / bootstrap.RECORD).write_text("{}")
    other = tmp_path / ".tmp-b"
    other.mkdir()
    assert not bootstrap.publish(other, final)
    assert not other.exists() and (final / "marker").read_text() == "mine"


# --------------------------------------------------------------------------- the lock, end to end
def test_a_stale_lock_is_refused_before_anything_is_installed(env: Env) -> None:
    env.req.write_text(f"{DIST}==2.0\n")  # changed without relocking
    result = env.run("--rp_serve_api")
    assert result.returncode == 1, result.stdout
    assert "[bootstrap] ERROR: the lock" in result.stdout and "is stale" in result.stdout
    assert "bash scripts/lock.sh" in result.stdout
    assert "HANDLER " not in result.stdout and env.published() == []


def test_a_file_that_does_not_match_the_locks_hash_is_never_installed(env: Env) -> None:
    env.pin("1.0", digest=hashlib.sha256(b"another file").hexdigest())
    result = env.run("--rp_serve_api")
    assert result.returncode == 1, result.stdout
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in result.stdout
    assert "does not match the lock's hash" in result.stdout and "Nothing was published" in result.stdout
    assert env.published() == [] and env.leftovers() == []


def test_a_relock_is_a_new_environment_and_the_record_names_the_lock(env: Env) -> None:
    first = env.run()
    assert first.returncode == 0, first.stdout
    [v1] = env.published()
    record = json.loads((v1 / ".bootstrap.json").read_text())
    assert record["lock_sha256"] == hashlib.sha256(env.lock.read_bytes()).hexdigest()
    assert record["lock_file"] == str(env.lock)
    assert "installed with hashes" in first.stdout
    env.lock.write_text(env.lock.read_text() + "# relocked: same pins, another lock\n")
    second = env.run()
    assert second.returncode == 0, second.stdout
    assert "built and published" in second.stdout and len(env.published()) == 2


def test_the_module_imports_only_the_standard_library() -> None:
    """It runs with the image's bare Python, before the runtime (pydantic, torch...) exists."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); before = set(sys.modules); import higgs_worker.bootstrap; "
        "print(sorted({m.split('.')[0] for m in set(sys.modules) - before} - sys.stdlib_module_names))"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code, str(ROOT)], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.replace("'", '"')) == ["higgs_worker"]
