"""Which tensor-parallel sizes a checkpoint can run with, and why the others fail.

Each rule mirrors a divisibility assertion in vLLM's parallel linear layers or config checks; the
reason text quotes the error vLLM prints so the user can match it to a failed launch."""

from __future__ import annotations

from dataclasses import dataclass, field

from qvdoctor.model.info import ModelInfo

#: Marlin kernels (awq_marlin / gptq_marlin): input partition % min_thread_k, output % min_thread_n.
MARLIN_MIN_THREAD_K = 128
MARLIN_MIN_THREAD_N = 64
CANDIDATE_TP = (1, 2, 4, 8, 16)
#: Minimum compute capability of vLLM's quantization methods (get_min_capability).
QUANT_MIN_CC = {"awq": "7.5", "gptq": "6.0", "awq_marlin": "8.0", "gptq_marlin": "8.0", "fp8": "8.0", "bitsandbytes": "7.0"}


@dataclass
class TpVerdict:
    tp: int
    problems: list[str] = field(default_factory=list)  # fatal: vLLM refuses or crashes
    needs_flags: dict = field(default_factory=dict)  # works only with these flags
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {"tp": self.tp, "ok": self.ok, "problems": self.problems, "needs_flags": self.needs_flags, "notes": self.notes}


def quant_problems(model: ModelInfo, tp: int) -> list[str]:
    """AWQ / GPTQ / Marlin alignment of the LLM's sharded linears at ``tp``."""
    q = model.quantization
    if q is None or q.method not in ("awq", "gptq", "awq_marlin", "gptq_marlin") or not q.group_size:
        return []
    g = int(q.group_size)
    problems = []
    I = model.intermediate_size
    qd = model.num_attention_heads * model.head_dim
    # Row-parallel layers shard the input dimension: down_proj (I) and o_proj (heads × head_dim).
    for layer, n_in in (("mlp.down_proj", I), ("self_attn.o_proj", qd)):
        if n_in % tp:
            continue  # reported by the plain divisibility rule
        part = n_in // tp
        if g > 0 and part % g:
            problems.append(
                f"{layer}: input_size_per_partition = {n_in}/{tp} = {part} is not a multiple of the "
                f"{q.method.upper()} group size {g} ({n_in} = {n_in // g if n_in % g == 0 else n_in / g:g} groups, "
                f"{'an odd number' if n_in % g == 0 and (n_in // g) % 2 else 'not divisible'} across {tp} ranks)"
            )
        elif part % MARLIN_MIN_THREAD_K:
            problems.append(
                f"{layer}: Weight input_size_per_partition = {part} is not divisible by min_thread_k = {MARLIN_MIN_THREAD_K} (Marlin)"
            )
    # Column-parallel gate/up shard the output dimension.
    if I % tp == 0 and (I // tp) % MARLIN_MIN_THREAD_N:
        problems.append(f"mlp.gate_up_proj: output_size_per_partition = {I // tp} is not divisible by min_thread_n = {MARLIN_MIN_THREAD_N} (Marlin)")
    return problems


def padded_intermediate(model: ModelInfo, sizes: tuple[int, ...] = (2, 4, 8)) -> int | None:
    """The smallest intermediate size >= the model's that every TP in ``sizes`` can shard under
    the quantization group size and Marlin's tiles (29568 -> 29696 for Qwen2.5-VL-72B)."""
    q = model.quantization
    if q is None or not q.group_size:
        return None
    step = max(int(q.group_size), MARLIN_MIN_THREAD_K) * max(sizes)
    return -(-model.intermediate_size // step) * step


def tp_verdict(model: ModelInfo, tp: int, vision_data_mode: bool = False, data_mode_available: bool = True) -> TpVerdict:
    v = TpVerdict(tp)
    heads, kv = model.num_attention_heads, model.num_key_value_heads
    if heads % tp:
        v.problems.append(f"Total number of attention heads ({heads}) must be divisible by tensor parallel size ({tp})")
    if tp <= kv and kv % tp:
        v.problems.append(f"{kv} KV heads cannot be split evenly over TP {tp}")
    elif tp > kv and tp % kv:
        v.problems.append(f"TP {tp} exceeds the {kv} KV heads and is not a multiple of them, so they cannot be replicated evenly")
    elif tp > kv:
        v.notes.append(f"TP {tp} > {kv} KV heads: each rank keeps a replica of one KV head, so per-GPU KV stops shrinking")
    if model.intermediate_size % tp:
        v.problems.append(f"intermediate_size {model.intermediate_size} is not divisible by TP {tp}")
    v.problems += quant_problems(model, tp)
    vis = model.vision
    if vis is not None and tp > 1 and not vision_data_mode:
        vis_issues = []
        if vis.num_heads % tp:
            vis_issues.append(f"the vision tower's {vis.num_heads} heads are not divisible by TP {tp}")
        if vis.intermediate_size % tp:
            vis_issues.append(f"the vision MLP size {vis.intermediate_size} is not divisible by TP {tp}")
        if vis_issues:
            if data_mode_available:
                v.needs_flags["mm_encoder_tp_mode"] = "data"
                v.notes.append("; ".join(vis_issues) + ": run the vision encoder data-parallel (--mm-encoder-tp-mode data)")
            else:
                v.problems += vis_issues
    return v


def tp_verdicts(model: ModelInfo, max_tp: int | None = None, vision_data_mode: bool = False,
                data_mode_available: bool = True) -> dict[int, TpVerdict]:
    """Verdicts for the usual sizes (1, 2, 4, 8, 16) plus ``max_tp`` when it is another number."""
    sizes = sorted(set(CANDIDATE_TP) | ({max_tp} if max_tp else set()))
    return {t: tp_verdict(model, t, vision_data_mode, data_mode_available) for t in sizes}


def pp_partition(num_layers: int, pp: int) -> list[int]:
    """Layers per pipeline stage as vLLM's ``get_pp_indices`` splits them (extra layers go to the
    stages before the last)."""
    sizes = [num_layers // pp] * pp
    for i in range(2, num_layers % pp + 2):
        sizes[-i] += 1
    return sizes
