"""The voice library's files under hostile or broken conditions (issue 26, findings 9 and 10):
a ``.voice`` archive whose member inflates, and a folder that cannot be written: full (a
real write failure, the file-size limit RLIMIT_FSIZE of this process lowered while the
upload is stored) or read-only (a real permission check: a child process without the
capabilities that let root write anywhere, so that the test means the same as root)."""

from __future__ import annotations

import io
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tracemalloc
import zipfile

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from higgs_worker.contract.errors import WorkerError
from higgs_worker.http.errors import install_error_handlers
from higgs_worker.http.routers import voices as voices_router
from higgs_worker.http.service import Service
from higgs_worker.io.voices import VoiceLibrary, pack
from tests.conftest import ROOT, wav_bytes

INFLATED = 64 * 2**20  # what the hostile member inflates to


def compressed_voice(method: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("transcript.txt"), b"words")
        info = zipfile.ZipInfo("audio.wav")
        info.compress_type = method
        archive.writestr(info, b"\0" * INFLATED)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return compressed_voice(zipfile.ZIP_BZIP2)


@pytest.mark.parametrize("method", ["bzip2", "deflate"])
def test_a_voice_with_a_compressed_member_is_refused_unread(tmp_path, bomb, method):
    """The probe's bomb: bzip2 inflates a whole member in one call (1 GiB: a 2.08 GB peak),
    whatever the limit; a member in a .voice is never inflated now. The figure: the bytes
    Python allocated while the voice was read (tracemalloc's peak)."""
    data = bomb if method == "bzip2" else compressed_voice(zipfile.ZIP_DEFLATED)
    assert len(data) < INFLATED // 100
    (tmp_path / "bomb.voice").write_bytes(data)
    library = VoiceLibrary(str(tmp_path))
    tracemalloc.start()
    try:
        with pytest.raises(WorkerError) as refused:
            library.read("bomb")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"{method} member inflating to {INFLATED >> 20} MiB ({len(data)} bytes on disk): peak {peak >> 10} KiB")
    assert refused.value.code == "reference_audio" and "compressed member" in refused.value.message
    assert peak < INFLATED // 8


def test_stored_voices_still_read(tmp_path):
    (tmp_path / "plain.voice").write_bytes(pack(wav_bytes(0.5), "Hello."))
    version = VoiceLibrary(str(tmp_path)).read("plain")
    assert version.audio == wav_bytes(0.5) and version.transcript == "Hello."


# -- finding 10: a folder that cannot be written ------------------------------------------------


def mounted(make_worker) -> TestClient:
    app = FastAPI()
    app.state.service = Service(make_worker())
    install_error_handlers(app)
    app.include_router(voices_router.router)
    return TestClient(app)


def upload(client: TestClient, name: str):
    return client.post(
        "/v1/audio/voices",
        data={"name": name, "transcript": "Hello."},
        files={"file": ("clip.wav", wav_bytes(3.0), "audio/wav")},
    )


def test_a_full_voice_folder_is_a_coded_507(make_worker, voices_dir):
    """No file may grow past 64 KiB while the upload is stored (the converted clip is
    144 kB): the write fails as on a full disk (EFBIG here, ENOSPC there; both OSError)."""
    client = mounted(make_worker)
    before = sorted(p.name for p in voices_dir.iterdir())
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead of killing us
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, limits[1]))
    try:
        answer = upload(client, "roomless")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, previous)
    assert answer.status_code == 507, answer.text
    error = answer.json()["error"]
    assert error["code"] == "voice_library_unwritable" and error["type"] == "server_error"
    assert "VOICES_DIR" in error["message"] and "File too large" in error["message"]
    assert sorted(p.name for p in voices_dir.iterdir()) == before  # no partial file left
    assert upload(client, "roomless").status_code == 201  # space again: the same upload works


def without_root_file_rights(command: list[str]) -> list[str]:
    """``command``, run so that file modes bind it: as root, without the capabilities that
    ignore them (``setpriv``, util-linux); as any other user, as it is."""
    if os.geteuid() != 0:
        return command
    assert shutil.which("setpriv"), "running as root needs setpriv (util-linux) to drop root's file rights"
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--", *command]


READ_ONLY_CHILD = r"""
import json, sys
from higgs_worker.http.voice_admin import VoiceAdminError, delete_voice, save_voice
folder, clip = sys.argv[1], open(sys.argv[2], "rb").read()
out = {}
for action, call in (
    ("save", lambda: save_voice(folder, "newcomer", clip, "Hi.", 10**7, 60)),
    ("delete", lambda: delete_voice(folder, "belinda")),
):
    try:
        out[action] = {"result": repr(call())}
    except VoiceAdminError as exc:
        out[action] = {"status": exc.status, "code": exc.code, "message": exc.message}
print(json.dumps(out))
"""


def test_a_read_only_voice_folder_is_a_coded_507(voices_dir, tmp_path):
    """The folder is made read-only (mode 555) and the child runs without the capabilities
    that let root ignore modes (``setpriv``; as any other user, modes apply anyway)."""
    clip = tmp_path / "clip.wav"
    clip.write_bytes(wav_bytes(1.0))
    command = without_root_file_rights([sys.executable, "-c", READ_ONLY_CHILD, str(voices_dir), str(clip)])
    os.chmod(voices_dir, 0o555)
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)}
        )
    finally:
        os.chmod(voices_dir, 0o755)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    for action in ("save", "delete"):
        assert out[action]["status"] == 507 and out[action]["code"] == "voice_library_unwritable", out
        assert "Permission denied" in out[action]["message"], out
    assert (voices_dir / "belinda.wav").exists() and not (voices_dir / "newcomer.voice").exists()


def test_migrate_into_a_read_only_folder_says_why(voices_dir):
    """The queue-mode writer of the library, ``migrate``, as a command: its error is the
    library's coded one, not a traceback (run without root's file rights, as above)."""
    command = without_root_file_rights([sys.executable, "-m", "higgs_worker.io.voices", "migrate", str(voices_dir)])
    os.chmod(voices_dir, 0o555)
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)}
        )
    finally:
        os.chmod(voices_dir, 0o755)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "migrate: storage: the voice library (VOICES_DIR) cannot be written (Permission denied)" in done.stderr
