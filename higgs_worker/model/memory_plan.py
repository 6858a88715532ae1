"""How a GPU's memory is shared out: the loaded weights, an explicit reserve, the KV slots.

Pure arithmetic from the model config's shapes and the card's memory, so it can be checked
for every card we deploy on without one (tests/model/test_memory_plan.py: 24, 48, 80 and
141 GB cards with the real config's shapes). The engine calls ``plan`` once, after loading,
with the card's total memory and what is in use then (``torch.cuda.mem_get_info``: the
weights, the audio tokenizer, the CUDA context), and logs ``MemoryPlan.describe()``::

    free      = total - in use after loading
    reserve   = codec + prefill + solo lane + solo prompt cache + graph pools + margin  (fixed)
    slots     = slots x length x (KV per position + step workspace per position)
                + one slot-length prompt cache                              (grow together)
    slots <= min(free - reserve - MIN_SPARE_BYTES, free x KV_CACHE_MEMORY_FRACTION)
    length    = all that fits, up to MAX_SLOT_TOKENS; with fewer than MIN_SLOT_TOKENS each,
                fewer slots (the log says so)

A decode step attends over the live length only (higgs_worker/model/slot_attention.py), so a
longer slot costs memory, not step time: the slots take what the reserve leaves, up to
``MAX_SLOT_TOKENS`` positions (a 100-word chunk with two chunks of context and a 60-second
reference fits), and long-form jobs stay in the batch on every card with room for that.

The parts, from the shapes and coefficients measured with ``python benchmarks/memory_coefficients.py``
(peak live tensor bytes of the real-size modules on the CPU; the device check measures them on a GPU):

- codec: the audio tokenizer's workspace. The engine runs one encode or decode on the GPU at
  a time (``CODEC_CALLS_AT_ONCE``; calls from the jobs' threads would run one after another on
  the one CUDA stream anyway) and decodes long chunks in windows of ``CODEC_WINDOW_FRAMES``,
  so the reserve is the larger of encoding MAX_REFERENCE_SECONDS of reference audio
  (``ENCODE_BYTES_PER_SECOND``) and decoding one window (``DECODE_BYTES_PER_FRAME``); the
  streaming windows several jobs need at once are decoded in one call of at most as many
  frames (``CODEC_BATCH_FRAMES``, model/codec_batch.py).
  Without both limits 16 jobs decoding 86-second chunks at once would want about 19 GB.
- prefill: the activations of one ``PREFILL_TOKENS``-token prefill piece; the prompt's own
  KV cache (at most a slot's length before it moves into a slot) grows with the slots.
- solo lane: ``SOLO_LANES`` preallocated row(s) for a sequence too long for a slot, twice a
  slot's length within ``SOLO_POSITIONS`` (16384 where the slots get their full length, else
  8192; a longer sequence still runs in its own cache: it uses the margin, and an
  out-of-memory there fails only that job).
- solo prompt cache: a solo job's prompt is prefilled into its own cache before it moves into
  the solo lane, and may be as long as the solo lane (a slot-length prompt cache is counted with
  the slots); the reserve holds the difference up to the solo length.
- graph pools: what CUDA-graph trees keep in their private memory pool (the recorded steps'
  intermediates and outputs) and the fp32 audio tokenizer's cuDNN workspaces: a stated
  allowance (``GRAPH_POOL_BYTES``, ``CUDNN_WORKSPACE_BYTES``) until the GPU check measures it
  (scripts/gpu_check.py logs ``memory_reserved()`` after warm-up and under a full batch beside
  this plan's prediction).
- step workspace (per slot position, so it shrinks the slots): the attention's scores, one
  float per head per live position, one layer at a time (keys and values are read in place:
  the slot attention packs grouped-query heads instead of repeating keys and values for every
  head, which cost 12 kB per position before).
- margin: allocator fragmentation, cuBLAS/cuDNN workspaces: ``MARGIN_SHARE`` of the card plus
  ``MARGIN_BYTES``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .spec import SPEC

GB = 1e9

CPU_SLOT_TOKENS = 8192  # per-slot length on the CPU (no plan; longer sequences run in their own cache)
MAX_SLOT_TOKENS = 8192  # per-slot length cap on CUDA: a long-form chunk with its context (docs/tuning.md)
MIN_SLOT_TOKENS = 512  # below this, fewer slots (each longer) instead
SLOT_ROUNDING = 128

CODEC_CALLS_AT_ONCE = 1  # audio tokenizer encodes/decodes on the GPU at a time (engine)
CODEC_WINDOW_FRAMES = 375  # longest decode in one call (15 s); longer chunks decode in windows
CODEC_CONTEXT_FRAMES = 15  # frames around a window (left context and held right edge)
CODEC_BATCH_FRAMES = CODEC_WINDOW_FRAMES + 2 * CODEC_CONTEXT_FRAMES  # one decode call's frames, all windows
# The release's measured coefficients and the scheduler's prefill piece (model/spec.py).
DECODE_BYTES_PER_FRAME = SPEC.decode_bytes_per_frame
ENCODE_BYTES_PER_SECOND = SPEC.encode_bytes_per_second
PREFILL_TOKENS = SPEC.prefill_tokens
PREFILL_BYTES_PER_TOKEN_HIDDEN = SPEC.prefill_bytes_per_token_hidden
SOLO_LANES = 1  # sequences in the solo lane at once on CUDA (the scheduler holds others back)
SOLO_POSITIONS = (16384, 8192)  # the solo lane's length: the first whose slots get half of it
MARGIN_SHARE = 0.04
MARGIN_BYTES = 256e6
GRAPH_POOL_BYTES = 512e6  # stated, not yet measured: CUDA-graph trees' pool (docs/gpu-check.md)
CUDNN_WORKSPACE_BYTES = 256e6  # stated: the audio tokenizer's convolutions (fp32, cuDNN)
MIN_SPARE_BYTES = 1e9  # left over after everything planned: a plan keeps it (else fewer slots)


@dataclass(frozen=True)
class ModelShapes:
    """The sizes of the text model that decide memory (from its config and dtype)."""

    layers: int
    kv_heads: int
    attention_heads: int
    head_dim: int
    hidden: int
    dtype_bytes: int

    @classmethod
    def from_config(cls, config, dtype_bytes: int) -> ModelShapes:
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
        return cls(
            text.num_hidden_layers,
            text.num_key_value_heads,
            text.num_attention_heads,
            head_dim,
            text.hidden_size,
            dtype_bytes,
        )

    @property
    def kv_per_position(self) -> int:
        """Key + value bytes of one position over all layers."""
        return 2 * self.layers * self.kv_heads * self.head_dim * self.dtype_bytes

    @property
    def step_per_position(self) -> int:
        """The batched step's workspace per slot position: one layer's attention scores and
        their softmax (fp32) for every head."""
        return 2 * self.attention_heads * 4


@dataclass(frozen=True)
class Reserve:
    """Memory kept out of the KV slots, in bytes."""

    codec: int
    prefill: int
    solo: int
    margin: int
    solo_prompt: int = 0  # a solo job's prompt cache beyond a slot's length
    graphs: int = 0  # CUDA-graph pools and cuDNN workspaces (stated allowance)

    @property
    def total(self) -> int:
        return self.codec + self.prefill + self.solo + self.margin + self.solo_prompt + self.graphs


def codec_workspace(max_reference_seconds: float) -> int:
    """One audio tokenizer call at its largest: a reference encode or a window decode."""
    encode = ENCODE_BYTES_PER_SECOND * max_reference_seconds
    decode = DECODE_BYTES_PER_FRAME * CODEC_BATCH_FRAMES
    return int(CODEC_CALLS_AT_ONCE * max(encode, decode))


def reserve_for(
    shapes: ModelShapes,
    total: int,
    max_reference_seconds: float = 60.0,
    solo_length: int = SOLO_POSITIONS[-1],
    slot_length: int = 0,
) -> Reserve:
    """The fixed parts; ``slot_length``: the slots' (their prompt cache is counted with them, the
    solo prompt cache reserves the rest up to ``solo_length``)."""
    return Reserve(
        codec=codec_workspace(max_reference_seconds),
        prefill=PREFILL_TOKENS * shapes.hidden * PREFILL_BYTES_PER_TOKEN_HIDDEN * shapes.dtype_bytes,
        solo=SOLO_LANES * solo_length * shapes.kv_per_position,
        margin=int(MARGIN_SHARE * total + MARGIN_BYTES),
        solo_prompt=max(0, solo_length - slot_length) * shapes.kv_per_position,
        graphs=int(GRAPH_POOL_BYTES + CUDNN_WORKSPACE_BYTES),
    )


@dataclass(frozen=True)
class MemoryPlan:
    total: int  # the card's memory
    in_use: int  # in use after loading (weights, audio tokenizer, CUDA context)
    reserve: Reserve
    slots: int
    length: int  # positions per slot
    shapes: ModelShapes
    fraction: float  # KV_CACHE_MEMORY_FRACTION
    solo_length: int = SOLO_POSITIONS[-1]  # positions of a solo-lane row
    asked: int = 0  # the slots asked for (MAX_CONCURRENCY); more than ``slots``: fewer planned

    @property
    def free(self) -> int:
        return self.total - self.in_use

    @property
    def kv_bytes(self) -> int:
        return self.slots * self.length * self.shapes.kv_per_position

    @property
    def step_bytes(self) -> int:
        return self.slots * self.length * self.shapes.step_per_position

    @property
    def prompt_cache_bytes(self) -> int:
        return self.length * self.shapes.kv_per_position

    @property
    def planned(self) -> int:
        return self.kv_bytes + self.step_bytes + self.prompt_cache_bytes + self.reserve.total

    @property
    def spare(self) -> int:
        """What is left after everything planned (negative: the plan does not fit)."""
        return self.free - self.planned

    @property
    def fits(self) -> bool:
        return self.spare >= 0 and self.length >= MIN_SLOT_TOKENS

    @property
    def resident(self) -> int:
        """What the worker holds once warmed up and idle, by this plan: in use after loading,
        the KV slots, the solo lane and the graph pools (``memory_reserved`` comes near it)."""
        return self.in_use + self.kv_bytes + self.reserve.solo + self.reserve.graphs

    @property
    def busy(self) -> int:
        """At a full batch: also the step workspace, prompt caches, prefill and codec at once."""
        return self.in_use + self.planned - self.reserve.margin

    def describe(self) -> str:
        r = self.reserve
        return (
            f"memory plan: {self.total / GB:.1f} GB card, {self.in_use / GB:.1f} GB in use after loading; "
            f"KV {self.slots} slots x {self.length} positions = {self.kv_bytes / GB:.2f} GB "
            f"(+ step workspace {self.step_bytes / GB:.2f} GB, prompt cache {self.prompt_cache_bytes / GB:.2f} GB); "
            f"reserve {r.total / GB:.2f} GB (audio tokenizer {r.codec / GB:.2f}, prefill {r.prefill / GB:.2f}, "
            f"solo lane {r.solo / GB:.2f} for {self.solo_length} positions and its prompt cache "
            f"{r.solo_prompt / GB:.2f}, graph pools {r.graphs / GB:.2f}, margin {r.margin / GB:.2f}); "
            f"spare {self.spare / GB:.2f} GB (kept: {MIN_SPARE_BYTES / GB:.1f})"
            + (
                f"; {self.slots} slots, fewer than the {self.asked} asked (MAX_CONCURRENCY): no room for "
                f"{self.asked} of {MIN_SLOT_TOKENS} positions"
                if self.asked > self.slots
                else ""
            )
        )


def plan(
    shapes: ModelShapes,
    total: int,
    in_use: int,
    concurrency: int,
    fraction: float = 0.85,
    max_reference_seconds: float = 60.0,
) -> MemoryPlan:
    """KV slots for ``concurrency`` jobs (one slot each, up to ``MAX_SLOT_TOKENS`` positions)
    in what is left after the reserve. With too little room for ``MIN_SLOT_TOKENS`` each,
    fewer slots (halving); ``fits`` is False when even one slot does not fit. The solo lane is
    the first of ``SOLO_POSITIONS`` at most twice the slots' length (longer than a slot is its
    point; what it does not take goes to the slots)."""
    free = total - in_use
    per_position = shapes.kv_per_position + shapes.step_per_position
    for solo_length in SOLO_POSITIONS:
        # with slot_length 0 the reserve holds one prompt cache of the solo length, the larger of
        # the two (a slot-length one and the solo one beyond it): the slots pay for no other
        reserve = reserve_for(shapes, total, max_reference_seconds, solo_length)
        budget = max(0, free - reserve.total - int(MIN_SPARE_BYTES))
        share = int(free * fraction)  # KV_CACHE_MEMORY_FRACTION: the slots and their prompt cache

        def length_for(count: int, budget: int = budget, share: int = share, cap: int = solo_length) -> int:
            fitting = min(budget // (count * per_position), share // (count * per_position + shapes.kv_per_position))
            return min(MAX_SLOT_TOKENS, cap, fitting // SLOT_ROUNDING * SLOT_ROUNDING)

        slots = max(1, concurrency)
        length = length_for(slots)
        while length < MIN_SLOT_TOKENS and slots > 1:
            slots = max(1, slots // 2)
            length = length_for(slots)
        if 2 * length >= solo_length:
            break
    length = max(SLOT_ROUNDING, length)
    reserve = reserve_for(shapes, total, max_reference_seconds, solo_length, length)
    return MemoryPlan(total, in_use, reserve, slots, length, shapes, fraction, solo_length, max(1, concurrency))
