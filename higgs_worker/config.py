"""Worker settings, read once from the environment (never from job input).

The table of variables lives in README.md / DESIGN.md; this module is its code.
Secrets (AWS keys, HF token) are read by boto3 and huggingface_hub themselves or
kept in ``S3Settings`` fields that are excluded from ``repr``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

VOLUME = "/runpod-volume"

DEFAULT_MODEL_REPO = "bosonai/higgs-audio-v2-generation-3B-base"
DEFAULT_TOKENIZER_REPO = "bosonai/higgs-audio-v2-tokenizer"


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name} must be an integer, got {raw!r}") from exc


def _size(env: Mapping[str, str], name: str, default: int) -> int:
    """Bytes, accepting plain integers or a KB/MB/GB suffix (powers of 1000)."""
    raw = env.get(name, "").strip().upper().replace(" ", "")
    if not raw:
        return default
    for suffix, factor in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3), ("B", 1)):
        if raw.endswith(suffix):
            raw, scale = raw[: -len(suffix)], factor
            break
    else:
        scale = 1
    try:
        return int(float(raw) * scale)
    except ValueError as exc:
        raise ValueError(f"environment variable {name} must be a size like 10MB") from exc


def _first(env: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


@dataclass(frozen=True)
class S3Settings:
    bucket: str
    prefix: str
    endpoint_url: str | None
    presign_seconds: int
    region: str | None
    timeout_seconds: float
    # Only set when RunPod's BUCKET_* aliases are used; AWS_* are read by boto3 itself.
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ModelSource:
    repo: str
    revision: str
    path: str


@dataclass(frozen=True)
class Settings:
    model: ModelSource
    tokenizer: ModelSource
    preload_models: bool
    voices_dir: str
    hf_cache_dir: str
    s3: S3Settings | None
    max_text_chars: int
    inline_max_bytes: int
    max_reference_seconds: float
    max_reference_bytes: int
    allow_private_urls: bool
    device: str
    dtype: str
    max_new_tokens_cap: int
    url_timeout_seconds: float
    s3_attempts: int
    decode_compile: str
    download_attempts: int
    download_backoff_seconds: float
    # Serving modes (issue 9): queue (RunPod /run, /runsync) or http (load-balancing endpoints).
    stream_jobs: bool = False
    worker_mode: str = "queue"
    port: int = 8000
    port_health: int | None = None
    api_key: str | None = field(default=None, repr=False)
    max_concurrency: int | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        model_repo = env.get("MODEL_REPO") or DEFAULT_MODEL_REPO
        tokenizer_repo = env.get("TOKENIZER_REPO") or DEFAULT_TOKENIZER_REPO
        return cls(
            model=ModelSource(
                repo=model_repo,
                revision=env.get("MODEL_REVISION") or "main",
                path=env.get("MODEL_PATH") or f"{VOLUME}/{model_repo}",
            ),
            tokenizer=ModelSource(
                repo=tokenizer_repo,
                revision=env.get("TOKENIZER_REVISION") or "main",
                path=env.get("TOKENIZER_PATH") or f"{VOLUME}/{tokenizer_repo}",
            ),
            preload_models=_bool(env.get("PRELOAD_MODELS"), False),
            voices_dir=env.get("VOICES_DIR") or f"{VOLUME}/bosonai/voices",
            hf_cache_dir=env.get("RUNPOD_HF_CACHE_DIR") or f"{VOLUME}/huggingface-cache/hub",
            s3=_s3_settings(env),
            max_text_chars=_int(env, "MAX_TEXT_CHARS", 20000),
            inline_max_bytes=_size(env, "INLINE_MAX_BYTES", 10 * 10**6),
            max_reference_seconds=float(_int(env, "MAX_REFERENCE_SECONDS", 60)),
            max_reference_bytes=_size(env, "MAX_REFERENCE_BYTES", 25 * 10**6),
            allow_private_urls=_bool(env.get("ALLOW_PRIVATE_URLS"), False),
            device=(env.get("DEVICE") or "auto").strip().lower(),
            dtype=(env.get("DTYPE") or "auto").strip().lower(),
            max_new_tokens_cap=_int(env, "MAX_NEW_TOKENS", 25 * 60 * 10),
            url_timeout_seconds=float(env.get("REFERENCE_URL_TIMEOUT_SECONDS") or 20),
            s3_attempts=max(1, _int(env, "S3_ATTEMPTS", 4)),
            decode_compile=(env.get("DECODE_COMPILE") or "auto").strip().lower(),
            download_attempts=max(1, _int(env, "MODEL_DOWNLOAD_ATTEMPTS", 4)),
            download_backoff_seconds=float(env.get("MODEL_DOWNLOAD_BACKOFF_SECONDS") or 2.0),
            stream_jobs=_bool(env.get("STREAM_JOBS"), False),
            worker_mode=_worker_mode(env.get("WORKER_MODE")),
            port=_int(env, "PORT", 8000),
            port_health=_int(env, "PORT_HEALTH", 0) or None,
            api_key=(env.get("API_KEY") or "").strip() or None,
            max_concurrency=_int(env, "MAX_CONCURRENCY", 0) or None,
        )


def _worker_mode(raw: str | None) -> str:
    mode = (raw or "queue").strip().lower()
    if mode not in {"queue", "http"}:
        raise ValueError(f"environment variable WORKER_MODE must be 'queue' or 'http', got {raw!r}")
    return mode


def _s3_settings(env: Mapping[str, str]) -> S3Settings | None:
    bucket = _first(env, "S3_BUCKET", "BUCKET_NAME")
    if not bucket:
        return None
    prefix = env.get("S3_PREFIX", "higgs-audio/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    prefix = prefix.lstrip("/")
    return S3Settings(
        bucket=bucket,
        prefix=prefix,
        endpoint_url=_first(env, "S3_ENDPOINT_URL", "BUCKET_ENDPOINT_URL"),
        presign_seconds=_int(env, "S3_PRESIGN_SECONDS", 3600),
        timeout_seconds=float(env.get("S3_TIMEOUT_SECONDS") or 30),
        region=_first(env, "AWS_DEFAULT_REGION", "AWS_REGION", "S3_REGION"),
        access_key_id=None if env.get("AWS_ACCESS_KEY_ID") else _first(env, "BUCKET_ACCESS_KEY_ID"),
        secret_access_key=None if env.get("AWS_SECRET_ACCESS_KEY") else _first(env, "BUCKET_SECRET_ACCESS_KEY"),
    )
