"""One job, end to end: input -> checked job -> inputs -> synthesis -> encoded audio -> delivery.

``Worker`` holds what lives for the whole worker process (settings, the loaded engine,
the S3 client, encoded voices, the generation slots). ``Worker.run(job)`` returns the job's
outcome: a ``JobOutput`` (or a voice action's result) or a ``JobFailure`` (code, kind,
parameter, message); each door turns it into its own answer (``as_output()``: the queue's
dict). It never raises, so the worker stays healthy after any failed job.

A job's phases (``admission``): ``prepare`` checks it at once and cheaply (schema, limits,
names, base64, audio headers, URL addresses, voices read as one version each; nothing
decoded or downloaded); ``fetch`` downloads reference audio and decodes every clip;
``generate`` runs inside a generation slot (the only phase that holds one); ``render`` and
``deliver`` (narration, encoding, S3) come after, outside it.
A door that wants to refuse bad input before it queues a job calls ``prepare`` itself and
hands the ``PreparedJob`` to ``run``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import narration
from .admission import GenerationSlots, io_jobs_for
from .audio import codecs as audio_codec
from .audio.stream_items import StreamItems
from .contract.config import Settings
from .contract.errors import (
    GENERATION_FAILED,
    MODEL_UNAVAILABLE,
    Cancelled,
    JobFailure,
    WorkerError,
    free_device_memory,
    is_out_of_memory,
    out_of_memory,
)
from .contract.output import JobOutput, Timings
from .contract.schema import SynthesisRequest, parse_request
from .contract.voice_actions import DesignVoice, VoiceEntry, VoiceList, is_action, parse_action
from .io.presets import Preset, presets, voice_entries
from .io.storage import S3Store, deliver
from .io.voices import VoiceLibrary
from .model import compile_cache
from .model.decode_loop import LoopSettings
from .model.engine import Engine, concurrency_for, loop_settings_for, pick_device, pick_dtype
from .model.model_store import LocalModel, check_format, ensure_local
from .model.spec import SPEC
from .synthesis import AudioPiece, ChunkStarted, RunawayLimits, Synthesis, build_voice_setup, synthesize
from .voice_design import VoiceDesigner
from .voice_inputs import JobVoices, VoiceClips, check_voices, fetch_voices, read_designed

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]
EmitFn = Callable[[dict], None]
AudioFn = Callable[[np.ndarray], None]
PhaseFn = Callable[[str], None]  # "inputs", "waiting", "generating", "delivering"
Outcome = JobOutput | VoiceEntry | VoiceList | JobFailure  # how a job ends; ``as_output()`` is the queue's dict

CANCELLED = JobFailure(GENERATION_FAILED, "the job was cancelled or timed out; generation stopped")


@dataclass
class PreparedJob:
    """A job checked completely (``Worker.prepare``), before it waited for anything."""

    request: SynthesisRequest
    voices: JobVoices


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
        """Every phase of the output's ``Timings`` (0 when it did not happen), and the total."""
        out = {key: round(self.marks.get(key, 0.0), 3) for key in Timings.model_fields if key != "total_s"}
        out["total_s"] = round(time.perf_counter() - self.start, 3)
        return out


class Worker:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings.from_env()
        self.engine: Engine | None = None
        self.model_info: LocalModel | None = None
        self.voices = VoiceLibrary(self.settings.voices_dir)
        self.voice_clips = VoiceClips()  # encoded library voices, keyed by the version read
        self.presets: dict[str, Preset] = presets()
        self.designer = VoiceDesigner(self.voices)
        self.runaway_stops = {"silence": 0, "repeat": 0}  # chunks the runaway guard ended (/v1/state)
        self._runaway_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._store: S3Store | None = None
        self._slots: GenerationSlots | None = None
        self._slots_lock = threading.Lock()
        self.warmup_report: compile_cache.CacheReport | None = None

    # -- resources ------------------------------------------------------------------

    @property
    def concurrency(self) -> int:
        """Generation slots: jobs this worker generates at once (MAX_CONCURRENCY, or auto);
        lower once the engine planned fewer KV slots or ran out of memory (``Engine.capacity``)."""
        wanted = concurrency_for(self.settings.max_concurrency, pick_device(self.settings.device))
        return min(wanted, self.engine.capacity) if self.engine is not None else wanted

    @property
    def jobs_at_once(self) -> int:
        """Jobs this worker takes at once (both doors use it): the generation slots plus
        IO_JOBS that fetch inputs or deliver results meanwhile (``admission``)."""
        slots = self.concurrency
        return slots + io_jobs_for(self.settings.io_jobs, slots)

    def generation_slots(self) -> GenerationSlots:
        """The slots a job holds while it generates, resized to what ``concurrency`` says now."""
        with self._slots_lock:
            if self._slots is None:
                self._slots = GenerationSlots(self.concurrency)
            self._slots.size = max(1, self.concurrency)
            return self._slots

    @property
    def store(self) -> S3Store | None:
        if self.settings.s3 is None:
            return None
        if self._store is None:
            self._store = S3Store(self.settings.s3, attempts=self.settings.s3_attempts)
        return self._store

    def loop_settings(self) -> LoopSettings:
        """The decode loop's settings for the engine this worker loads (DEVICE, DECODE_COMPILE)."""
        return loop_settings_for(pick_device(self.settings.device), self.settings.decode_compile)

    def compiles(self) -> bool:
        """Whether the engine this worker loads compiles its decode step."""
        return self.loop_settings().compile

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
            check_format(model, SPEC.model_type, "MODEL")
            check_format(tokenizer, SPEC.tokenizer_type, "TOKENIZER")
            device = pick_device(settings.device)
            with timer.measure("load_s"):
                try:
                    self.engine = Engine.load(
                        model.path,
                        tokenizer.path,
                        device,
                        pick_dtype(settings.dtype, device),
                        self.loop_settings(),
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

    # -- one job ----------------------------------------------------------------------

    def prepare(self, job_input: Any) -> PreparedJob:
        """Check a job without waiting for anything and without heavy work (no slot, no model, no
        download, no decoding: the HTTP door runs it before admission): schema and limits, names,
        base64 and its audio headers, the job's reference-audio totals, URL addresses; each library
        voice is read here, once (clip and transcript of one version). Raises ``WorkerError``
        (invalid_input, reference_audio)."""
        request = parse_request(job_input, self.settings)
        return PreparedJob(request, check_voices(request, self.voices, self.voice_clips, self.settings, self.presets))

    @property
    def runaway_limits(self) -> RunawayLimits:
        return RunawayLimits(self.settings.runaway_silence_seconds, self.settings.runaway_repeat_seconds)

    # -- voices: presets, design, listing ------------------------------------------------

    def voice_entries(self) -> list[VoiceEntry]:
        """Every voice a job can name (presets and library), with descriptions."""
        return voice_entries(self.voices, self.presets)

    def design_voice(self, action: DesignVoice, should_stop: Callable[[], bool] | None = None) -> VoiceEntry:
        """Design a voice from a description into the library under its name (``voice_design``)."""
        engine = self.ensure_engine()
        self.designer.design(action.name, action.description, action.seed, self._design_generator(engine, should_stop))
        return VoiceEntry(
            id=action.name, object="voice", name=action.name, description=action.description, source="library"
        )

    def _design_generator(self, engine: Engine, should_stop):
        """One design generation, run like a job's (in a generation slot, with the runaway guard)."""

        def generate(request: SynthesisRequest) -> np.ndarray:
            setup = build_voice_setup(request, resolve=_no_clips)
            result: Synthesis | None = None
            with self.generation_slots().held(should_stop):
                for event in synthesize(
                    engine, request, setup, self.settings.max_new_tokens_cap, should_stop, runaway=self.runaway_limits
                ):
                    if isinstance(event, Synthesis):
                        result = event
            self._count_runaways(result)
            return result.audio[: int(self.settings.max_reference_seconds * engine.sample_rate)]

        return generate

    def design_presets(self, prepared: PreparedJob, engine: Engine, should_stop=None) -> list[str]:
        """The job's preset voices not yet in the library designed into it (once, whoever asks
        first), then read like library voices. Returns the names this call designed."""
        designed = []
        for preset in prepared.voices.presets().values():
            if self.designer.ensure_preset(preset, self._design_generator(engine, should_stop)):
                designed.append(preset.name)
        read_designed(prepared.voices, self.voices, self.voice_clips, self.settings)
        return designed

    def _count_runaways(self, result: Synthesis | None) -> None:
        if result is None or not result.runaways:
            return
        with self._runaway_lock:
            for stop in result.runaways:
                self.runaway_stops[stop.reason] += 1
        for stop in result.runaways:
            log.warning("runaway guard: %s", stop.warning())

    def run_action(
        self, job_input: dict, should_stop: Callable[[], bool] | None = None
    ) -> VoiceEntry | VoiceList | JobFailure:
        """A queue-mode voice action (``contract.voice_actions``): its result, or its failure."""
        try:
            action = parse_action(job_input)
            if isinstance(action, DesignVoice):
                return self.design_voice(action, should_stop)
            return VoiceList(data=self.voice_entries())
        except WorkerError as exc:
            return exc.failure()
        except Cancelled:
            return CANCELLED
        except Exception as exc:
            if is_out_of_memory(exc):
                return out_of_memory().failure()
            log.exception("voice action failed unexpectedly")
            return JobFailure(GENERATION_FAILED, f"unexpected {type(exc).__name__}; the worker is still serving")

    def run(
        self,
        job: dict[str, Any],
        *,
        should_stop: Callable[[], bool] | None = None,
        progress: ProgressFn | None = None,
        emit: EmitFn | None = None,
        on_audio: AudioFn | None = None,
        on_phase: PhaseFn | None = None,
        prepared: PreparedJob | None = None,
    ) -> Outcome:
        """Run one job. With ``stream: true`` and ``emit``, stream items (``stream_items``:
        Ogg Opus pieces as base64) are handed to ``emit`` while they are generated; ``on_audio`` (any door that
        streams itself, e.g. HTTP) gets the same pieces as float32 arrays at the model's rate,
        whatever the job's ``stream`` field. ``on_phase`` hears each phase as it starts;
        ``prepared`` is the job already checked (``prepare``). The return value is always the
        whole outcome (``Outcome``), the streamed pieces included."""
        timer = Timer()
        job_id = str(job.get("id") or "job")
        phase = on_phase or (lambda _name: None)
        if prepared is None and is_action(job.get("input")):
            return self.run_action(job["input"], should_stop)
        designed: list[str] = []
        try:
            if prepared is None:
                prepared = self.prepare(job.get("input"))
            engine = self.ensure_engine(timer)
            phase("inputs")
            with timer.measure("fetch_s"):
                designed = self.design_presets(prepared, engine, should_stop)
                self.fetch(prepared)
            phase("waiting")
            slot_wait = time.perf_counter()
            with self.generation_slots().held(should_stop):
                timer.add("wait_s", time.perf_counter() - slot_wait)
                phase("generating")
                with timer.measure("generate_s"):
                    result, streamed = self.generate(prepared, engine, should_stop, progress, emit, on_audio)
            self._count_runaways(result)
            phase("delivering")
            output = self.render_and_deliver(job_id, prepared.request, result, streamed, timer)
            notes = [f"voice {name!r} designed from its preset description on first use" for name in designed]
            notes += [stop.warning() for stop in result.runaways]
            if notes:
                output.warnings = [*(output.warnings or []), *notes]
            return output
        except WorkerError as exc:
            log.info("job %s failed: %s", job_id, exc.code)
            return exc.failure()
        except Cancelled:
            log.info("job %s was stopped", job_id)
            return CANCELLED
        except Exception as exc:
            if is_out_of_memory(exc):
                log.warning("job %s ran out of GPU memory", job_id)
                return out_of_memory().failure()
            log.exception("job %s failed unexpectedly", job_id)
            return JobFailure(
                GENERATION_FAILED, f"unexpected {type(exc).__name__}; the worker is still serving, try again"
            )

    def fetch(self, prepared: PreparedJob) -> None:
        """Reference audio downloaded (URL, S3) and every clip decoded: network and CPU, no slot."""
        store = self.store
        fetch_voices(prepared.voices, self.settings, store.read_reference if store else None)

    def generate(
        self, prepared: PreparedJob, engine: Engine, should_stop, progress, emit, on_audio
    ) -> tuple[Synthesis, int]:
        """The part that holds a generation slot: the voices' clips encoded, every chunk
        generated (streamed as it comes), the codes decoded to audio. Returns the synthesis
        and the base64 bytes of the stream items already sent."""
        request = prepared.request
        setup = build_voice_setup(request, prepared.voices.resolver(engine, self.voice_clips))
        if request.word_timestamps:  # the aligner's helper process starts while this job generates
            narration.prepare_words()
        streamed = {"n": 0, "bytes": 0}  # stream items sent and their base64 bytes (the aggregate repeats them)
        send_items = request.stream and emit is not None
        items = StreamItems(emit, streamed) if send_items else None
        result: Synthesis | None = None
        for event in synthesize(
            engine,
            request,
            setup,
            self.settings.max_new_tokens_cap,
            should_stop,
            stream=send_items or on_audio is not None,
            runaway=self.runaway_limits,
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
        return result, streamed["bytes"]

    def render_and_deliver(
        self, job_id: str, request: SynthesisRequest, result: Synthesis, streamed_bytes: int, timer: Timer
    ) -> JobOutput:
        """After generation, outside the slot: narration and encoding, then S3 or inline."""
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
        with timer.measure("upload_s"):
            delivered = deliver(
                self.store,
                request.delivery.value,
                request.file_name(job_id),
                data,
                codec.content_type,
                self.settings.inline_max_bytes,
                streamed_bytes,
            )
            subtitles = narration.deliver_subtitles(rendered, request, job_id, delivered, self.store)
        timings = timer.summary()
        extra: dict[str, Any] = {**delivered, **subtitles, **rendered.outputs()}  # segments, loudness when normalised
        if self.engine is not None and self.engine.compile_note:  # the decode step fell back to the plain step
            extra["warnings"] = [self.engine.compile_note]
        output = JobOutput(
            format=request.output_format.value,
            content_type=codec.content_type,
            sample_rate=request.sample_rate,
            duration_s=duration,
            num_chunks=result.num_chunks,
            seed=result.seed,
            model={"repo": self.settings.model.repo, "revision": self.model_info.revision},
            timings=timings,
            rtf=round(timings["generate_s"] / duration, 3) if duration > 0 else None,
            **extra,
        )
        log.info(
            "job %s done: %.2fs of audio, %d chunk(s), %s",
            job_id,
            duration,
            result.num_chunks,
            "s3" if output.s3_uri else "inline",
        )
        return output


def _no_clips(source):
    """A design request names no clip (its speaker has a description only)."""
    raise KeyError(f"a design request has no voice clip to resolve ({source!r})")
