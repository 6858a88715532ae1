"""The model on the device: load once, encode reference audio, generate codes, decode.

Backend: transformers' native Higgs Audio v2 (``HiggsAudioV2ForConditionalGeneration``
and ``HiggsAudioV2TokenizerModel``). The processor's parts are loaded from the two
local folders; the checkpoint's ``processor_config.json`` (which names a hub repo for
the audio tokenizer) is never followed.

On CUDA the KV slots are sized by the memory plan (``memory_plan``: after loading, with an
explicit reserve), the audio tokenizer runs one encode or decode at a time, and chunks are
decoded in windows of at most ``CODEC_WINDOW_FRAMES`` frames, so its workspace is bounded.
"""

from __future__ import annotations

import logging
import math
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch

from . import memory_plan
from .codec_batch import CodecBatcher
from .decode_loop import DecodeLoop, LoopSettings
from .prompt import SYSTEM_SINGLE, AudioClip, Prompt, Turn, tokenize
from .runaway import RunawayGuard
from .scheduler import Scheduler
from .slot_attention import use_slot_attention
from .spec import SPEC, ModelSpec
from .streaming import StreamingDecoder, decode_in_windows

log = logging.getLogger(__name__)

SILENCE_NOISE_DBFS = -60.0  # the noise floor encoded with digital silence to learn the silence codes


@dataclass(frozen=True)
class Sampling:
    temperature: float = 1.0
    top_p: float = 0.95
    top_k: int = 50
    ras_win_len: int = 7
    ras_win_max_num_repeat: int = 2
    max_new_tokens: int = 1000


def peak_rss_mb() -> float:
    """This process's peak resident host memory so far, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def pick_device(setting: str) -> str:
    if setting and setting != "auto":
        return setting
    return "cuda" if torch.cuda.is_available() else "cpu"


def loop_settings_for(device: str, compile_setting: str = "auto") -> LoopSettings:
    """Static KV cache + compiled single-step forward on CUDA; the plain path elsewhere."""
    on_cuda = device.startswith("cuda")
    compile_on = on_cuda if compile_setting in ("", "auto") else compile_setting in ("1", "true", "yes", "on")
    return LoopSettings(static_cache=on_cuda or compile_on, compile=compile_on)


def concurrency_for(setting: int | None, device: str) -> int:
    """MAX_CONCURRENCY, or auto: 16 jobs at once on CUDA, 1 on the CPU."""
    if setting:
        return max(1, int(setting))
    return 16 if device.startswith("cuda") else 1


def pick_dtype(setting: str, device: str) -> torch.dtype:
    if setting and setting != "auto":
        return {
            "bfloat16": torch.bfloat16,
            "bf16": torch.bfloat16,
            "float16": torch.float16,
            "fp16": torch.float16,
            "float32": torch.float32,
            "fp32": torch.float32,
        }[setting]
    return torch.bfloat16 if device.startswith("cuda") else torch.float32


class Engine:
    def __init__(
        self,
        model,
        audio_tokenizer,
        tokenizer,
        feature_extractor,
        device: str,
        loop_settings: LoopSettings | None = None,
        max_concurrency: int | None = None,
        kv_cache_memory_fraction: float = 0.85,
        max_reference_seconds: float = 60.0,
    ):
        self.model = model
        use_slot_attention(model)  # decode steps attend over the live length, GQA packed
        self.loop = DecodeLoop(model, loop_settings)
        self.audio_tokenizer = audio_tokenizer
        self.tokenizer = tokenizer
        self.feature_extractor = feature_extractor
        self.device = device
        config = model.config
        self.spec: ModelSpec = SPEC.from_configs(config, audio_tokenizer.config)  # the release, as loaded
        self.num_codebooks = self.spec.num_codebooks
        self.bos_id = config.audio_stream_bos_id
        self.eos_id = config.audio_stream_eos_id
        self.code_limit = audio_tokenizer.config.codebook_size
        self.sample_rate = self.spec.sample_rate
        self.samples_per_frame = audio_tokenizer.config.hop_length
        from transformers import HiggsAudioV2Processor

        # The processor built from its parts (never from the checkpoint's processor_config,
        # which names a hub repo): its delay-pattern helpers and audio placeholders.
        self.processor = HiggsAudioV2Processor(
            feature_extractor,
            tokenizer,
            audio_tokenizer,
            audio_delay_token=tokenizer.convert_ids_to_tokens(config.audio_delay_token_id),
            audio_stream_bos_id=self.bos_id,
            audio_stream_eos_id=self.eos_id,
        )
        self.concurrency = concurrency_for(max_concurrency, device)
        self.kv_cache_memory_fraction = kv_cache_memory_fraction
        self.max_reference_seconds = max_reference_seconds
        self.memory_plan: memory_plan.MemoryPlan | None = None
        self._scheduler: Scheduler | None = None
        self._scheduler_lock = threading.Lock()
        self._tokenize_lock = threading.Lock()  # a fast tokenizer is not safe to call from many threads
        # the audio tokenizer's workspace is reserved for so many calls at once (memory_plan)
        on_cuda = device.startswith("cuda")
        self._codec_calls = threading.BoundedSemaphore(memory_plan.CODEC_CALLS_AT_ONCE) if on_cuda else nullcontext()
        # windows due at once are decoded in one call (within one window's frames: the plan's reserve)
        self.codec = CodecBatcher(self._decode_batch, memory_plan.CODEC_BATCH_FRAMES)
        # the runaway guard's test of a silent frame, learned once from the audio tokenizer
        self.silence_codes: frozenset[int] = self._learn_silence_codes()

    @property
    def scheduler(self) -> Scheduler:
        """The one thread that drives the model for every job: built on first use (its KV slots
        are sized then, from the memory left after loading), the same object on every later read."""
        with self._scheduler_lock:
            if self._scheduler is None:
                self._scheduler = self._new_scheduler()
            return self._scheduler

    def build_scheduler(
        self, slots: int | None = None, slot_len: int | None = None, solo_lane: bool = True
    ) -> Scheduler:
        """A new scheduler in place of the current one, with the loop's settings as they are now
        and the memory plan's sizes, or ``slots`` x ``slot_len`` where given (the GPU check's
        sizes; tests that change the compile settings of a built engine); no solo lane with
        ``solo_lane=False``. Jobs in flight keep the old one."""
        with self._scheduler_lock:
            self._scheduler = self._new_scheduler(slots, slot_len, solo_lane)
            return self._scheduler

    def _new_scheduler(
        self, slots: int | None = None, slot_len: int | None = None, solo_lane: bool = True
    ) -> Scheduler:
        planned_slots, planned_len, solo_lanes, solo_len = self._plan_slots()
        if not solo_lane:
            solo_lanes = solo_len = None
        return Scheduler(
            self.loop,
            slots or planned_slots,
            slot_len or planned_len,
            compile_step=self.loop.settings.compile,
            solo_lanes=solo_lanes,
            solo_len=solo_len,
        )

    def _plan_slots(self) -> tuple[int, int, int | None, int | None]:
        """(slots, positions per slot, solo lanes, positions per solo lane): the memory plan on
        CUDA (logged), a fixed length on the CPU (no solo lane: a longer sequence keeps its own
        cache)."""
        if not self.device.startswith("cuda"):
            log.info(
                "KV cache: %d slots x %d positions (CPU); longer sequences run in their own cache",
                self.concurrency,
                memory_plan.CPU_SLOT_TOKENS,
            )
            return self.concurrency, memory_plan.CPU_SLOT_TOKENS, None, None
        dtype_bytes = next(self.model.parameters()).element_size()
        free, total = torch.cuda.mem_get_info(torch.device(self.device))
        plan = memory_plan.plan(
            memory_plan.ModelShapes.from_config(self.model.config, dtype_bytes),
            total,
            total - free,
            self.concurrency,
            self.kv_cache_memory_fraction,
            self.max_reference_seconds,
        )
        self.memory_plan = plan
        log.info(
            "%s; sequences longer than a slot take the solo lane (%d at once)", plan.describe(), memory_plan.SOLO_LANES
        )
        if not plan.fits:
            log.warning(
                "the model leaves too little GPU memory for its reserve and KV slots on this card; expect "
                "out_of_memory failures (use a GPU with 24 GB or more, or lower MAX_CONCURRENCY)"
            )
        return plan.slots, plan.length, memory_plan.SOLO_LANES, plan.solo_length

    @property
    def capacity(self) -> int:
        """Jobs the scheduler takes at once now: the planned slots, lowered after an out-of-memory."""
        return self._scheduler.capacity if self._scheduler is not None else self.concurrency

    @property
    def compile_fallbacks(self) -> int:
        """Times the compiled decode step fell back to the plain step (0: as configured)."""
        if self._scheduler is None:
            return 0
        return sum(step.fallbacks for step in self._scheduler.steps_compiled)

    @property
    def compile_note(self) -> str | None:
        """A line saying the decode step runs uncompiled and why, or None."""
        if self._scheduler is None:
            return None
        notes = [step.note for step in self._scheduler.steps_compiled if step.note]
        return "; ".join(notes) or None

    @classmethod
    def load(
        cls,
        model_dir: str,
        tokenizer_dir: str,
        device: str,
        dtype: torch.dtype,
        loop_settings: LoopSettings | None = None,
        max_concurrency: int | None = None,
        kv_cache_memory_fraction: float = 0.85,
        max_reference_seconds: float = 60.0,
    ) -> Engine:
        from transformers import (
            AutoTokenizer,
            DacFeatureExtractor,
            HiggsAudioV2ForConditionalGeneration,
            HiggsAudioV2TokenizerModel,
        )

        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        try:
            features = DacFeatureExtractor.from_pretrained(model_dir)
        except OSError:
            features = DacFeatureExtractor.from_pretrained(tokenizer_dir)
        # device_map: safetensors are read straight onto the device (no host copy of the weights)
        rss_before = peak_rss_mb()
        started = time.perf_counter()
        audio_tokenizer = HiggsAudioV2TokenizerModel.from_pretrained(
            tokenizer_dir, dtype=torch.float32, device_map=device
        ).eval()
        model = HiggsAudioV2ForConditionalGeneration.from_pretrained(model_dir, dtype=dtype, device_map=device).eval()
        log.info(
            "loaded model (%.0fM parameters, %s, %s) and audio tokenizer in %.1fs; peak host RSS %.0f MB "
            "(%.0f MB before loading)",
            sum(p.numel() for p in model.parameters()) / 1e6,
            device,
            dtype,
            time.perf_counter() - started,
            peak_rss_mb(),
            rss_before,
        )
        return cls(
            model,
            audio_tokenizer,
            tokenizer,
            features,
            device,
            loop_settings,
            max_concurrency,
            kv_cache_memory_fraction,
            max_reference_seconds,
        )

    # -- audio codes <-> waveforms -------------------------------------------------

    @torch.inference_mode()
    def encode_audio(self, waveform: np.ndarray) -> AudioClip:
        """Mono float32 at the model's sample rate -> codes (num_codebooks, frames)."""
        features = self.feature_extractor(waveform, sampling_rate=self.sample_rate, return_tensors="pt")
        with self._codec_calls:
            values = features["input_values"].to(self.device, torch.float32)
            codes = self.audio_tokenizer.encode(values).audio_codes[0]
            return AudioClip(codes=codes[: self.num_codebooks].to("cpu"))

    def _learn_silence_codes(self) -> frozenset[int]:
        """First-codebook codes the audio tokenizer gives silence: one second of digital
        silence and one of a -60 dBFS noise floor, encoded (at load: ``silence_codes``)."""
        quiet = np.zeros(self.sample_rate, dtype=np.float32)
        rng = np.random.default_rng(0)
        floor = (rng.standard_normal(self.sample_rate) * 10 ** (SILENCE_NOISE_DBFS / 20)).astype(np.float32)
        found: set[int] = set()
        for waveform in (quiet, floor):
            found.update(int(code) for code in self.encode_audio(waveform).codes[0])
        return frozenset(found)

    def runaway_guard(self, silence_seconds: float, repeat_seconds: float) -> RunawayGuard:
        """A guard for one chunk (0 seconds: that test off)."""
        return RunawayGuard(
            self.silence_codes if silence_seconds > 0 else frozenset(),
            round(silence_seconds * self.spec.frames_per_second),
            round(repeat_seconds * self.spec.frames_per_second),
            self.num_codebooks,
            self.bos_id,
            self.eos_id,
        )

    def decode_codes(self, codes: torch.Tensor) -> np.ndarray:
        """Codes (num_codebooks, frames) -> mono float32 waveform; in windows of at most
        ``CODEC_WINDOW_FRAMES`` frames when longer (joined like the stream's pieces)."""
        if codes.shape[1] == 0:
            return np.zeros(0, dtype=np.float32)
        return decode_in_windows(self._decode_piece, codes, self.samples_per_frame, memory_plan.CODEC_WINDOW_FRAMES)

    def _decode_piece(self, codes: torch.Tensor) -> np.ndarray:
        return self.codec.decode(codes)

    @torch.inference_mode()
    def _decode_batch(self, codes: torch.Tensor) -> np.ndarray:
        """Codes (batch, num_codebooks, frames) -> audio (batch, samples)."""
        with self._codec_calls:
            codes = codes.to(self.device)  # in range: undo_delay or the audio tokenizer made them
            audio = self.audio_tokenizer.decode(codes).audio_values
            return audio.reshape(codes.shape[0], -1).float().cpu().numpy()

    # -- generation -----------------------------------------------------------------

    def batch_for(self, prompt: Prompt) -> dict:
        with self._tokenize_lock:
            batch = tokenize(prompt, self.processor)
        return {key: value.to(self.device) for key, value in batch.items()}

    def generate_rows(
        self,
        prompt: Prompt,
        sampling: Sampling,
        should_stop: Callable[[], bool] | None = None,
        generator: torch.Generator | None = None,
    ) -> Iterator[torch.Tensor]:
        """Yield each generated row (delay pattern) as it comes, from the scheduler that
        batches every job's decode steps. Random draws come from ``generator`` (a fresh
        one seeded 0 when None), so the rows depend on it alone."""
        if generator is None:
            generator = self.generator(0)
        yield from self.scheduler.generate(self.batch_for(prompt), sampling, generator, should_stop)

    def generator(self, seed: int) -> torch.Generator:
        """A job's own random generator on the model's device."""
        return torch.Generator(device=self.device).manual_seed(seed)

    def warm_up(self, steps: int = 16) -> None:
        """Compile / capture the batched decode step at every batch-size bucket it will use,
        then a short generation through the scheduler (prefill, slot load, sampling)."""
        self.scheduler.warm_up()
        prompt = Prompt(SYSTEM_SINGLE, ["Audio is recorded from a quiet room."], [Turn("user", "Warm up.")])
        for _ in self.generate_rows(prompt, Sampling(max_new_tokens=steps)):
            pass

    def streaming_decoder(self) -> StreamingDecoder:
        return StreamingDecoder(
            self.decode_codes, self.undo_delay, self.num_codebooks, self.samples_per_frame, self.bos_id, self.eos_id
        )

    def no_codes(self) -> torch.Tensor:
        return torch.zeros((self.num_codebooks, 0), dtype=torch.long)

    def codes_from_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """Generated delayed rows (steps, num_codebooks) -> codes (num_codebooks, frames)."""
        rows = rows.to("cpu")
        if rows.shape[0] and bool((rows[0] == self.bos_id).all()):
            rows = rows[1:]
        ended = (rows == self.eos_id).all(dim=1).nonzero()
        if len(ended):
            rows = rows[: int(ended[0, 0])]
        return self.undo_delay(rows)

    def undo_delay(self, rows: torch.Tensor) -> torch.Tensor:
        """Delayed rows (steps, num_codebooks) -> codes (num_codebooks, frames), in the audio
        tokenizer's code range (stream bos/eos left in the last rows are clamped)."""
        if rows.shape[0] < self.num_codebooks:  # no complete frame (the processor would fail on it)
            return self.no_codes()
        return self.processor.revert_delay_pattern(rows).transpose(0, 1).clamp(0, self.code_limit - 1)

    def steps_for(self, seconds: float, cap: int) -> int:
        """Bound generation steps for ``seconds`` of speech (synthesis estimates them from the
        text and the voice's pace: higgs_worker/text/pace.py), plus the delay-pattern steps and
        a second; at most ``cap``."""
        return min(cap, int(math.ceil(seconds * self.spec.frames_per_second)) + 2 * self.num_codebooks + 25)
