"""The decode step's attention: one query token per sequence against its live keys only.

Registered in transformers' attention interface as ``slot_sdpa`` and set on the model by the
engine. For a decode step (one query token, a prepared ``(B, 1, 1, L)`` mask, the slot cache's
keys and values of ``(B, kv_heads, capacity, head_dim)``) it

- attends over the first ``L`` columns only, ``L`` being the mask's length (the scheduler sizes
  the mask to a length bucket of the longest live sequence): the keys are a view, never copied;
- packs grouped-query attention: the ``heads`` query rows are viewed as
  ``(B, kv_heads, heads / kv_heads, head_dim)`` against ``(B, kv_heads, L, head_dim)``, one
  SDPA call, instead of transformers' ``repeat_kv``, which under ``torch.compile`` (and with any
  mask) copies every key and value out to all heads (about 12 kB per slot position per layer
  at full size).

This is transformers' own ``pack_gqa`` path (``integrations/sdpa_attention.py``, taken there only
when not compiling); every other call (prefill, ``generate()``, a call without a mask) goes to
transformers' ``sdpa_attention_forward`` unchanged, so prompts and the reference path compute
what they computed before. The packed path's results differ with ``L`` and the batch size by
rounding at most (tests/model/test_step_cost.py; bit-equal or not is the kernel's business, see
docs/reproducibility.md). Why this function and not SDPA's ``enable_gqa`` or flex attention:
``python -m higgs_worker.devtools.bench --attention`` (the measured table is in the README).
"""

from __future__ import annotations

import torch

NAME = "slot_sdpa"


def packed_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor,
    scaling: float | None,
    dropout: float = 0.0,
) -> torch.Tensor:
    """query (B, heads, 1, D), key/value (B, kv_heads, >= L, D), mask (B, 1, 1, L) ->
    (B, 1, heads, D), attending over the first L key columns."""
    batch, heads, _, dim = query.shape
    kv_heads = key.shape[1]
    length = mask.shape[-1]
    grouped = query.reshape(batch, kv_heads, heads // kv_heads, dim)
    out = torch.nn.functional.scaled_dot_product_attention(
        grouped, key[:, :, :length], value[:, :, :length], attn_mask=mask, dropout_p=dropout, scale=scaling
    )
    return out.reshape(batch, 1, heads, dim)


def is_decode_step(query: torch.Tensor, attention_mask) -> bool:
    """One query token with a prepared (B, 1, 1, L) mask shared by all heads."""
    return (
        query.shape[2] == 1
        and isinstance(attention_mask, torch.Tensor)
        and attention_mask.dim() == 4
        and attention_mask.shape[1] == 1
        and attention_mask.shape[2] == 1
    )


def slot_attention_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    if is_decode_step(query, attention_mask) and not kwargs.get("output_attentions", False):
        return packed_attention(query, key, value, attention_mask, scaling, dropout), None
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    return sdpa_attention_forward(module, query, key, value, attention_mask, dropout, scaling, **kwargs)


def register() -> None:
    """Make ``slot_sdpa`` known to transformers (attention and mask functions); idempotent."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, slot_attention_forward)
    if NAME not in ALL_MASK_ATTENTION_FUNCTIONS._global_mapping:
        AttentionMaskInterface.register(NAME, sdpa_mask)  # prompts get SDPA's masks


def use_slot_attention(model) -> None:
    """Set ``slot_sdpa`` on ``model`` (a model on SDPA; one on another implementation, e.g.
    eager, is left as it is: the slot cache's length-sized mask works with SDPA only)."""
    register()
    if model.config._attn_implementation in ("sdpa", NAME):
        model.set_attn_implementation(NAME)
