"""Worker settings: every environment variable, parsed and checked once at start.

``Environment`` is the documented list (one pydantic-settings field a variable, named
by its variable; docs/worker-reference.md is generated from it). ``Settings`` is what
the rest of the worker reads: the same values grouped (model, tokenizer, S3). A bad
value raises ``SettingsError`` naming the variable and what it accepts; nothing else in
the worker parses the environment. Job input never changes a setting.

Secrets (AWS keys, HF token) are read by boto3 and huggingface_hub themselves; the
ones read here (RunPod's BUCKET_* aliases, API_KEY) are ``SecretStr`` and kept out of
``repr``.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import AliasChoices, ByteSize, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

VOLUME = "/runpod-volume"

DEFAULT_MODEL_REPO = "bosonai/higgs-audio-v2-generation-3B-base"
DEFAULT_TOKENIZER_REPO = "bosonai/higgs-audio-v2-tokenizer"
DEFAULT_COMPILE_CACHE_DIR = f"{VOLUME}/bosonai/compile-cache"

# Variables whose empty value means something ("no prefix", "no cache"); any other
# variable set to "" counts as unset.
EMPTY_IS_A_VALUE = frozenset({"S3_PREFIX", "COMPILE_CACHE_DIR"})


class SettingsError(ValueError):
    """A bad environment variable: the message names it and what it accepts."""


def _env(name: str, *aliases: str) -> Any:
    return AliasChoices(name, *aliases) if aliases else name


class Environment(BaseSettings):
    """The worker's environment variables (README and docs/worker-reference.md list them)."""

    model_config = SettingsConfigDict(
        case_sensitive=True, extra="ignore", populate_by_name=False, protected_namespaces=(), frozen=True
    )

    # -- models ---------------------------------------------------------------------
    MODEL_REPO: str = Field(DEFAULT_MODEL_REPO, min_length=1, description="hub repo of the generation model")
    MODEL_REVISION: str = Field(
        "main", min_length=1, description="branch, tag or commit; pin a commit for reproducible workers"
    )
    MODEL_PATH: str | None = Field(None, description="where the model lives (default `/runpod-volume/<MODEL_REPO>`)")
    TOKENIZER_REPO: str = Field(DEFAULT_TOKENIZER_REPO, min_length=1, description="hub repo of the audio tokenizer")
    TOKENIZER_REVISION: str = Field("main", min_length=1, description="branch, tag or commit of the audio tokenizer")
    TOKENIZER_PATH: str | None = Field(None, description="where it lives (default `/runpod-volume/<TOKENIZER_REPO>`)")
    RUNPOD_HF_CACHE_DIR: str = Field(
        f"{VOLUME}/huggingface-cache/hub", description="RunPod's cached-model layout, used when the model is there"
    )
    PRELOAD_MODELS: bool = Field(False, description="true: download and load at worker start, not on the first job")
    MODEL_DOWNLOAD_ATTEMPTS: int = Field(4, ge=1, le=20, description="hub download attempts before `model_unavailable`")
    MODEL_DOWNLOAD_BACKOFF_SECONDS: float = Field(
        2.0, ge=0, le=600, description="first wait between attempts (doubles)"
    )
    DEVICE: str = Field(
        "auto",
        pattern=r"^(auto|cpu|cuda(:\d+)?)$",
        description="`auto` (cuda when there is a GPU), `cpu`, `cuda` or `cuda:N`",
    )
    DTYPE: Literal["auto", "bfloat16", "bf16", "float16", "fp16", "float32", "fp32"] = Field(
        "auto", description="`auto` = bfloat16 on CUDA, float32 on the CPU"
    )
    DECODE_COMPILE: Literal["auto", "true", "false"] = Field(
        "auto",
        description="compiled decode step (CUDA graphs); `auto` = on with CUDA; a compile failure falls back "
        "to the plain step (logged, counted), never fails a job",
    )
    COMPILE_CACHE_DIR: str = Field(
        DEFAULT_COMPILE_CACHE_DIR,
        description="compiled decode-step kernels shared by the workers of a volume (one bundle per "
        "torch / GPU / model revision / dtype / decode-loop code); empty turns it off",
    )

    RUNPOD_LOG_LEVEL: Literal["DEBUG", "INFO", "WARN", "WARNING", "ERROR"] = Field(
        "INFO", description="the runpod SDK's and the worker's log level; never DEBUG in production (whole outputs)"
    )

    # -- serving --------------------------------------------------------------------
    WORKER_MODE: Literal["queue", "http"] = Field(
        "queue",
        description="`queue`: RunPod queue endpoint (/run, /runsync, /stream); "
        "`http`: HTTP API (OpenAI-compatible) for load-balancing endpoints",
    )
    MAX_CONCURRENCY: int | None = Field(
        None,
        ge=1,
        le=256,
        description="generation slots: jobs one worker generates at once, sharing decode steps "
        "(default 16 on CUDA, 1 on the CPU)",
    )
    IO_JOBS: int | None = Field(
        None,
        ge=0,
        le=256,
        description="jobs taken beyond MAX_CONCURRENCY, to fetch reference audio or deliver results while the "
        "batch is full (the worker takes MAX_CONCURRENCY + IO_JOBS jobs at once); default half of "
        "MAX_CONCURRENCY, at least 2",
    )
    KV_CACHE_MEMORY_FRACTION: float = Field(
        0.85,
        gt=0,
        le=1,
        description="share of the GPU memory left after loading that the batch's KV cache may take at most "
        "(the memory plan keeps its reserve in any case)",
    )
    STREAM_JOBS: bool = Field(
        False,
        description="true: queue jobs may stream (`stream: true`); `/runsync` output is then "
        "the list of streamed items, result last",
    )
    PORT: int = Field(8000, ge=1, le=65535, description="HTTP mode: listening port")
    PORT_HEALTH: int | None = Field(
        None, ge=1, le=65535, description="HTTP mode: port of `/ping` for RunPod's load balancer (default PORT)"
    )
    API_KEY: SecretStr | None = Field(
        None, description="HTTP mode: require `Authorization: Bearer <API_KEY>` (for running outside RunPod)"
    )
    # -- HTTP mode under load (docs/security.md) ---------------------------------------
    HTTP_QUEUE_LIMIT: int | None = Field(
        None,
        ge=0,
        le=4096,
        description="HTTP mode: requests that may wait for admission beyond the MAX_CONCURRENCY + IO_JOBS "
        "running; more get 429 with Retry-After (default: as many as run, MAX_CONCURRENCY + IO_JOBS)",
    )
    HTTP_HEADER_TIMEOUT_SECONDS: float = Field(
        10,
        gt=0,
        le=600,
        description="HTTP mode: a request head must arrive whole within this (of the connection's opening or "
        "previous response); else the connection is closed",
    )
    HTTP_BODY_TIMEOUT_SECONDS: float = Field(
        60, gt=0, le=3600, description="HTTP mode: a request body must arrive whole within this; else 408"
    )
    HTTP_MAX_CONNECTIONS: int = Field(
        256,
        ge=8,
        le=65536,
        description="HTTP mode: open connections per listener at most; beyond, a new connection closes the oldest "
        "one still sending its request head (or, when none is, is closed itself)",
    )
    VOICE_ADMIN: Literal["on", "off"] = Field(
        "on", description="HTTP mode: `off` refuses voice upload and delete (403); listing stays"
    )
    VOICE_ADMIN_KEY: SecretStr | None = Field(
        None,
        description="HTTP mode: voice upload and delete need this key (instead of API_KEY), as "
        "`Authorization: Bearer <key>` or `X-Voice-Admin-Key: <key>`",
    )
    PLAYGROUND: bool = Field(
        True,
        description="HTTP mode: serve the playground page at `/` (docs/playground.md); false: `/` is a 404. "
        "The page holds no data: with API_KEY set it asks for the key before it lists or speaks anything",
    )

    # -- input limits ---------------------------------------------------------------
    MAX_TEXT_CHARS: int = Field(20000, ge=1, le=1_000_000, description="longer text is refused")
    MAX_NEW_TOKENS: int = Field(
        15000, ge=1, le=100_000, description="hard cap on generation steps per chunk (25 steps = 1 s)"
    )
    # -- runaway guard (docs/voices.md: the defaults and the measurement behind them) ----
    RUNAWAY_SILENCE_SECONDS: float = Field(
        3.0,
        ge=0,
        le=60,
        description="a chunk that keeps silent this long after speaking is ended there and its trailing "
        "silence cut (a warning on the job, counted in `/v1/state`); 0 = off. 3 s: twice the longest "
        "pause measured in slow read speech (1.48 s, `python -m higgs_worker.devtools.pause_lengths`)",
    )
    RUNAWAY_REPEAT_SECONDS: float = Field(
        2.0,
        ge=0,
        le=60,
        description="a chunk that repeats one audio frame (every codebook, not silence) this long is "
        "ended where the repeat began; 0 = off",
    )
    INLINE_MAX_BYTES: ByteSize = Field(
        ByteSize(10 * 10**6), description="larger inline results go to S3, or fail with `storage:` (e.g. `10MB`)"
    )
    MAX_REFERENCE_SECONDS: float = Field(60, gt=0, le=600, description="longest reference audio")
    MAX_REFERENCE_BYTES: ByteSize = Field(
        ByteSize(25 * 10**6), description="largest reference audio file (e.g. `25MB`)"
    )
    MAX_JOB_REFERENCE_SECONDS: float = Field(
        180,
        gt=0,
        le=3600,
        description="a job's own reference audio (every `reference_audio`, speakers included) in seconds at most, "
        "all together",
    )
    MAX_JOB_REFERENCE_BYTES: ByteSize = Field(
        ByteSize(50 * 10**6), description="a job's own reference audio files in bytes at most, all together"
    )
    REFERENCE_URL_TIMEOUT_SECONDS: float = Field(20, gt=0, le=600, description="total time to fetch a reference URL")
    ALLOW_PRIVATE_URLS: bool = Field(
        False, description="allow reference URLs to private, loopback or link-local addresses"
    )
    VOICES_DIR: str = Field(
        f"{VOLUME}/bosonai/voices",
        description="voice library: `NAME.voice` (clip + transcript, one file a version) or "
        "`NAME.wav` (.flac/.mp3/.ogg) + `NAME.txt` transcript",
    )

    # -- results in S3 --------------------------------------------------------------
    S3_BUCKET: str | None = Field(
        None, validation_alias=_env("S3_BUCKET", "BUCKET_NAME"), description="bucket for results (unset: inline base64)"
    )
    S3_ENDPOINT_URL: str | None = Field(
        None,
        pattern=r"^https?://",
        validation_alias=_env("S3_ENDPOINT_URL", "BUCKET_ENDPOINT_URL"),
        description="R2, MinIO, B2 or any S3-compatible store (default AWS)",
    )
    S3_PREFIX: str = Field("higgs-audio/", description="key prefix for results")
    REFERENCE_S3_PREFIX: str | None = Field(
        None,
        description="`reference_audio.s3_key` must name an object under this prefix (default "
        "`<S3_PREFIX>references/`, where `higgs-tts` uploads reference audio); it may not hold the results "
        "(S3_PREFIX)",
    )
    S3_PRESIGN_SECONDS: int = Field(
        3600, ge=0, le=604800, description="lifetime of the returned https URL; 0 = only the s3:// URI"
    )
    S3_ATTEMPTS: int = Field(
        4, ge=1, le=20, description="upload attempts (botocore's standard retries) before `storage:`"
    )
    S3_TIMEOUT_SECONDS: float = Field(
        30, gt=0, le=600, description="read timeout of one S3 request (connect: at most 5 s)"
    )
    S3_REGION: str | None = Field(
        None,
        validation_alias=_env("AWS_DEFAULT_REGION", "AWS_REGION", "S3_REGION"),
        description="region (AWS_DEFAULT_REGION, AWS_REGION or S3_REGION)",
    )
    BUCKET_ACCESS_KEY_ID: SecretStr | None = Field(
        None, description="RunPod's bucket key id, used when AWS_ACCESS_KEY_ID is unset"
    )
    BUCKET_SECRET_ACCESS_KEY: SecretStr | None = Field(
        None, description="RunPod's bucket secret, used when AWS_SECRET_ACCESS_KEY is unset"
    )
    AWS_ACCESS_KEY_ID: SecretStr | None = Field(
        None, description="S3 credentials, read by boto3 (with AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)"
    )
    AWS_SECRET_ACCESS_KEY: SecretStr | None = Field(None, description="read by boto3")

    @model_validator(mode="before")
    @classmethod
    def _empty_is_unset(cls, values: Any) -> Any:
        if isinstance(values, dict):
            return {k: v for k, v in values.items() if not (v == "" and k not in EMPTY_IS_A_VALUE)}
        return values

    @field_validator("DEVICE", "DTYPE", "WORKER_MODE", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("VOICE_ADMIN", mode="before")
    @classmethod
    def _on_off(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        value = value.strip().lower()
        return {"1": "on", "true": "on", "yes": "on", "0": "off", "false": "off", "no": "off"}.get(value, value)

    @field_validator("RUNPOD_LOG_LEVEL", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("DECODE_COMPILE", mode="before")
    @classmethod
    def _auto_or_bool(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        value = value.strip().lower()
        return {"1": "true", "yes": "true", "on": "true", "0": "false", "no": "false", "off": "false"}.get(value, value)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        return (init_settings, _MappingSource(settings_cls, _SOURCE.get()))


class _MappingSource(EnvSettingsSource):
    """pydantic-settings' own environment source, reading a given mapping (tests, tools)
    instead of ``os.environ`` when one is given."""

    def __init__(self, settings_cls, mapping: Mapping[str, str] | None):
        self._mapping = mapping
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        if self._mapping is None:
            return super()._load_env_vars()
        return {key: value for key, value in self._mapping.items() if isinstance(value, str)}


_SOURCE: ContextVar[Mapping[str, str] | None] = ContextVar("settings_source", default=None)


def _describe(error: dict) -> str:
    name = next((str(part) for part in error.get("loc", ()) if str(part).isupper()), "?")
    given = error.get("input")
    message = error.get("msg", "invalid value").removeprefix("Value error, ")
    ctx = error.get("ctx") or {}
    if error.get("type") == "bool_parsing":
        message = "must be true or false (or 1/0, yes/no, on/off)"
    elif str(error.get("type", "")).startswith("byte_size"):
        message = "must be a byte size like 10MB (B, KB, MB, GB are powers of 1000; KiB, MiB, GiB of 1024)"
    elif "expected" in ctx:
        message = f"must be one of {ctx['expected']}"
    elif "pattern" in ctx:
        message = f"must match {ctx['pattern']}"
    shown = "***" if "KEY" in name else repr(given)
    return f"{name}={shown}: {message}"


def read_environment(env: Mapping[str, str] | None = None) -> Environment:
    """Parse and check every variable; raise ``SettingsError`` naming each bad one."""
    token = _SOURCE.set(env)
    try:
        return Environment()
    except ValidationError as exc:
        problems = "; ".join(_describe(err) for err in exc.errors())
        raise SettingsError(f"bad setting: {problems}") from None
    finally:
        _SOURCE.reset(token)


@dataclass(frozen=True)
class S3Settings:
    bucket: str
    prefix: str
    endpoint_url: str | None
    presign_seconds: int
    region: str | None
    timeout_seconds: float
    reference_prefix: str = "references/"  # reference_audio.s3_key must start with it
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
    worker_mode: str = "queue"
    max_concurrency: int | None = None
    io_jobs: int | None = None
    kv_cache_memory_fraction: float = 0.85
    stream_jobs: bool = False
    port: int = 8000
    port_health: int | None = None
    api_key: SecretStr | None = field(default=None, repr=False)
    playground: bool = True
    compile_cache_dir: str = DEFAULT_COMPILE_CACHE_DIR
    runaway_silence_seconds: float = 3.0
    runaway_repeat_seconds: float = 2.0
    http_queue_limit: int | None = None
    http_header_timeout_seconds: float = 10.0
    http_body_timeout_seconds: float = 60.0
    http_max_connections: int = 256
    voice_admin: str = "on"
    voice_admin_key: SecretStr | None = field(default=None, repr=False)
    max_job_reference_seconds: float = 180.0
    max_job_reference_bytes: int = 50 * 10**6

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """From ``os.environ`` (or the given mapping); ``SettingsError`` on a bad value."""
        e = read_environment(env)
        return cls(
            model=ModelSource(e.MODEL_REPO, e.MODEL_REVISION, e.MODEL_PATH or f"{VOLUME}/{e.MODEL_REPO}"),
            tokenizer=ModelSource(
                e.TOKENIZER_REPO, e.TOKENIZER_REVISION, e.TOKENIZER_PATH or f"{VOLUME}/{e.TOKENIZER_REPO}"
            ),
            preload_models=e.PRELOAD_MODELS,
            voices_dir=e.VOICES_DIR,
            hf_cache_dir=e.RUNPOD_HF_CACHE_DIR,
            s3=_s3_settings(e),
            max_text_chars=e.MAX_TEXT_CHARS,
            inline_max_bytes=int(e.INLINE_MAX_BYTES),
            max_reference_seconds=e.MAX_REFERENCE_SECONDS,
            max_reference_bytes=int(e.MAX_REFERENCE_BYTES),
            allow_private_urls=e.ALLOW_PRIVATE_URLS,
            device=e.DEVICE,
            dtype=e.DTYPE,
            max_new_tokens_cap=e.MAX_NEW_TOKENS,
            url_timeout_seconds=e.REFERENCE_URL_TIMEOUT_SECONDS,
            s3_attempts=e.S3_ATTEMPTS,
            decode_compile=e.DECODE_COMPILE,
            download_attempts=e.MODEL_DOWNLOAD_ATTEMPTS,
            download_backoff_seconds=e.MODEL_DOWNLOAD_BACKOFF_SECONDS,
            worker_mode=e.WORKER_MODE,
            max_concurrency=e.MAX_CONCURRENCY,
            io_jobs=e.IO_JOBS,
            kv_cache_memory_fraction=e.KV_CACHE_MEMORY_FRACTION,
            stream_jobs=e.STREAM_JOBS,
            port=e.PORT,
            port_health=e.PORT_HEALTH,
            api_key=e.API_KEY,
            playground=e.PLAYGROUND,
            compile_cache_dir=e.COMPILE_CACHE_DIR,
            runaway_silence_seconds=e.RUNAWAY_SILENCE_SECONDS,
            runaway_repeat_seconds=e.RUNAWAY_REPEAT_SECONDS,
            http_queue_limit=e.HTTP_QUEUE_LIMIT,
            http_header_timeout_seconds=e.HTTP_HEADER_TIMEOUT_SECONDS,
            http_body_timeout_seconds=e.HTTP_BODY_TIMEOUT_SECONDS,
            http_max_connections=e.HTTP_MAX_CONNECTIONS,
            voice_admin=e.VOICE_ADMIN,
            voice_admin_key=e.VOICE_ADMIN_KEY,
            max_job_reference_seconds=e.MAX_JOB_REFERENCE_SECONDS,
            max_job_reference_bytes=int(e.MAX_JOB_REFERENCE_BYTES),
        )


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def _folder(prefix: str) -> str:
    """A key prefix as a folder: no leading '/', a trailing one unless empty."""
    prefix = prefix.lstrip("/")
    return prefix if not prefix or prefix.endswith("/") else f"{prefix}/"


def _s3_settings(e: Environment) -> S3Settings | None:
    if not e.S3_BUCKET:
        return None
    prefix = _folder(e.S3_PREFIX)
    reference_prefix = _folder(e.REFERENCE_S3_PREFIX) if e.REFERENCE_S3_PREFIX else f"{prefix}references/"
    if prefix.startswith(reference_prefix):
        raise SettingsError(
            f"bad setting: REFERENCE_S3_PREFIX={reference_prefix!r}: must not contain the results "
            f"(S3_PREFIX={prefix!r}), or any job could clone another job's output"
        )
    return S3Settings(
        bucket=e.S3_BUCKET,
        prefix=prefix,
        reference_prefix=reference_prefix,
        endpoint_url=e.S3_ENDPOINT_URL,
        presign_seconds=e.S3_PRESIGN_SECONDS,
        timeout_seconds=e.S3_TIMEOUT_SECONDS,
        region=e.S3_REGION,
        access_key_id=None if e.AWS_ACCESS_KEY_ID else _secret(e.BUCKET_ACCESS_KEY_ID),
        secret_access_key=None if e.AWS_SECRET_ACCESS_KEY else _secret(e.BUCKET_SECRET_ACCESS_KEY),
    )
