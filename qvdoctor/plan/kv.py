"""The KV-cache arithmetic vLLM does once it knows the bytes it may use: exact, no estimates.

Mirrors vllm/v1/core/kv_cache_utils.py (0.32/0.33): page size per layer, blocks, the
'KV cache size: N tokens' capacity line, the fit check (null block reserved from 0.29) and the
binary search behind 'the estimated maximum model length is N'."""

from __future__ import annotations

from dataclasses import dataclass

from qvdoctor.model.info import ModelInfo
from qvdoctor.plan.versions import VllmBehaviour


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class KvLayout:
    layers: int  # decoder layers on this rank (the largest pipeline stage)
    kv_heads_per_rank: int
    head_dim: int
    dtype_bytes: int
    block_size: int

    @property
    def page_bytes(self) -> int:
        """One layer's page: K and V for ``block_size`` tokens."""
        return 2 * self.block_size * self.kv_heads_per_rank * self.head_dim * self.dtype_bytes

    @property
    def bytes_per_block(self) -> int:
        return self.layers * self.page_bytes

    @property
    def bytes_per_token(self) -> int:
        return self.bytes_per_block // self.block_size


def kv_bytes_per_token(model: ModelInfo, kv_dtype_bytes: int | None = None) -> int:
    """Whole-model KV bytes per token: 2 × layers × KV heads × head_dim × dtype bytes."""
    return 2 * model.num_hidden_layers * model.num_key_value_heads * model.head_dim * (kv_dtype_bytes or model.dtype_bytes)


def kv_layout(model: ModelInfo, tp: int, layers_on_rank: int, kv_dtype_bytes: int, block_size: int) -> KvLayout:
    return KvLayout(layers_on_rank, max(1, model.num_key_value_heads // tp), model.head_dim, kv_dtype_bytes, block_size)


@dataclass(frozen=True)
class KvCapacity:
    available_bytes: int
    num_blocks: int
    capacity_tokens: int  # what vLLM logs as 'KV cache size: N tokens'
    max_concurrency: float  # 'Maximum concurrency for M tokens per request: X'
    max_model_len_fit: int  # the largest max_model_len the fit check accepts
    fits: bool  # the requested max_model_len passes the fit check


def capacity(layout: KvLayout, available_bytes: int, max_model_len: int, behaviour: VllmBehaviour,
             upper_len: int | None = None) -> KvCapacity:
    """vLLM's numbers for ``available_bytes`` of KV memory on the tightest rank.

    ``max_model_len_fit`` is the binary-search result vLLM reports, searched up to ``upper_len``
    (vLLM searches up to the requested max_model_len; pass the model's maximum to get the fit)."""
    bpb, bs = layout.bytes_per_block, layout.block_size
    available_bytes = max(0, int(available_bytes))
    num_blocks = available_bytes // bpb
    per_request = max(1, cdiv(max_model_len, bs))
    concurrency = num_blocks / per_request
    tokens = int(concurrency * max_model_len) if behaviour.capacity_from_concurrency else num_blocks * bs
    check = available_bytes - bpb if behaviour.null_block_reserved else available_bytes
    fit = max(0, check // bpb) * bs if check > 0 else 0
    upper = upper_len if upper_len is not None else max_model_len
    fit = min(fit, upper)
    if behaviour.v0:
        fit = min(upper, num_blocks * bs)
    return KvCapacity(available_bytes, num_blocks, tokens, concurrency, fit, per_request * bpb <= check and check > 0)
