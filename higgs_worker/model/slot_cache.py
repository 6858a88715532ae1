"""A KV cache for many sequences at once: one fixed row ("slot") per sequence.

Per layer, keys and values of shape (slots, kv_heads, length + 1, head_dim), allocated once:
``length`` usable columns and one scratch column (``scratch``) that no sequence uses (warm-up
rows write there). Before each batched decode step the scheduler sets ``positions[i]``, the
column that row i's new key/value goes to (its own length so far); ``update`` writes each row
there and returns the first B rows (views: nothing is copied). The step attends to them through
a (B, 1, 1, L) mask that opens columns 0..positions[i] of row i among the first L (``mask``):
L is the live length, the longest active sequence rounded up to a length bucket
(higgs_worker/model/lane.py), and the attention function (``slot_attention``) reads only those L
columns. Active sequences stay compact at the front: on retirement the last active row is moved
into the hole (``move``), so a step runs on exactly the active rows (on CUDA padded to a
batch-size bucket with free rows, whose writes land in their own unused slot). A newcomer is
prefilled alone in a ``DynamicCache`` and its prompt's keys/values are copied into a free slot
(``load``).

A slot's columns past its sequence's length are zero whenever a sequence takes it (``load``
and ``move`` clear them): the mask is additive, so a stale inf or NaN left there by the
slot's previous sequence (fp16 overflows) would otherwise reach the new sequence through
``0 x NaN`` in the attention's weighted sum.

The model accepts a prepared 4D mask unchanged (``masking_utils._preprocess_mask_arguments``)
and never asks this cache for lengths when ``position_ids`` are given.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import Cache, CacheLayerMixin

from . import torch_features


class SlotLayer(CacheLayerMixin):
    is_compileable = True
    is_sliding = False

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, owner: SlotCache):
        super().__init__()
        self.keys, self.values = keys, values
        self.owner = owner
        self.is_initialized = True

    def lazy_initialization(self, key_states, value_states) -> None:  # allocated up front
        pass

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        batch = key_states.shape[0]
        rows = self.owner.rows[:batch]
        positions = self.owner.positions[:batch]
        self.keys[rows, :, positions] = key_states[:, :, 0]
        self.values[rows, :, positions] = value_states[:, :, 0]
        return self.keys[:batch], self.values[:batch]

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.keys.shape[2], 0

    def get_seq_length(self) -> int:
        return 0

    def get_max_length(self) -> int:
        return self.keys.shape[2]


class SlotCache(Cache):
    def __init__(self, config, slots: int, length: int, dtype: torch.dtype, device: str | torch.device):
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        heads = text.num_key_value_heads
        head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
        self.slots, self.length = slots, length
        self.scratch = length  # the column after the usable ones
        shape = (slots, heads, length + 1, head_dim)
        self.rows = torch.arange(slots, device=device)
        self.positions = torch.zeros(slots, dtype=torch.long, device=device)
        self.columns = torch.arange(length + 1, device=device)
        layers = [
            SlotLayer(
                torch.zeros(shape, dtype=dtype, device=device), torch.zeros(shape, dtype=dtype, device=device), self
            )
            for _ in range(text.num_hidden_layers)
        ]
        super().__init__(layers=layers)
        if torch.device(device).type == "cuda":  # fixed addresses for CUDA graphs
            for layer in layers:
                torch_features.mark_static_address(layer.keys)
                torch_features.mark_static_address(layer.values)
            torch_features.mark_static_address(self.positions)
            torch_features.mark_static_address(self.columns)

    @property
    def nbytes(self) -> int:
        return sum(layer.keys.nbytes + layer.values.nbytes for layer in self.layers)

    def mask(self, batch: int, columns: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """(batch, 1, 1, len(columns)) additive mask: row i sees columns 0..positions[i] of
        ``columns`` (the first L of ``self.columns``)."""
        allowed = columns[None, :] <= self.positions[:batch, None]
        blocked = torch.full((), torch.finfo(dtype).min, dtype=dtype, device=allowed.device)
        zero = torch.zeros((), dtype=dtype, device=allowed.device)
        return torch.where(allowed, zero, blocked)[:, None, None, :]

    def load(self, slot: int, prompt_cache: Cache, length: int) -> None:
        """Copy a batch-1 prompt cache's first ``length`` positions into ``slot`` (the rest zero)."""
        for layer, source in zip(self.layers, prompt_cache.layers, strict=True):
            layer.keys[slot, :, :length] = source.keys[0, :, :length]
            layer.values[slot, :, :length] = source.values[0, :, :length]
            layer.keys[slot, :, length:] = 0
            layer.values[slot, :, length:] = 0

    def move(self, source: int, target: int, length: int) -> None:
        """Move a slot's first ``length`` positions to another slot (compaction; the rest zero)."""
        for layer in self.layers:
            layer.keys[target, :, :length] = layer.keys[source, :, :length]
            layer.values[target, :, :length] = layer.values[source, :, :length]
            layer.keys[target, :, length:] = 0
            layer.values[target, :, length:] = 0
