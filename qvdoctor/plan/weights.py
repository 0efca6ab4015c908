"""Weight bytes per GPU: the checkpoint's tensors split the way vLLM's parallel layers split them.

Column-parallel (q/k/v, gate/up, vision qkv/fc1, merger fc1) and row-parallel (o, down, vision
proj/fc2, merger fc2) weights divide by TP; their row-parallel biases, norms and the patch embedding
are replicated; k/v stop shrinking once TP exceeds the KV heads; embeddings and lm_head are
vocab-parallel (padded to 64 rows); the vision tower is replicated in ``data`` encoder mode.
Pipeline stages hold their share of decoder layers, the first the embedding, the last the norm and
lm_head; every stage builds the vision tower."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from qvdoctor.model.info import DTYPE_BYTES, ModelInfo, TensorInfo
from qvdoctor.plan.parallel import pp_partition

_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")
_COLUMN = (".q_proj.", ".k_proj.", ".v_proj.", ".gate_proj.", ".up_proj.", ".attn.qkv.", ".mlp.fc1.", ".merger.mlp.0.", ".gate_up_proj.", ".qkv_proj.")
_ROW = (".o_proj.", ".down_proj.", ".attn.proj.", ".mlp.fc2.", ".merger.mlp.2.")
_FLOAT = {"F32", "F16", "BF16", "F64"}
VOCAB_PAD = 64


@dataclass
class RankWeights:
    llm: int = 0
    vision: int = 0

    @property
    def total(self) -> int:
        return self.llm + self.vision


def _stored_as(t: TensorInfo, serve_dtype_bytes: int) -> int:
    """Bytes on the GPU: float tensors are cast to the serving dtype; packed integers stay."""
    if t.dtype in _FLOAT and not t.name.endswith((".scales", ".qzeros")):
        return t.nbytes // DTYPE_BYTES[t.dtype] * serve_dtype_bytes
    return t.nbytes


def _share(t: TensorInfo, model: ModelInfo, tp: int, vision_tp: int) -> float:
    """Fraction of tensor ``t`` one TP rank holds."""
    name = "." + t.name
    is_vision = name.startswith((".visual.", ".model.visual."))
    tp_here = vision_tp if is_vision else tp
    if tp_here <= 1:
        return 1.0
    if "embed_tokens" in name or name.startswith(".lm_head."):
        rows = t.shape[0] if t.shape else model.vocab_size
        padded = math.ceil(rows / VOCAB_PAD) * VOCAB_PAD
        return math.ceil(padded / tp_here) / rows
    if not is_vision and (".k_proj." in name or ".v_proj." in name):
        kv = model.num_key_value_heads
        return 1.0 / kv if tp_here > kv else 1.0 / tp_here
    if any(k in name for k in _COLUMN):
        return 1.0 / tp_here
    if any(k in name for k in _ROW):
        return 1.0 if name.endswith(".bias") else 1.0 / tp_here
    return 1.0  # norms, patch embedding, buffers


def rank_weights(model: ModelInfo, tp: int = 1, pp: int = 1, vision_data_mode: bool = False,
                 serve_dtype_bytes: int | None = None) -> list[RankWeights]:
    """Bytes per pipeline stage on one TP rank (all TP ranks of a stage hold the same amount)."""
    serve = serve_dtype_bytes or model.dtype_bytes
    stages = [RankWeights() for _ in range(pp)]
    bounds, start = [], 0
    for n in pp_partition(model.num_hidden_layers, pp):
        bounds.append((start, start + n))
        start += n
    vision_tp = 1 if vision_data_mode else tp
    for t in model.tensors:
        nbytes = _stored_as(t, serve) * _share(t, model, tp, vision_tp)
        name = "." + t.name
        if name.startswith((".visual.", ".model.visual.")):
            for s in stages:
                s.vision += int(nbytes)
            continue
        m = _LAYER.search(t.name)
        if m:
            layer = int(m.group(1))
            stage = next(i for i, (a, b) in enumerate(bounds) if a <= layer < b)
        elif "embed_tokens" in name:
            stage = 0
        else:  # final norm, lm_head
            stage = pp - 1
        stages[stage].llm += int(nbytes)
    return stages
