"""The engine's own decode loop for Higgs Audio v2, yielding audio rows as they come.

Same sampling semantics as transformers' ``HiggsAudioV2ForConditionalGeneration.generate``
(``generation_higgs_audio_v2.py``): the delay-pattern logits rules (forced stream-bos
while codebooks start, the stream-eos cascade once one codebook ends), temperature /
top-k / top-p per codebook with transformers' own warpers, multinomial sampling or
argmax, and repetition-aware sampling (RAS) that re-draws a repeated code from the raw
logits. With the same seed it draws the same random numbers in the same order, so its
codes equal ``generate()``'s (tests/model/test_decode_loop.py).

``SequenceState`` holds those rules for one sequence (the scheduler drives many at once).

What it adds: one row per step is handed to the caller (streaming), the state of the
delay rules lives on the device (no host round trip but the one row), and on CUDA a
static KV cache (a few fixed sizes, reused across jobs) with the single-step forward
compiled by ``torch.compile`` (CUDA graphs via mode="reduce-overhead").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from ..contract.errors import Cancelled

log = logging.getLogger(__name__)

STATIC_CACHE_BUCKETS = (1024, 2048, 4096, 8192)


@dataclass(frozen=True)
class LoopSettings:
    static_cache: bool = False
    compile: bool = False
    compile_backend: str | object = "inductor"  # a torch.compile backend name or callable
    compile_mode: str | None = "reduce-overhead"
    fullgraph: bool = False


@dataclass(frozen=True)
class CodeRules:
    """The ids the delay-pattern rules need (from the model's config)."""

    num_codebooks: int
    codebook_size: int
    bos_id: int  # audio stream bos code
    eos_id: int  # audio stream eos code
    audio_bos_token: int  # text token that opens an audio segment
    delay_token: int  # text token that marks delayed (ended) codebooks

    @classmethod
    def from_config(cls, config) -> CodeRules:
        return cls(
            config.num_codebooks,
            config.codebook_size,
            config.audio_stream_bos_id,
            config.audio_stream_eos_id,
            config.audio_bos_token_id,
            config.audio_delay_token_id,
        )


def warpers_for(sampling):
    from transformers.generation.logits_process import (
        LogitsProcessorList,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    warpers = LogitsProcessorList()
    if sampling.temperature > 0:
        if sampling.temperature != 1.0:
            warpers.append(TemperatureLogitsWarper(sampling.temperature))
        if sampling.top_k > 0:
            warpers.append(TopKLogitsWarper(top_k=sampling.top_k, min_tokens_to_keep=1))
        if sampling.top_p < 1.0:
            warpers.append(TopPLogitsWarper(top_p=sampling.top_p, min_tokens_to_keep=1))
    return warpers


class SequenceState:
    """One sequence's per-step rules: from its logits row to its next codes.

    ``sample(logits)`` applies the delay-pattern masks, the warpers, greedy or multinomial
    choice and RAS (re-draw of a repeated code from the raw logits); ``accept(row)`` takes
    the row back on the CPU and answers whether it was the sequence's last. Every random
    draw comes from ``generator`` (the default generator when None), so a sequence's codes
    depend on its own seed only, whatever else runs beside it."""

    def __init__(self, rules: CodeRules, input_ids, prompt_rows, sampling, generator: torch.Generator | None = None):
        self.rules = rules
        self.sampling = sampling
        self.generator = generator
        n, size = rules.num_codebooks, rules.codebook_size
        device = input_ids.device
        self.bos_delay, self.eos_delay = self._delay_state(input_ids)
        self.last_is_delay = bool(input_ids[-1] == rules.delay_token)
        self.not_bos = torch.arange(size, device=device) != rules.bos_id
        self.not_eos = torch.arange(size, device=device) != rules.eos_id
        self.warpers = warpers_for(sampling)
        self.greedy = sampling.temperature <= 0
        self.ras = sampling.ras_win_len > 0 and sampling.ras_win_max_num_repeat > 0
        # the last ras_win_len rows of prompt audio + generated audio (RAS looks back that far)
        self.recent = list(prompt_rows[-sampling.ras_win_len :]) if (self.ras and prompt_rows is not None) else []
        self.steps = 0  # rows accepted so far
        self.shape = (n, size)
        # sequences with equal keys can share one warper call in ``sample_many``
        self.warp_key = (self.greedy, sampling.temperature, sampling.top_k, sampling.top_p)

    def _delay_state(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Initial bos/eos delays, read from the last ``num_codebooks`` prompt tokens."""
        n = self.rules.num_codebooks
        pattern = torch.arange(1, n + 1, device=input_ids.device)
        window = input_ids[-n:]
        bos_at = (window == self.rules.audio_bos_token).nonzero()
        bos = pattern - (n - int(bos_at[0, 0])) if len(bos_at) else torch.zeros_like(pattern)
        eos_at = (window == self.rules.delay_token).nonzero()
        eos = pattern - (n - int(eos_at[0, 0])) if len(eos_at) else pattern.clone()
        return bos, eos

    def sample(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits (num_codebooks * codebook_size,) -> the next codes (num_codebooks,), on the device."""
        raw = logits.reshape(self.shape)
        bos_rows = self.bos_delay >= 0
        scores = raw.masked_fill(bos_rows[:, None] & self.not_bos, float("-inf"))
        self.bos_delay = self.bos_delay - bos_rows.long()
        if self.last_is_delay:
            self.eos_delay = self.eos_delay - 1
        eos_rows = self.eos_delay <= 0
        scores = scores.masked_fill(eos_rows[:, None] & self.not_eos, float("-inf"))
        scores = self.warpers(None, scores)
        if self.greedy:
            codes = scores.argmax(dim=-1)
        else:
            codes = torch.multinomial(scores.softmax(dim=-1), num_samples=1, generator=self.generator).squeeze(1)
        sampling = self.sampling
        if self.ras and self.recent:
            window = torch.stack(self.recent)
            bos, eos = self.rules.bos_id, self.rules.eos_id
            repeats = ((window == codes) & (window != bos) & (window != eos)).sum(dim=0)
            redraw = repeats >= sampling.ras_win_max_num_repeat
            replacement = raw[redraw].softmax(dim=-1).multinomial(1, replacement=True, generator=self.generator)
            codes = codes.clone()
            codes[redraw] = replacement.view(-1)
        if self.ras:
            keep = self.recent[-(sampling.ras_win_len - 1) :] if sampling.ras_win_len > 1 else []
            self.recent = keep + [codes]
        return codes

    def accept(self, row: torch.Tensor) -> bool:
        """Take the sampled row back (on the CPU); True when it is the sequence's last row
        (every codebook ended, or ``max_new_tokens`` rows)."""
        self.steps += 1
        ended = row == self.rules.eos_id
        if bool(ended.all()):
            return True
        self.last_is_delay = bool(ended.any()) or self.last_is_delay
        return self.steps >= self.sampling.max_new_tokens


def sample_many(states: list[SequenceState], logits: torch.Tensor) -> torch.Tensor:
    """``SequenceState.sample`` for many sequences at once: logits (B, num_codebooks *
    codebook_size) -> codes (B, num_codebooks). The same numbers as one ``sample`` per
    sequence (every operation is row-wise; warpers are shared by sequences with the same
    parameters; each random draw is made with the sequence's own generator, in the same
    order). States change only once everything is computed, so on an error a caller can
    fall back to ``sample`` one by one."""
    first = states[0]
    rules = first.rules
    n, size = first.shape
    count = len(states)
    device = logits.device
    raw = logits.reshape(count, n, size)
    bos_delay = torch.stack([state.bos_delay for state in states])
    bos_rows = bos_delay >= 0
    bos_delay = bos_delay - bos_rows.long()
    last_is_delay = torch.tensor([state.last_is_delay for state in states], device=device)
    eos_delay = torch.stack([state.eos_delay for state in states]) - last_is_delay[:, None].long()
    eos_rows = eos_delay <= 0
    # both delay-pattern masks in one pass (the same values as one after the other)
    blocked = (bos_rows[:, :, None] & first.not_bos) | (eos_rows[:, :, None] & first.not_eos)
    scores = raw.masked_fill(blocked, float("-inf"))

    codes = torch.empty((count, n), dtype=torch.long, device=device)
    groups: dict[tuple, list[int]] = {}
    for index, state in enumerate(states):
        groups.setdefault(state.warp_key, []).append(index)
    for members in groups.values():
        lead = states[members[0]]
        picked = torch.tensor(members, device=device) if len(members) < count else None
        group = scores if picked is None else scores[picked]
        warped = lead.warpers(None, group.reshape(-1, size))
        if lead.greedy:
            chosen = warped.argmax(dim=-1).view(len(members), n)
        else:
            probs = warped.softmax(dim=-1).view(len(members), n, size)
            chosen = torch.stack(
                [
                    torch.multinomial(probs[j], num_samples=1, generator=states[i].generator).squeeze(1)
                    for j, i in enumerate(members)
                ]
            )
        if picked is None:
            codes = chosen
        else:
            codes[picked] = chosen

    recents = {}
    ras_members: dict[tuple, list[int]] = {}
    for index, state in enumerate(states):
        if state.ras and state.recent:
            ras_members.setdefault((len(state.recent), state.sampling.ras_win_max_num_repeat), []).append(index)
    if ras_members:
        codes = codes.clone()
        for (_, max_repeat), members in ras_members.items():
            windows = torch.stack([torch.stack(states[i].recent) for i in members])  # (G, window, n)
            mine = codes[torch.tensor(members, device=device)]
            repeats = ((windows == mine[:, None]) & (windows != rules.bos_id) & (windows != rules.eos_id)).sum(dim=1)
            redraw = repeats >= max_repeat
            for j in redraw.any(dim=1).nonzero().view(-1).tolist():  # only those with a repeat draw
                i = members[j]
                probs = raw[i][redraw[j]].softmax(dim=-1)
                again = probs.multinomial(1, replacement=True, generator=states[i].generator)
                codes[i, redraw[j]] = again.view(-1)
    for index, state in enumerate(states):
        if state.ras:
            keep = state.recent[-(state.sampling.ras_win_len - 1) :] if state.sampling.ras_win_len > 1 else []
            recents[index] = keep + [codes[index]]

    for index, state in enumerate(states):  # commit: nothing above changed a state
        state.bos_delay, state.eos_delay = bos_delay[index], eos_delay[index]
        if index in recents:
            state.recent = recents[index]
    return codes


class DecodeLoop:
    def __init__(self, model, settings: LoopSettings | None = None):
        self.model = model
        self.settings = settings or LoopSettings()
        self.rules = CodeRules.from_config(model.config)
        self._caches: dict[int, object] = {}
        self._step = self._eager_step
        if self.settings.compile:
            self._step = torch.compile(
                self._eager_step,
                backend=self.settings.compile_backend,
                mode=self.settings.compile_mode if self.settings.compile_backend == "inductor" else None,
                fullgraph=self.settings.fullgraph,
                dynamic=False,
            )

    # -- cache ------------------------------------------------------------------------

    def _cache_for(self, needed: int):
        from transformers import DynamicCache, StaticCache

        if not self.settings.static_cache:
            return DynamicCache(config=self.model.config)
        size = next((b for b in STATIC_CACHE_BUCKETS if b >= needed), None)
        if size is None:
            log.info("prompt + generation needs %d positions; using a dynamic cache", needed)
            return DynamicCache(config=self.model.config)
        cache = self._caches.get(size)
        if cache is None:
            cache = StaticCache(config=self.model.config, max_cache_len=size)
            self._caches[size] = cache
        else:
            cache.reset()
        return cache

    # -- the forward passes -------------------------------------------------------------

    def _eager_step(self, audio_row: torch.Tensor, position_ids: torch.Tensor, cache) -> torch.Tensor:
        out = self.model(audio_input_ids=audio_row, position_ids=position_ids, cache=cache, use_cache=True)
        return out.logits[:, -1, :].float()

    def _next_logits(self, audio_row: torch.Tensor, position_ids: torch.Tensor, cache) -> torch.Tensor:
        """The compiled step, or the plain one if compiling fails here (a driver or
        compiler problem must not fail every job): logged once, then plain for good."""
        if self._step is self._eager_step:
            return self._eager_step(audio_row, position_ids, cache)
        try:
            return self._step(audio_row, position_ids, cache)
        except torch.OutOfMemoryError:
            raise
        except Exception as exc:
            log.warning("compiled decode step failed (%s: %s); using the plain step", type(exc).__name__, exc)
            self._step = self._eager_step
            return self._eager_step(audio_row, position_ids, cache)

    def _prefill(self, batch: dict, cache) -> torch.Tensor:
        out = self.model(**batch, cache=cache, use_cache=True, logits_to_keep=1)
        return out.logits[:, -1, :].float()

    # -- the loop -------------------------------------------------------------------------

    def sequence(self, batch: dict, sampling, generator: torch.Generator | None = None) -> SequenceState:
        """The sampling state of one sequence with prompt ``batch`` (batch size 1)."""
        prompt_rows = batch["audio_input_ids"][0] if "audio_input_ids" in batch else None
        return SequenceState(self.rules, batch["input_ids"][0], prompt_rows, sampling, generator)

    @torch.inference_mode()
    def rows(
        self,
        batch: dict,
        sampling,
        should_stop: Callable[[], bool] | None = None,
        generator: torch.Generator | None = None,
    ) -> Iterator[torch.Tensor]:
        """Yield each generated row (num_codebooks codes, on the CPU) until the stream
        ends (all codebooks emit stream-eos; that row is yielded too) or
        ``sampling.max_new_tokens`` steps. Raises ``Cancelled`` when asked to stop.
        Random draws come from ``generator`` (the default generator when None)."""
        device = batch["input_ids"].device
        n = self.rules.num_codebooks
        prompt_len = batch["input_ids"].shape[1]
        cache = self._cache_for(prompt_len + sampling.max_new_tokens + 1)
        state = self.sequence(batch, sampling, generator)
        logits = self._prefill(batch, cache)
        while True:
            if should_stop is not None and should_stop():
                raise Cancelled()
            codes = state.sample(logits[0])
            row = codes.to("cpu")
            yield row
            if state.accept(row):
                return
            position = torch.full((1, 1), prompt_len + state.steps - 1, dtype=torch.long, device=device)
            logits = self._next_logits(codes.view(1, 1, n), position, cache)

    def warm_up(self, batch: dict, sampling, steps: int = 12) -> None:
        """Run a few steps so that compilation (if any) happens before the first job."""
        from dataclasses import replace

        for _ in self.rows(batch, replace(sampling, max_new_tokens=steps)):
            pass
