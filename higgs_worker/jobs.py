"""One job, end to end: input -> validated request -> synthesis -> encoded audio -> delivery.

``Worker`` holds what lives for the whole worker process (settings, the loaded
engine, the S3 client, encoded voices). ``Worker.run(job)`` returns the contract's
output dict or ``{"error": "<code>: <message>"}``; it never raises, so the worker
stays healthy after any failed job.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import numpy as np

from . import narration
from .audio import codecs as audio_codec
from .audio.stream_items import StreamItems
from .contract.config import Settings
from .contract.errors import (
    GENERATION_FAILED,
    MODEL_UNAVAILABLE,
    Cancelled,
    WorkerError,
    free_device_memory,
    is_out_of_memory,
    out_of_memory,
)
from .contract.schema import ReferenceAudio, SynthesisRequest, parse_request
from .io.reference_audio import decode_reference, load_reference
from .io.storage import S3Store, deliver
from .io.voices import VoiceLibrary
from .model import compile_cache
from .model.engine import Engine, concurrency_for, loop_settings_for, pick_device, pick_dtype
from .model.model_store import LocalModel, check_format, ensure_local
from .model.prompt import AudioClip
from .synthesis import AudioPiece, ChunkStarted, Synthesis, build_voice_setup, synthesize

log = logging.getLogger(__name__)

VOICE_CACHE_SIZE = 32

ProgressFn = Callable[[int, int], None]
EmitFn = Callable[[dict], None]
AudioFn = Callable[[np.ndarray], None]


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
            for key in ("download_s", "load_s", "warmup_s", "generate_s", "encode_s", "align_s", "upload_s")
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
        self._voice_lock = threading.Lock()  # jobs run at once: the cache is shared
        self._load_lock = threading.Lock()
        self._store: S3Store | None = None
        self.warmup_report: compile_cache.CacheReport | None = None

    # -- resources ------------------------------------------------------------------

    @property
    def concurrency(self) -> int:
        """Jobs this worker runs at once (both doors use it): MAX_CONCURRENCY, or auto; lower
        once the engine planned fewer KV slots or ran out of memory (``Engine.capacity``)."""
        wanted = concurrency_for(self.settings.max_concurrency, pick_device(self.settings.device))
        return min(wanted, self.engine.capacity) if self.engine is not None else wanted

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
                        settings.max_concurrency,
                        settings.kv_cache_memory_fraction,
                        settings.max_reference_seconds,
                    )
                except Exception as exc:
                    if is_out_of_memory(exc):
                        raise out_of_memory(loading=True) from None
                    log.exception("model load failed")
                    raise WorkerError(
                        MODEL_UNAVAILABLE,
                        f"could not load the model from {model.path} ({type(exc).__name__}); "
                        "check MODEL_REPO / TOKENIZER_REPO point to transformers-format Higgs Audio v2 repos",
                    ) from None
            self.model_info = model
            with timer.measure("warmup_s"):  # compiles (or loads compiled kernels) before any job runs
                self._warm_up(self.engine, model)
            return self.engine

    def _warm_up(self, engine: Engine, model: LocalModel) -> None:
        try:
            self.warmup_report = compile_cache.warm_up(
                engine, self.settings.compile_cache_dir, model.revision, model.path
            )
        except Exception as exc:  # the job then compiles (or runs the plain step) itself
            if is_out_of_memory(exc):
                free_device_memory()
            log.exception("warm-up failed (%s); the first job compiles", type(exc).__name__)

    def resolve_clip(self, source: str | ReferenceAudio) -> tuple[AudioClip, str | None]:
        engine = self.engine
        assert engine is not None
        settings = self.settings
        if isinstance(source, str):
            voice = self.voices.find(source)
            key = ("voice", voice.name, voice.version)
            with self._voice_lock:
                clip = self._voice_cache.get(key)
            if clip is None:
                waveform = decode_reference(voice.audio_path.read_bytes(), settings.max_reference_seconds)
                clip = engine.encode_audio(waveform)
                with self._voice_lock:
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
        """Run one job. With ``stream: true`` and ``emit``, stream items (``stream_items``:
        Ogg Opus pieces as base64) are handed to ``emit`` while they are generated; ``on_audio`` (any door that
        streams itself, e.g. HTTP) gets the same pieces as float32 arrays at the model's rate,
        whatever the job's ``stream`` field. The return value is always the full output."""
        timer = Timer()
        job_id = str(job.get("id") or "job")
        try:
            request = parse_request(job.get("input"), self.settings)
            engine = self.ensure_engine(timer)
            return self._synthesize_and_deliver(job_id, request, engine, timer, should_stop, progress, emit, on_audio)
        except WorkerError as exc:
            log.info("job %s failed: %s", job_id, exc.code)
            return exc.as_output()
        except Cancelled:
            log.info("job %s was stopped", job_id)
            return {"error": f"{GENERATION_FAILED}: the job was cancelled or timed out; generation stopped"}
        except Exception as exc:
            if is_out_of_memory(exc):
                log.warning("job %s ran out of GPU memory", job_id)
                return out_of_memory().as_output()
            log.exception("job %s failed unexpectedly", job_id)
            return {
                "error": f"{GENERATION_FAILED}: unexpected {type(exc).__name__}; the worker is still serving, try again"
            }

    def _synthesize_and_deliver(
        self, job_id, request: SynthesisRequest, engine: Engine, timer: Timer, should_stop, progress, emit, on_audio
    ) -> dict[str, Any]:
        setup = build_voice_setup(request, self.resolve_clip)
        if request.word_timestamps:  # the aligner's helper process starts while this job generates
            narration.prepare_words()
        streamed = {"n": 0, "bytes": 0}  # stream items sent and their base64 bytes (the aggregate repeats them)
        send_items = request.stream and emit is not None
        items = StreamItems(emit, streamed) if send_items else None
        result: Synthesis | None = None
        with timer.measure("generate_s"):
            for event in synthesize(
                engine,
                request,
                setup,
                self.settings.max_new_tokens_cap,
                should_stop,
                stream=send_items or on_audio is not None,
            ):
                if isinstance(event, ChunkStarted):  # "chunk i of n" as chunk i starts
                    if progress is not None and event.total > 1:
                        progress(event.index + 1, event.total)
                elif isinstance(event, AudioPiece):
                    if on_audio is not None:
                        on_audio(event.audio)
                    if items is not None:
                        items(event.audio)
                else:
                    result = event
        with timer.measure("encode_s"):
            # pauses, trimming, resampling, loudness, segments and subtitles (narration.py)
            rendered = narration.render(result, request)
            waveform = rendered.waveform
            data = audio_codec.encode(waveform, request.sample_rate, request.output_format.value)
        if request.word_timestamps:  # forced alignment: in this job's thread, off the scheduler, after generation
            with timer.measure("align_s"):
                narration.add_words(rendered, request)
        codec = audio_codec.CODECS[request.output_format.value]
        duration = round(len(waveform) / request.sample_rate, 3)
        output: dict[str, Any] = {}
        with timer.measure("upload_s"):
            output.update(
                deliver(
                    self.store,
                    request.delivery.value,
                    request.file_name(job_id),
                    data,
                    codec.content_type,
                    self.settings.inline_max_bytes,
                    streamed["bytes"],
                )
            )
            output.update(narration.deliver_subtitles(rendered, request, job_id, output, self.store))
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
        output.update(rendered.outputs())  # segments, and loudness when normalised
        if engine.compile_note:  # the decode step fell back to the plain step on this worker
            output["warnings"] = [engine.compile_note]
        log.info(
            "job %s done: %.2fs of audio, %d chunk(s), %s",
            job_id,
            duration,
            result.num_chunks,
            "s3" if "s3_uri" in output else "inline",
        )
        return output
