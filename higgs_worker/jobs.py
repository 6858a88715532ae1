"""One job, end to end: input -> validated request -> synthesis -> encoded audio -> delivery.

``Worker`` holds what lives for the whole worker process (settings, the loaded
engine, the S3 client, encoded voices). ``Worker.run(job)`` returns the contract's
output dict or ``{"error": "<code>: <message>"}``; it never raises, so the worker
stays healthy after any failed job.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import numpy as np

from . import audio as audio_codec
from .config import Settings
from .engine import Cancelled, Engine, loop_settings_for, pick_device, pick_dtype
from .errors import GENERATION_FAILED, MODEL_UNAVAILABLE, OUT_OF_MEMORY, STORAGE, WorkerError
from .model_store import LocalModel, check_format, ensure_local
from .prompt import AudioClip
from .reference_audio import decode_reference, load_reference
from .schema import Delivery, ReferenceAudio, SynthesisRequest, parse_request
from .storage import S3Store
from .stream_items import StreamItems
from .synthesis import build_voice_setup, synthesize
from .voices import VoiceLibrary

log = logging.getLogger(__name__)

VOICE_CACHE_SIZE = 32

ProgressFn = Callable[[int, int], None]
EmitFn = Callable[[dict], None]
AudioFn = Callable[[np.ndarray], None]
STREAM_SAMPLE_RATE = 24000


class Timer:
    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.marks: dict[str, float] = {}

    def add(self, name: str, seconds: float) -> None:
        self.marks[name] = self.marks.get(name, 0.0) + seconds

    @contextmanager
    def measure(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def summary(self) -> dict[str, float]:
        out = {
            key: round(self.marks.get(key, 0.0), 3)
            for key in ("download_s", "load_s", "generate_s", "encode_s", "upload_s")
        }
        out["total_s"] = round(time.perf_counter() - self.start, 3)
        return out


class Worker:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings.from_env()
        self.engine: Engine | None = None
        self.model_info: LocalModel | None = None
        self.voices = VoiceLibrary(self.settings.voices_dir)
        self._voice_cache: dict[tuple, AudioClip] = {}
        self._load_lock = threading.Lock()
        self._store: S3Store | None = None

    # -- resources ------------------------------------------------------------------

    @property
    def store(self) -> S3Store | None:
        if self.settings.s3 is None:
            return None
        if self._store is None:
            self._store = S3Store(self.settings.s3, attempts=self.settings.s3_attempts)
        return self._store

    def ensure_engine(self, timer: Timer | None = None) -> Engine:
        """Download (once per volume) and load (once per worker) the model."""
        timer = timer or Timer()
        with self._load_lock:
            if self.engine is not None:
                return self.engine
            settings = self.settings
            with timer.measure("download_s"):
                retry = {"attempts": settings.download_attempts, "backoff": settings.download_backoff_seconds}
                model = ensure_local(settings.model, "MODEL", settings.hf_cache_dir, **retry)
                tokenizer = ensure_local(settings.tokenizer, "TOKENIZER", settings.hf_cache_dir, **retry)
            check_format(model, "higgs_audio_v2", "MODEL")
            check_format(tokenizer, "higgs_audio_v2_tokenizer", "TOKENIZER")
            device = pick_device(settings.device)
            with timer.measure("load_s"):
                try:
                    self.engine = Engine.load(
                        model.path,
                        tokenizer.path,
                        device,
                        pick_dtype(settings.dtype, device),
                        loop_settings_for(device, settings.decode_compile),
                    )
                except Exception as exc:
                    if _is_oom(exc):
                        _free_device_memory()
                        raise WorkerError(
                            OUT_OF_MEMORY,
                            "the model does not fit in this GPU's memory; choose a GPU with 24 GB or more",
                        ) from None
                    log.exception("model load failed")
                    raise WorkerError(
                        MODEL_UNAVAILABLE,
                        f"could not load the model from {model.path} ({type(exc).__name__}); "
                        "check MODEL_REPO / TOKENIZER_REPO point to transformers-format Higgs Audio v2 repos",
                    ) from None
            self.model_info = model
            return self.engine

    def resolve_clip(self, source: str | ReferenceAudio) -> tuple[AudioClip, str | None]:
        engine = self.engine
        assert engine is not None
        settings = self.settings
        if isinstance(source, str):
            voice = self.voices.find(source)
            key = ("voice", voice.name, voice.version)
            clip = self._voice_cache.get(key)
            if clip is None:
                waveform = decode_reference(voice.audio_path.read_bytes(), settings.max_reference_seconds)
                clip = engine.encode_audio(waveform)
                if len(self._voice_cache) >= VOICE_CACHE_SIZE:
                    self._voice_cache.pop(next(iter(self._voice_cache)))
                self._voice_cache[key] = clip
            return clip, voice.transcript
        store = self.store
        waveform, transcript = load_reference(
            source,
            max_bytes=settings.max_reference_bytes,
            max_seconds=settings.max_reference_seconds,
            timeout=settings.url_timeout_seconds,
            allow_private=settings.allow_private_urls,
            fetch_s3=store.read if store else None,
        )
        return engine.encode_audio(waveform), transcript

    # -- one job ----------------------------------------------------------------------

    def run(
        self,
        job: dict[str, Any],
        should_stop: Callable[[], bool] | None = None,
        progress: ProgressFn | None = None,
        emit: EmitFn | None = None,
        on_audio: AudioFn | None = None,
    ) -> dict[str, Any]:
        """Run one job. With ``stream: true`` and ``emit``, stream items (PCM pieces as
        base64) are handed to ``emit`` while they are generated; ``on_audio`` (any door that
        streams itself, e.g. HTTP) gets the same pieces as float32 arrays at the model's rate,
        whatever the job's ``stream`` field. The return value is always the full output."""
        timer = Timer()
        job_id = str(job.get("id") or "job")
        try:
            request = parse_request(job.get("input"), self.settings)
            engine = self.ensure_engine(timer)
            return self._synthesize_and_deliver(
                job_id, request, engine, timer, should_stop, progress, emit, on_audio
            )
        except WorkerError as exc:
            log.info("job %s failed: %s", job_id, exc.code)
            return exc.as_output()
        except Cancelled:
            log.info("job %s was stopped", job_id)
            return {"error": f"{GENERATION_FAILED}: the job was cancelled or timed out; generation stopped"}
        except Exception as exc:
            if _is_oom(exc):
                _free_device_memory()
                log.warning("job %s ran out of GPU memory", job_id)
                return WorkerError(
                    OUT_OF_MEMORY,
                    "the GPU ran out of memory; use shorter text, a smaller chunk_max_words, or a GPU with more memory",
                ).as_output()
            log.exception("job %s failed unexpectedly", job_id)
            return {
                "error": f"{GENERATION_FAILED}: unexpected {type(exc).__name__}; the worker is still serving, try again"
            }

    def _synthesize_and_deliver(
        self, job_id, request: SynthesisRequest, engine: Engine, timer: Timer, should_stop, progress, emit, listener
    ) -> dict[str, Any]:
        setup = build_voice_setup(request, self.resolve_clip)
        streamed = {"n": 0, "bytes": 0}  # stream items sent, and their base64 bytes
        listeners = [listener] if listener is not None else []
        if request.stream and emit is not None:
            listeners.append(_stream_emitter(emit, streamed))
        on_audio = None
        if listeners:

            def on_audio(piece: np.ndarray) -> None:
                for listen in listeners:
                    listen(piece)

        def on_chunk(index: int, total: int) -> None:  # "chunk i of n" as chunk i starts
            if progress is not None and total > 1:
                progress(index + 1, total)

        with timer.measure("generate_s"):
            result = synthesize(
                engine, request, setup, self.settings.max_new_tokens_cap, should_stop, on_chunk, on_audio
            )
        with timer.measure("encode_s"):
            waveform = audio_codec.resample(result.audio, result.sample_rate, request.sample_rate)
            data = audio_codec.encode(waveform, request.sample_rate, request.output_format.value)
        codec = audio_codec.CODECS[request.output_format.value]
        duration = round(len(waveform) / request.sample_rate, 3)
        output: dict[str, Any] = {}
        with timer.measure("upload_s"):
            output.update(self._deliver(job_id, request, data, codec.content_type, streamed["bytes"]))
        output.update(
            {
                "format": request.output_format.value,
                "content_type": codec.content_type,
                "sample_rate": request.sample_rate,
                "duration_s": duration,
                "num_chunks": result.num_chunks,
                "seed": result.seed,
                "model": {"repo": self.settings.model.repo, "revision": self.model_info.revision},
                "timings": timer.summary(),
            }
        )
        output["rtf"] = round(output["timings"]["generate_s"] / duration, 3) if duration > 0 else None
        log.info(
            "job %s done: %.2fs of audio, %d chunk(s), %s",
            job_id,
            duration,
            result.num_chunks,
            "s3" if "s3_uri" in output else "inline",
        )
        return output

    def _deliver(
        self, job_id: str, request: SynthesisRequest, data: bytes, content_type: str, streamed_bytes: int = 0
    ) -> dict:
        """S3 or inline. The inline budget counts stream items already sent: RunPod's
        aggregated result (/runsync, /status) repeats them before the final item."""
        store = self.store
        inline_size = (len(data) + 2) // 3 * 4 + streamed_bytes
        inline_ok = inline_size <= self.settings.inline_max_bytes
        want_s3 = request.delivery is Delivery.s3 or (request.delivery is Delivery.auto and store is not None)
        if not want_s3 and not inline_ok:
            if store is None:
                also = f" (with {streamed_bytes} bytes of streamed chunks)" if streamed_bytes else ""
                raise WorkerError(
                    STORAGE,
                    f"the audio is {len(data)} bytes{also}, above the inline limit of "
                    f"{self.settings.inline_max_bytes} bytes (INLINE_MAX_BYTES); set S3_BUCKET on the "
                    "endpoint or ask for a compressed output_format (mp3, opus, ogg)",
                )
            want_s3 = True
        if want_s3:
            stored = store.upload(request.file_name(job_id), data, content_type)
            out = {"s3_uri": stored.s3_uri}
            if stored.url:
                out["audio_url"] = stored.url
            return out
        return {"audio_base64": base64.b64encode(data).decode("ascii")}


def _stream_emitter(emit: EmitFn, count: dict) -> Callable[[np.ndarray], None]:
    """Stream items in the format of ``stream_items`` (compressed, within a size budget).
    ``count`` keeps the number of items sent and their base64 bytes."""
    return StreamItems(emit, count)


def _is_oom(exc: BaseException) -> bool:
    try:
        import torch

        if isinstance(exc, torch.OutOfMemoryError):
            return True
    except ImportError:  # pragma: no cover
        pass
    return "out of memory" in str(exc).lower() and "cuda" in str(exc).lower()


def _free_device_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
