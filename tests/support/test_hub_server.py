"""The local hub (tests/support/hub_server.py) is faithful enough for huggingface_hub's real code.

Every test drives huggingface_hub 2.4.0's own download code (``snapshot_download``,
``hf_hub_download``, ``HfApi``) against a real HTTP server on 127.0.0.1; nothing of
huggingface_hub is mocked.

How the endpoint is set. huggingface_hub reads HF_ENDPOINT once, when it is imported
(``constants.ENDPOINT`` and ``HUGGINGFACE_CO_URL_TEMPLATE``, huggingface_hub/constants.py:69-70;
``_HUB_ORIGINS``, utils/_http.py:797), so ``monkeypatch.setenv("HF_ENDPOINT", ...)`` inside a test
process that has already imported it changes nothing (test_hf_endpoint_is_read_at_import_time).
In-process tests therefore pass ``endpoint=hub.url`` (snapshot_download, hf_hub_download and HfApi
all take it and thread it through every request); tests that need the worker's real configuration
path (HF_ENDPOINT from the environment) run the client in a subprocess started with
``hub.env(...)``, which sets HF_ENDPOINT, an empty HF_HOME and no token.

Each test also sets ``cache_dir`` and ``local_dir`` under its own tmp_path: snapshot_download keeps
an in-memory tree cache keyed by path, and falls back to the cache folder when the hub fails.

The behaviour of huggingface_hub 2.4.0 that these tests pin down (what the worker builds on):
- a connection that closes mid-body (FIN -> httpx2.RemoteProtocolError) is resumed inside the same
  call, after a 1 s sleep, with ``Range: bytes=N-`` where N counts only whole 10 MiB chunks
  received (file_download.py:459-487, DOWNLOAD_CHUNK_SIZE in constants.py:40): a smaller file
  starts over from byte 0, and after 5 resumes without one complete chunk it raises;
- a connection reset (RST -> httpx2.ReadError) is not retried at all (only ConnectError,
  TimeoutException and RemoteProtocolError are, file_download.py:468);
- 5xx: the repo-info call is not retried (model_info uses a bare get_session().get,
  hf_api.py:3214) and snapshot_download turns it into LocalEntryNotFoundError, or silently
  returns an existing, possibly partial, local_dir (_snapshot_download.py:362-378); the tree
  listing is retried with backoff (1 s, 2 s, ..., utils/_pagination.py:41 via http_backoff); a
  file HEAD is retried with backoff when no local copy exists (file_download.py:1399-1416); a
  file GET is retried only on 408/429 (file_download.py:398), so a 503 on the body raises
  HfHubHTTPError;
- downloads go to a process-unique ``*.incomplete`` file (file_download.py:2004): there is no
  resume across processes and a killed process leaves its partial file behind; two processes
  downloading into one local_dir share a per-file lock (also taken to read the local metadata,
  _local_folder.py:309), but it does not stop a duplicate download: a process that found no file
  before the other took the lock deletes the finished file and downloads it again
  (file_download.py:1503-1504).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
import pytest
from huggingface_hub import HfApi, hf_hub_download, hf_hub_url, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.support.hub_server import HubServer, write_repo

REPO = "acme/tiny-model"
BIG_REPO = "acme/big-model"
WEIGHTS = "model.safetensors"
CHUNK = 10 * 1024 * 1024  # huggingface_hub's DOWNLOAD_CHUNK_SIZE

TINY_FILES = {
    "config.json": json.dumps({"model_type": "higgs_audio_v2", "hidden_size": 8}).encode(),
    WEIGHTS: random.Random(1).randbytes(2 * 1024 * 1024),
    "tokenizer.json": json.dumps({"version": "1.0", "model": {"vocab": {"a": 0, "b": 1}}}).encode(),
}
BIG_FILES = {
    "config.json": b'{"model_type": "big"}',
    WEIGHTS: random.Random(2).randbytes(12 * 1024 * 1024),
}

# A client that only knows HF_ENDPOINT from its environment, like the worker.
CLIENT = (
    "import sys\n"
    "from huggingface_hub import snapshot_download\n"
    "print(snapshot_download(sys.argv[1], revision=sys.argv[2], local_dir=sys.argv[3]), flush=True)\n"
)


@pytest.fixture(scope="module")
def hub_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hub")
    write_repo(root, REPO, TINY_FILES)
    write_repo(root, BIG_REPO, BIG_FILES)
    return root


@pytest.fixture
def hub(hub_root: Path):
    with HubServer(hub_root) as server:
        yield server


def download(hub: HubServer, tmp_path: Path, repo: str = REPO, *, revision: str = "main", token=False, out="out"):
    return snapshot_download(
        repo,
        revision=revision,
        local_dir=tmp_path / out,
        cache_dir=tmp_path / "cache",
        endpoint=hub.url,
        token=token,
    )


def assert_same_files(local_dir: str | Path, expected: dict[str, bytes]) -> None:
    for name, content in expected.items():
        assert Path(local_dir, name).read_bytes() == content, name


def wait_for(condition, what: str, timeout: float = 20.0, procs=()) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        for proc in procs:
            if proc.poll() is not None:
                _, err = proc.communicate()
                raise AssertionError(f"client exited ({proc.returncode}) while waiting for {what}: {err[-2000:]}")
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def start_client(hub: HubServer, tmp_path: Path, local_dir: Path, repo: str = REPO, revision: str = "main"):
    return subprocess.Popen(
        [sys.executable, "-c", CLIENT, repo, revision, str(local_dir)],
        env=hub.env(tmp_path / "hf_home"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def incomplete_files(local_dir: Path) -> list[Path]:
    return sorted(local_dir.rglob("*.incomplete"))


# ------------------------------------------------------------------------------------------
# Faithful answers
# ------------------------------------------------------------------------------------------


def test_snapshot_download_main_gets_identical_files_through_the_hub_routes(hub: HubServer, tmp_path: Path) -> None:
    path = download(hub, tmp_path)

    assert Path(path) == (tmp_path / "out").resolve()
    assert_same_files(path, TINY_FILES)
    sha = hub.repo_sha(REPO)
    assert len(sha) == 40 and int(sha, 16) >= 0
    # huggingface_hub records the commit it downloaded in local_dir/.cache/huggingface.
    metadata = (tmp_path / "out/.cache/huggingface/download/config.json.metadata").read_text().splitlines()
    assert metadata[0] == sha

    # The calls huggingface_hub made: repo info at main, the tree at the resolved sha, then a
    # HEAD and one GET per file; the LFS file came from the CDN origin, without the token.
    api = hub.requests(kind="api")
    assert [r.path for r in api] == [f"/api/models/{REPO}/revision/main", f"/api/models/{REPO}/tree/{sha}"]
    assert "recursive=true" in api[1].query
    heads = hub.requests(method="HEAD", kind="resolve")
    assert sorted(r.filename for r in heads) == sorted(TINY_FILES)
    assert all(f"/resolve/{sha}/" in r.path for r in heads)
    for name in TINY_FILES:
        (get,) = hub.downloads(name)
        assert get.complete and get.range is None and get.status == 200
    (weights,) = hub.downloads(WEIGHTS)
    assert weights.kind == "cdn" and weights.host.startswith("localhost:")
    assert hub.downloads("config.json")[0].kind == "resolve"
    assert all(r.status in (200, 302) for r in hub.log)


def test_hf_hub_download_into_the_cache_uses_hub_etags(hub: HubServer, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    weights = hf_hub_download(REPO, WEIGHTS, cache_dir=cache, endpoint=hub.url, token=False)
    config = hf_hub_download(REPO, "config.json", cache_dir=cache, endpoint=hub.url, token=False)

    assert Path(weights).read_bytes() == TINY_FILES[WEIGHTS]
    assert Path(config).read_bytes() == TINY_FILES["config.json"]
    storage = cache / "models--acme--tiny-model"
    assert (storage / "refs/main").read_text() == hub.repo_sha(REPO)
    blobs = {p.name for p in (storage / "blobs").iterdir()}
    # Blob names are the ETags: sha256 for an LFS file (X-Linked-Etag), git blob sha1 otherwise.
    assert hashlib.sha256(TINY_FILES[WEIGHTS]).hexdigest() in blobs
    git_sha1 = hashlib.sha1(b"blob %d\0" % len(TINY_FILES["config.json"]) + TINY_FILES["config.json"]).hexdigest()
    assert git_sha1 in blobs


def test_wire_format_of_resolve(hub: HubServer) -> None:
    sha = hub.repo_sha(REPO)
    config = TINY_FILES["config.json"]
    conn = http.client.HTTPConnection("127.0.0.1", hub.port, timeout=10)

    def ask(method: str, path: str, **headers: str) -> tuple[http.client.HTTPResponse, bytes]:
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        return resp, resp.read()

    try:
        resp, _ = ask("HEAD", f"/{REPO}/resolve/main/config.json")
        assert resp.status == 200
        assert resp.getheader("X-Repo-Commit") == sha
        assert resp.getheader("Content-Length") == str(len(config))
        assert resp.getheader("Accept-Ranges") == "bytes"
        git_blob_sha1 = hashlib.sha1(b"blob %d\0" % len(config) + config).hexdigest()
        assert resp.getheader("ETag") == f'"{git_blob_sha1}"'

        resp, body = ask("GET", f"/{REPO}/resolve/{sha}/config.json", Range="bytes=5-")
        assert resp.status == 206 and body == config[5:]
        assert resp.getheader("Content-Range") == f"bytes 5-{len(config) - 1}/{len(config)}"

        resp, _ = ask("GET", f"/{REPO}/resolve/main/config.json", Range=f"bytes={len(config) + 10}-")
        assert resp.status == 416 and resp.getheader("Content-Range") == f"bytes */{len(config)}"

        resp, _ = ask("HEAD", f"/{REPO}/resolve/main/{WEIGHTS}")
        assert resp.status == 302
        assert resp.getheader("X-Repo-Commit") == sha
        assert resp.getheader("X-Linked-Size") == str(len(TINY_FILES[WEIGHTS]))
        assert resp.getheader("X-Linked-Etag") == f'"{hashlib.sha256(TINY_FILES[WEIGHTS]).hexdigest()}"'
        location = urlsplit(resp.getheader("Location"))
        assert (location.hostname, location.port) == ("localhost", hub.port)

        resp, _ = ask("HEAD", f"/{REPO}/resolve/main/missing.bin")
        assert (resp.status, resp.getheader("X-Error-Code")) == (404, "EntryNotFound")
        resp, _ = ask("GET", f"/{REPO}/resolve/{'0' * 40}/config.json")
        assert (resp.status, resp.getheader("X-Error-Code")) == (404, "RevisionNotFound")
        resp, _ = ask("GET", "/api/models/acme/nope")
        assert (resp.status, resp.getheader("X-Error-Code")) == (404, "RepoNotFound")
    finally:
        conn.close()


def test_hf_endpoint_is_read_at_import_time(hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    # Too late for this process: huggingface_hub is already imported.
    assert not hf_hub_url(REPO, "config.json").startswith(hub.url)
    assert hf_hub_url(REPO, "config.json", endpoint=hub.url) == f"{hub.url}/{REPO}/resolve/main/config.json"
    # A fresh interpreter started with the variable uses it.
    code = "from huggingface_hub import hf_hub_url, constants; print(hf_hub_url('a/b', 'c'), constants.ENDPOINT)"
    out = subprocess.run(
        [sys.executable, "-c", code], env=hub.env(tmp_path / "hf_home"), cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [f"{hub.url}/a/b/resolve/main/c", hub.url]


def test_revision_pinned_by_sha_skips_the_repo_info_call(hub: HubServer, tmp_path: Path) -> None:
    sha = hub.repo_sha(REPO)
    path = download(hub, tmp_path, revision=sha)

    assert_same_files(path, TINY_FILES)
    assert hub.requests(path_contains="/revision/") == []
    assert [r.path for r in hub.requests(kind="api")] == [f"/api/models/{REPO}/tree/{sha}"]
    api = HfApi(endpoint=hub.url, token=False)
    assert api.model_info(REPO).sha == sha
    assert api.model_info(REPO, revision=sha).sha == sha
    info = api.model_info(REPO, files_metadata=True)
    sizes = {s.rfilename: s.size for s in info.siblings}
    assert sizes == {name: len(content) for name, content in TINY_FILES.items()}
    lfs = {s.rfilename: s.lfs for s in info.siblings}
    assert lfs["config.json"] is None and lfs[WEIGHTS].sha256 == hashlib.sha256(TINY_FILES[WEIGHTS]).hexdigest()


def test_unknown_revision_repo_and_file_raise_the_hub_errors(hub: HubServer, tmp_path: Path) -> None:
    with pytest.raises(RevisionNotFoundError):
        download(hub, tmp_path, revision="v9.9")
    with pytest.raises(RevisionNotFoundError):
        download(hub, tmp_path, revision="f" * 40)
    with pytest.raises(RepositoryNotFoundError):
        download(hub, tmp_path, repo="acme/does-not-exist")
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(REPO, "nope.txt", local_dir=tmp_path / "one", endpoint=hub.url, token=False)


def test_editing_a_repo_gives_it_a_new_sha(tmp_path: Path) -> None:
    root = tmp_path / "hub"
    write_repo(root, REPO, {"config.json": b"{}", "a.txt": b"one"})
    with HubServer(root) as hub:
        old = hub.repo_sha(REPO)
        assert hub.repo_sha(REPO) == old  # deterministic
        write_repo(root, REPO, {"a.txt": b"two"})
        new = hub.repo_sha(REPO)
        assert new != old
        path = download(hub, tmp_path, revision=new)
        assert Path(path, "a.txt").read_bytes() == b"two"
        with pytest.raises(RevisionNotFoundError):
            download(hub, tmp_path, revision=old, out="old")
    # Same content elsewhere -> same sha.
    twin = tmp_path / "twin"
    write_repo(twin, REPO, {"config.json": b"{}", "a.txt": b"two"})
    assert HubServer(twin).repo_sha(REPO) == new


def test_tree_listing_is_paginated_with_link_headers(hub_root: Path, tmp_path: Path) -> None:
    with HubServer(hub_root, tree_page_size=2) as hub:
        path = download(hub, tmp_path)
        assert_same_files(path, TINY_FILES)
        trees = hub.requests(path_contains="/tree/")
        assert len(trees) == 2
        assert "cursor=2" in trees[1].query


# ------------------------------------------------------------------------------------------
# Tokens
# ------------------------------------------------------------------------------------------


def test_gated_repo_needs_the_token(hub: HubServer, tmp_path: Path) -> None:
    hub.require_token = "hf_secret"
    with pytest.raises(GatedRepoError) as missing:
        download(hub, tmp_path)
    assert missing.value.response.status_code == 401

    with pytest.raises(HfHubHTTPError) as wrong:
        download(hub, tmp_path, token="hf_wrong")
    assert wrong.value.response.status_code == 401
    assert not isinstance(wrong.value, RepositoryNotFoundError)  # GatedRepoError subclasses it

    hub.clear_log()
    path = download(hub, tmp_path, token="hf_secret")
    assert_same_files(path, TINY_FILES)
    assert all(r.has_auth for r in hub.requests(kind="api") + hub.requests(kind="resolve"))
    # Like with the real CDN, huggingface_hub does not send the token off the hub's origin.
    (weights,) = hub.downloads(WEIGHTS)
    assert weights.kind == "cdn" and not weights.has_auth


def test_private_repo_without_token_looks_missing(hub: HubServer, tmp_path: Path) -> None:
    hub.set_auth("hf_secret", mode="private")
    with pytest.raises(RepositoryNotFoundError) as err:
        hf_hub_download(REPO, "config.json", local_dir=tmp_path / "x", endpoint=hub.url, token=False)
    assert not isinstance(err.value, GatedRepoError)
    assert err.value.response.status_code == 401


# ------------------------------------------------------------------------------------------
# Broken connections
# ------------------------------------------------------------------------------------------


def test_connection_closed_mid_file_is_resumed_with_a_range(hub: HubServer, tmp_path: Path) -> None:
    size = len(BIG_FILES[WEIGHTS])
    hub.drop_after_bytes(WEIGHTS, 11 * 1024 * 1024)
    path = download(hub, tmp_path, BIG_REPO)

    assert_same_files(path, BIG_FILES)
    first, second = hub.downloads(WEIGHTS)
    assert first.fault == "drop" and not first.complete and first.bytes_sent == 11 * 1024 * 1024
    assert first.content_length == size  # the full length was announced
    # Only whole 10 MiB chunks count as received: the resume starts at 10 MiB, not at 11.
    assert second.range == f"bytes={CHUNK}-"
    assert second.status == 206 and second.complete and second.bytes_sent == size - CHUNK
    assert incomplete_files(tmp_path / "out") == []


def test_connection_closed_mid_small_file_starts_over(hub: HubServer, tmp_path: Path) -> None:
    hub.drop_after_bytes(WEIGHTS, 1_000_000)
    path = download(hub, tmp_path)

    assert_same_files(path, TINY_FILES)
    first, second = hub.downloads(WEIGHTS)
    assert first.bytes_sent == 1_000_000 and not first.complete
    assert second.range is None and second.status == 200 and second.complete


def test_connection_closed_again_and_again_gives_up(hub: HubServer, tmp_path: Path) -> None:
    hub.drop_after_bytes(WEIGHTS, 1_000_000, times=10)
    with pytest.raises(httpx2.RemoteProtocolError):
        hf_hub_download(REPO, WEIGHTS, local_dir=tmp_path / "x", endpoint=hub.url, token=False)
    assert len(hub.downloads(WEIGHTS)) == 6  # the first try and 5 resumes, 1 s apart
    assert not (tmp_path / "x" / WEIGHTS).exists()
    assert incomplete_files(tmp_path / "x") == []


def test_connection_reset_is_not_retried(hub: HubServer, tmp_path: Path) -> None:
    hub.drop_after_bytes(WEIGHTS, 1_000_000, mode="reset")
    with pytest.raises(httpx2.ReadError):
        download(hub, tmp_path)
    assert len(hub.downloads(WEIGHTS)) == 1
    assert not (tmp_path / "out" / WEIGHTS).exists()
    assert incomplete_files(tmp_path / "out") == []


# ------------------------------------------------------------------------------------------
# 5xx
# ------------------------------------------------------------------------------------------


def test_503_on_repo_info_is_not_retried(hub: HubServer, tmp_path: Path) -> None:
    hub.fail_next(1, 503, only="api")
    with pytest.raises(LocalEntryNotFoundError) as err:
        download(hub, tmp_path)
    assert isinstance(err.value.__cause__, HfHubHTTPError)
    assert err.value.__cause__.response.status_code == 503
    assert [(r.path, r.status) for r in hub.log] == [(f"/api/models/{REPO}/revision/main", 503)]


def test_503_on_repo_info_returns_a_partial_local_dir_silently(hub: HubServer, tmp_path: Path) -> None:
    partial = tmp_path / "out"
    partial.mkdir()
    (partial / "config.json").write_bytes(TINY_FILES["config.json"])
    hub.fail_next(1, 503)

    path = download(hub, tmp_path)  # no error: the caller must check completeness itself

    assert Path(path) == partial.resolve()
    assert sorted(p.name for p in partial.iterdir()) == ["config.json"]
    assert len(hub.log) == 1


def test_503_on_tree_listing_is_retried(hub: HubServer, tmp_path: Path) -> None:
    hub.fail_next(1, 503, only="api")
    path = download(hub, tmp_path, revision=hub.repo_sha(REPO))
    assert_same_files(path, TINY_FILES)
    trees = hub.requests(path_contains="/tree/")
    assert [r.status for r in trees] == [503, 200]
    assert trees[1].started - trees[0].ended >= 0.9  # http_backoff's first wait is 1 s


def test_503_on_file_head_is_retried(hub: HubServer, tmp_path: Path) -> None:
    hub.fail_next(2, 503, only="head", filename=WEIGHTS)
    path = hf_hub_download(REPO, WEIGHTS, local_dir=tmp_path / "x", endpoint=hub.url, token=False)
    assert Path(path).read_bytes() == TINY_FILES[WEIGHTS]
    assert [r.status for r in hub.requests(method="HEAD")] == [503, 503, 302]


def test_503_on_file_get_is_not_retried(hub: HubServer, tmp_path: Path) -> None:
    hub.fail_next(1, 503, only="file_get")
    with pytest.raises(HfHubHTTPError) as err:
        hf_hub_download(REPO, "config.json", local_dir=tmp_path / "x", endpoint=hub.url, token=False)
    assert err.value.response.status_code == 503
    assert [r.status for r in hub.requests(method="GET")] == [503]
    assert not (tmp_path / "x" / "config.json").exists()

    path = hf_hub_download(REPO, "config.json", local_dir=tmp_path / "x", endpoint=hub.url, token=False)
    assert Path(path).read_bytes() == TINY_FILES["config.json"]


# ------------------------------------------------------------------------------------------
# Several processes (the worker's situation: HF_ENDPOINT from the environment)
# ------------------------------------------------------------------------------------------


def test_killed_download_is_not_resumed_by_the_next_process(hub: HubServer, tmp_path: Path) -> None:
    local_dir = tmp_path / "volume"
    size = len(BIG_FILES[WEIGHTS])
    hub.delay_seconds(WEIGHTS, 60, times=1, after_bytes=11 * 1024 * 1024)
    proc = start_client(hub, tmp_path, local_dir, BIG_REPO)
    try:
        wait_for(
            lambda: (
                (local_dir / "config.json").exists()
                and any(p.stat().st_size >= CHUNK for p in incomplete_files(local_dir))
            ),
            "config.json and 10 MiB of the weights on disk",
            procs=[proc],
        )
        (stalled,) = hub.downloads(WEIGHTS)
        assert stalled.status == 200 and stalled.ended == 0.0  # still in flight
    finally:
        proc.kill()
        proc.communicate()
    assert not (local_dir / WEIGHTS).exists()
    # The partial file's name holds the weights' ETag (their sha256) and a part unique to the process.
    weights_sha256 = hashlib.sha256(BIG_FILES[WEIGHTS]).hexdigest()
    (leftover,) = [p for p in incomplete_files(local_dir) if f".{weights_sha256}." in p.name]
    assert leftover.stat().st_size == CHUNK

    hub.release_delays()
    proc = start_client(hub, tmp_path, local_dir, BIG_REPO)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert Path(out.strip()) == local_dir.resolve()
    assert_same_files(local_dir, BIG_FILES)
    first, second = hub.downloads(WEIGHTS)
    assert second.range is None and second.status == 200 and second.bytes_sent == size
    assert leftover.exists()  # nobody cleans up the killed process's partial file


def test_second_process_waiting_on_the_file_lock_does_not_download_again(hub: HubServer, tmp_path: Path) -> None:
    local_dir = tmp_path / "volume"
    hub.delay_seconds(WEIGHTS, 60)
    first = start_client(hub, tmp_path, local_dir)
    procs = [first]
    try:
        wait_for(lambda: len(hub.downloads(WEIGHTS)) == 1, "the first process downloading the weights", procs=procs)
        # The first process holds the file's lock while its download is stalled; the second one
        # blocks on it (taken even to read the local metadata) before its HEAD of the weights.
        procs.append(start_client(hub, tmp_path, local_dir))
        wait_for(lambda: len(hub.requests(path_contains="/revision/", status=200)) == 2, "2nd start", procs=procs)
        time.sleep(0.5)
        hub.release_delays()
        results = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in results]
    assert_same_files(local_dir, TINY_FILES)
    (download_,) = hub.downloads(WEIGHTS)
    assert download_.complete


def test_two_processes_past_the_head_both_download(hub: HubServer, tmp_path: Path) -> None:
    local_dir = tmp_path / "volume"
    # Hold both HEADs of the weights until both processes have sent theirs (neither holds the
    # file's lock yet), then hold the first GET while the other process finds no local file.
    hub.delay_seconds(WEIGHTS, 60, method="HEAD")
    hub.delay_seconds(WEIGHTS, 60, times=1)
    procs = [start_client(hub, tmp_path, local_dir) for _ in range(2)]
    try:
        wait_for(
            lambda: len([r for r in hub.requests(method="HEAD", filename=WEIGHTS) if r.status == 0]) == 2,
            "both HEADs of the weights in flight",
            procs=procs,
        )
        hub.release_delays(WEIGHTS, method="HEAD")
        wait_for(lambda: len(hub.downloads(WEIGHTS)) == 1, "one process downloading the weights", procs=procs)
        time.sleep(0.5)  # the other one has found no file and waits on the lock
        hub.release_delays()
        results = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in results]
    assert_same_files(local_dir, TINY_FILES)
    # huggingface_hub does not prevent the duplicate: the second process deletes the first one's
    # finished file and downloads it again. The worker needs its own cross-process lock.
    downloads = hub.downloads(WEIGHTS)
    assert len(downloads) == 2 and all(d.complete for d in downloads)
