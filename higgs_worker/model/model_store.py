"""Make sure a model folder is complete on the volume, downloading it once if needed.

Order of preference for one ``ModelSource`` (repo, revision, path):

1. ``path`` with our completion marker for the same repo and requested revision;
2. RunPod's cached-model layout (``<hf cache>/models--ORG--NAME/snapshots/<sha>``);
3. ``path`` filled by hand (weights present, no download in progress);
4. a download with huggingface_hub into ``path`` under a cross-process file lock.
   huggingface_hub resumes partial files; the marker (repo, revision, commit) is
   written last, atomically, so a half-written folder is never taken as complete.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from ..contract.config import ModelSource
from ..contract.errors import MODEL_UNAVAILABLE, WorkerError

log = logging.getLogger(__name__)

MARKER = ".higgs-worker-complete.json"
DOWNLOAD_PATTERNS = ["*.json", "*.safetensors", "*.jinja", "*.txt", "*.model", "*.tiktoken"]
LOCK_TIMEOUT_SECONDS = 3 * 3600


@dataclass(frozen=True)
class LocalModel:
    path: str
    repo: str
    revision: str  # the commit actually on disk ("local" for a folder filled by hand)
    downloaded: bool  # True when this call downloaded it


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _weights_complete(folder: Path) -> bool:
    if not (folder / "config.json").is_file():
        return False
    index = _read_json(folder / "model.safetensors.index.json")
    if index and isinstance(index.get("weight_map"), dict):
        return all((folder / name).is_file() for name in set(index["weight_map"].values()))
    return any(folder.glob("*.safetensors"))


def _marker_matches(folder: Path, source: ModelSource) -> dict | None:
    marker = _read_json(folder / MARKER)
    if not marker or marker.get("repo") != source.repo:
        return None
    if source.revision not in (marker.get("requested_revision"), marker.get("commit")):
        return None
    return marker if _weights_complete(folder) else None


def runpod_cache_snapshot(cache_dir: str, source: ModelSource) -> tuple[Path, str] | None:
    """RunPod's model cache uses the hub cache layout; return (snapshot folder, commit)."""
    root = Path(cache_dir) / ("models--" + source.repo.replace("/", "--"))
    if not root.is_dir():
        return None
    commit = source.revision
    ref = root / "refs" / source.revision
    if ref.is_file():
        commit = ref.read_text().strip()
    snapshot = root / "snapshots" / commit
    if snapshot.is_dir() and _weights_complete(snapshot):
        return snapshot, commit
    return None


def _hand_filled(folder: Path) -> bool:
    in_progress = folder / ".cache" / "huggingface"
    return _weights_complete(folder) and not in_progress.exists() and not (folder / MARKER).exists()


def _download_error(source: ModelSource, variable: str, exc: BaseException) -> WorkerError:
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{variable}_REPO={source.repo!r} at {variable}_REVISION={source.revision!r}"
    if isinstance(exc, GatedRepoError) or (
        isinstance(exc, HfHubHTTPError) and getattr(exc.response, "status_code", None) in (401, 403)
    ):
        reason = "the hub refused access; accept the model's terms on the hub and set HF_TOKEN"
    elif isinstance(exc, RevisionNotFoundError):
        reason = "that revision does not exist; fix the revision variable"
    elif isinstance(exc, RepositoryNotFoundError):
        reason = "that repository does not exist (or is private: set HF_TOKEN)"
    elif isinstance(exc, OSError) and getattr(exc, "errno", None) == 28:
        reason = "the volume is full; free space or use a larger network volume"
    elif isinstance(exc, OSError) and getattr(exc, "errno", None) in (13, 30):  # EACCES, EROFS
        reason = f"cannot write to {source.path} (read-only or no permission)"
    else:
        reason = f"download failed ({type(exc).__name__}); the hub may be unreachable, try again"
    return WorkerError(MODEL_UNAVAILABLE, f"{where}: {reason}")


def _write_marker(folder: Path, source: ModelSource, commit: str) -> None:
    tmp = folder / f"{MARKER}.tmp-{os.getpid()}"
    tmp.write_text(
        json.dumps(
            {
                "repo": source.repo,
                "requested_revision": source.revision,
                "commit": commit,
                "completed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        )
    )
    os.replace(tmp, folder / MARKER)


def _snapshot_download(source: ModelSource, folder: Path, attempts: int, backoff: float) -> str:
    from huggingface_hub import HfApi, snapshot_download

    endpoint = os.environ.get("HF_ENDPOINT") or None
    token = os.environ.get("HF_TOKEN") or None
    last: BaseException | None = None
    for attempt in range(1, attempts + 1):
        try:
            info = HfApi(endpoint=endpoint, token=token).model_info(source.repo, revision=source.revision)
            commit = info.sha or source.revision
            snapshot_download(
                source.repo,
                revision=commit,
                local_dir=str(folder),
                allow_patterns=DOWNLOAD_PATTERNS,
                token=token,
                endpoint=endpoint,
                max_workers=4,
            )
            return commit
        except Exception as exc:  # classified below; retried only when it may pass
            last = exc
            if not _retryable(exc) or attempt == attempts:
                break
            wait = min(30.0, backoff * 2 ** (attempt - 1))
            log.warning(
                "download of %s failed (%s); retry %d/%d in %.0fs",
                source.repo,
                type(exc).__name__,
                attempt,
                attempts - 1,
                wait,
            )
            time.sleep(wait)
    assert last is not None
    raise last


def _retryable(exc: BaseException) -> bool:
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    if isinstance(exc, (RepositoryNotFoundError, RevisionNotFoundError, PermissionError)):
        return False
    if isinstance(exc, OSError) and getattr(exc, "errno", None) in (13, 28, 30):
        return False
    if isinstance(exc, HfHubHTTPError):
        status = getattr(exc.response, "status_code", None)
        return status is None or status >= 500 or status == 429
    return True


def find_local(source: ModelSource, hf_cache_dir: str) -> LocalModel | None:
    """The complete local folder for ``source`` if there is one (no download, no hub)."""
    folder = Path(source.path)
    marker = _marker_matches(folder, source)
    if marker:
        return LocalModel(str(folder), source.repo, marker["commit"], downloaded=False)
    cached = runpod_cache_snapshot(hf_cache_dir, source)
    if cached:
        return LocalModel(str(cached[0]), source.repo, cached[1], downloaded=False)
    if _hand_filled(folder):
        log.info("using %s as filled by hand (no download marker)", folder)
        return LocalModel(str(folder), source.repo, "local", downloaded=False)
    return None


def ensure_local(
    source: ModelSource,
    variable: str,
    hf_cache_dir: str,
    attempts: int = 4,
    backoff: float = 2.0,
    lock_timeout: float = LOCK_TIMEOUT_SECONDS,
) -> LocalModel:
    """Return a complete local folder for ``source``; download it if needed.

    ``variable`` is MODEL or TOKENIZER: error messages name the variable to change.
    """
    found = find_local(source, hf_cache_dir)
    if found:
        return found
    folder = Path(source.path)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(folder) + ".lock", timeout=lock_timeout)
        with lock:
            marker = _marker_matches(folder, source)  # another worker may have finished
            if marker:
                return LocalModel(str(folder), source.repo, marker["commit"], downloaded=False)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / MARKER).unlink(missing_ok=True)
            started = time.perf_counter()
            log.info("downloading %s@%s to %s", source.repo, source.revision, folder)
            commit = _snapshot_download(source, folder, attempts, backoff)
            if not _weights_complete(folder):
                raise WorkerError(
                    MODEL_UNAVAILABLE,
                    f"{variable}_REPO={source.repo!r} has no safetensors weights; "
                    "is it a transformers-format Higgs Audio v2 repo?",
                )
            _write_marker(folder, source, commit)
            log.info("downloaded %s@%s in %.1fs", source.repo, commit[:12], time.perf_counter() - started)
            return LocalModel(str(folder), source.repo, commit, downloaded=True)
    except WorkerError:
        raise
    except Timeout:
        raise WorkerError(
            MODEL_UNAVAILABLE,
            f"another worker has held the download lock of {source.path} too long; try again",
        ) from None
    except Exception as exc:
        log.error("download of %s failed: %s", source.repo, type(exc).__name__)
        raise _download_error(source, variable, exc) from None


def check_format(local: LocalModel, expected_type: str, variable: str) -> None:
    """Refuse checkpoints in the legacy boson_multimodal format with a clear message."""
    config = _read_json(Path(local.path) / "config.json") or {}
    model_type = config.get("model_type")
    if model_type != expected_type:
        raise WorkerError(
            MODEL_UNAVAILABLE,
            f"{variable}_REPO={local.repo!r} is not in the transformers Higgs Audio v2 format "
            f"(config model_type is {model_type!r}, expected {expected_type!r}); it looks like the "
            f"legacy boson_multimodal checkpoint. Set {variable}_REPO (and {variable}_REVISION) "
            "to a transformers-format repo.",
        )
