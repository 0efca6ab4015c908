"""What a Qwen2.5-VL checkpoint is, read from its small files only.

``config.json`` gives the architecture, ``preprocessor_config.json`` (and
``video_preprocessor_config.json`` when present) the pixel limits, and the safetensors index plus
each shard's JSON header the exact bytes and dtype of every tensor — quantized layouts included
(AWQ ``qweight``/``qzeros``/``scales``) — without reading a single tensor. When no safetensors
header is available (a config-only directory), the tensor list is derived from the config and
labelled as an estimate.

A model is a local directory, or a repo id found in the local Hugging Face cache.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qvdoctor.errors import QvError

#: safetensors dtype -> bytes per element.
DTYPE_BYTES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
    "U16": 2, "U32": 4, "U64": 8, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "F4": 1,
}
TORCH_DTYPE_BYTES = {"float32": 4, "float": 4, "bfloat16": 2, "bf16": 2, "float16": 2, "half": 2, "fp16": 2}
MAX_HEADER = 100 * 1024 * 1024  # safetensors refuses headers above 100 MB too

#: The architectures qvdoctor has data for: model_type -> (family name, vision-config reader).
#: Anything else is refused (planning it with Qwen2.5-VL's numbers would be wrong).
SUPPORTED_MODEL_TYPES = {"qwen2_5_vl": "Qwen2.5-VL", "qwen2_vl": "Qwen2-VL"}

# Defaults of transformers' Qwen2_5_VLVisionConfig (re-saved configs omit default values).
VISION_DEFAULTS = {
    "depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16, "in_chans": 3,
    "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112,
    "out_hidden_size": 3584, "fullatt_block_indexes": [7, 15, 23, 31], "tokens_per_second": 2,
}
# Defaults of transformers' Qwen2VLVisionConfig: ``embed_dim`` is the ViT width, ``hidden_size`` the
# LLM width the merger projects to, the MLP is fc1/fc2 of ``embed_dim × mlp_ratio``.
QWEN2_VL_VISION_DEFAULTS = {
    "depth": 32, "embed_dim": 1280, "mlp_ratio": 4, "num_heads": 16, "in_chans": 3, "patch_size": 14,
    "spatial_merge_size": 2, "temporal_patch_size": 2,
}


@dataclass(frozen=True)
class VisionInfo:
    depth: int
    hidden_size: int
    intermediate_size: int
    num_heads: int
    out_hidden_size: int
    patch_size: int = 14
    spatial_merge_size: int = 2
    temporal_patch_size: int = 2
    window_size: int = 112
    in_chans: int = 3
    gated_mlp: bool = True  # Qwen2.5-VL: gate/up/down (SwiGLU); Qwen2-VL: fc1/fc2

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def merge_unit(self) -> int:
        """Pixels per LLM token side (28 for Qwen2.5-VL)."""
        return self.patch_size * self.spatial_merge_size


@dataclass(frozen=True)
class QuantInfo:
    method: str  # "awq", "gptq", "fp8", ...
    bits: int | None = None
    group_size: int | None = None
    zero_point: bool | None = None
    version: str | None = None
    desc_act: bool | None = None
    modules_to_not_convert: tuple[str, ...] = ()


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str  # safetensors spelling, "BF16", "I32"
    shape: tuple[int, ...]
    nbytes: int


@dataclass
class ModelInfo:
    """The ``model`` that checks and the planner see."""

    name: str
    path: str
    architectures: list[str]
    model_type: str
    torch_dtype: str | None
    num_attention_heads: int
    num_key_value_heads: int
    hidden_size: int
    num_hidden_layers: int
    intermediate_size: int
    head_dim: int
    vocab_size: int
    max_position_embeddings: int
    tie_word_embeddings: bool
    vision: VisionInfo | None
    quantization: QuantInfo | None
    image_min_pixels: int = 3136
    image_max_pixels: int = 12845056
    video_min_pixels: int | None = None  # from video_preprocessor_config.json, if any
    video_max_pixels: int | None = None
    tensors: list[TensorInfo] = field(default_factory=list)
    weights_source: str = "none"  # "safetensors headers" | "derived from config.json"
    notes: list[str] = field(default_factory=list)
    serve_as: str = ""  # what `vllm serve` is given: the repo id, or the directory's absolute path

    @property
    def weights_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    @property
    def weights_exact(self) -> bool:
        return self.weights_source == "safetensors headers"

    @property
    def dtype_bytes(self) -> int:
        return TORCH_DTYPE_BYTES.get(str(self.torch_dtype or "bfloat16").lower(), 2)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "path": self.path, "architectures": self.architectures,
            "model_type": self.model_type, "torch_dtype": self.torch_dtype,
            "num_attention_heads": self.num_attention_heads, "num_key_value_heads": self.num_key_value_heads,
            "hidden_size": self.hidden_size, "num_hidden_layers": self.num_hidden_layers,
            "intermediate_size": self.intermediate_size, "head_dim": self.head_dim,
            "vocab_size": self.vocab_size, "max_position_embeddings": self.max_position_embeddings,
            "tie_word_embeddings": self.tie_word_embeddings,
            "vision": None if self.vision is None else self.vision.__dict__,
            "quantization": None if self.quantization is None else {**self.quantization.__dict__, "modules_to_not_convert": list(self.quantization.modules_to_not_convert)},
            "image_min_pixels": self.image_min_pixels, "image_max_pixels": self.image_max_pixels,
            "video_min_pixels": self.video_min_pixels, "video_max_pixels": self.video_max_pixels,
            "weights_bytes": self.weights_bytes, "weights_source": self.weights_source,
            "tensor_count": len(self.tensors), "notes": self.notes,
        }


# -- reading files ---------------------------------------------------------------------------------
def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise QvError(f"{path} not found")
    except (OSError, UnicodeDecodeError) as exc:
        raise QvError(f"cannot read {path}: {exc}")
    except json.JSONDecodeError as exc:
        raise QvError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg})")
    if not isinstance(data, dict):
        raise QvError(f"{path} does not hold a JSON object")
    return data


def read_safetensors_header(path: Path) -> list[TensorInfo]:
    """Every tensor of one ``.safetensors`` file from its header (8-byte length + JSON)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) != 8:
                raise QvError(f"{path} is too short to be a safetensors file")
            (length,) = struct.unpack("<Q", head)
            if length > MAX_HEADER:
                raise QvError(f"{path}: safetensors header of {length} bytes is implausible", "the file is corrupt or not safetensors")
            raw = fh.read(length)
    except OSError as exc:
        raise QvError(f"cannot read {path}: {exc.strerror or exc}")
    if len(raw) != length:
        raise QvError(f"{path}: safetensors header is truncated", "re-download the file (qvdoctor fetch resumes)")
    try:
        header = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise QvError(f"{path}: safetensors header is not valid JSON", "the file is corrupt or not safetensors")
    tensors = []
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (start, end) = meta["dtype"], tuple(int(s) for s in meta["shape"]), meta["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise QvError(f"{path}: malformed header entry for tensor {name!r}")
        nbytes = int(end) - int(start)
        if dtype in DTYPE_BYTES and dtype != "F4" and nbytes != math.prod(shape) * DTYPE_BYTES[dtype]:
            raise QvError(f"{path}: tensor {name} claims {nbytes} bytes but {dtype}{list(shape)} needs {math.prod(shape) * DTYPE_BYTES[dtype]}")
        tensors.append(TensorInfo(name, dtype, shape, nbytes))
    return tensors


def read_checkpoint_tensors(directory: Path) -> list[TensorInfo] | None:
    """All tensors from ``model.safetensors.index.json``'s shards or lone ``*.safetensors`` files;
    ``None`` when the directory holds no safetensors at all."""
    index = directory / "model.safetensors.index.json"
    if index.is_file():
        weight_map = _read_json(index).get("weight_map") or {}
        shards = sorted(set(weight_map.values()))
        missing = [s for s in shards if not (directory / s).is_file()]
        if missing and len(missing) == len(shards):
            return None  # only the JSON files are here (e.g. fetched for planning)
        if missing:
            raise QvError(
                f"{directory} lists {len(shards)} safetensors shards but {len(missing)} are missing (first: {missing[0]})",
                "finish the download (qvdoctor fetch resumes it), or remove the index to plan from config.json alone",
            )
        files = [directory / s for s in shards]
    else:
        files = sorted(directory.glob("*.safetensors"))
    if not files:
        return None
    tensors: list[TensorInfo] = []
    for f in files:
        tensors += read_safetensors_header(f)
    return tensors


def resolve_model_dir(model: str) -> Path:
    """A local directory, or a repo id: qvdoctor's registry of fetched models, then the local
    Hugging Face cache (no network for either), then its small files through qvdoctor fetch."""
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise QvError(f"{path} has no config.json", "point --model at the model directory (the one with config.json)")
        return path
    if path.exists():
        raise QvError(f"{path} is a file, not a model directory", "point --model at the directory that holds config.json")
    if model.count("/") == 1 and not model.startswith((".", "/", "~")):
        from qvdoctor.model.registry import find

        found = find(model)
        if found is not None:
            return found.directory
        return fetch_small_files(model)
    raise QvError(f"model directory not found: {model}", "pass a directory holding config.json, or a repo id such as Qwen/Qwen2.5-VL-7B-Instruct")


def where_found(model: str, directory: Path) -> str | None:
    """A note saying where a repo id was resolved to (None for a directory given as such)."""
    if Path(model).expanduser().is_dir():
        return None
    from qvdoctor.model.registry import find

    found = find(model)
    if found is not None and found.directory == directory:
        return found.describe()
    if directory == small_files_dir(model):
        return f"{model}: small files fetched into {directory}"
    return None


def serve_name(model: str, directory: Path) -> str:
    """What ``vllm serve`` is given for ``model``: a directory as its absolute path; a repo id as
    itself when vLLM finds it there (the Hugging Face cache, or a config-only copy it will
    download anyway), else the fetched directory's path (vLLM would download the id again)."""
    if Path(model).expanduser().is_dir():
        return str(directory.resolve())
    in_hf_cache = directory.parent.name == "snapshots" and directory.parent.parent.name.startswith("models--")
    has_weights = any(directory.glob("*.safetensors")) or any(directory.glob("*.bin"))
    return model if in_hf_cache or not has_weights else str(directory)


def small_files_dir(repo_id: str) -> Path:
    from qvdoctor.tinymodel import default_cache_root

    return default_cache_root() / "model-configs" / repo_id.replace("/", "--")


def fetch_small_files(repo_id: str) -> Path:
    """Only the JSON files of a hub repo (config, preprocessor, safetensors index), through
    :mod:`qvdoctor.fetch` (HF_ENDPOINT / mirrors / ModelScope as ``qvdoctor fetch`` picks them).
    Offline settings (QVDOCTOR_OFFLINE, HF_HUB_OFFLINE with MODELSCOPE_OFFLINE) mean no hub is asked."""
    dest = small_files_dir(repo_id)
    if (dest / "config.json").is_file():
        return dest
    not_local = f"{repo_id} is not a local directory, not in qvdoctor's registry of fetched models, nor in the Hugging Face cache"
    hint = (f"fetch it where a hub is reachable: 'qvdoctor fetch {repo_id}' (or only its small files: "
            f"--include '*.json'), then pass the repo id or --model DIR")
    from qvdoctor.fetch.sources import HTTP_SOURCES, offline_sources

    offline = offline_sources()
    if all(s in offline for s in HTTP_SOURCES):
        raise QvError(f"{not_local}; no hub is asked ({', '.join(sorted(set(offline.values())))})", hint)
    from qvdoctor.fetch.run import fetch

    try:
        fetch(repo_id, include=["*.json"], local_dir=dest)
    except QvError as exc:  # the fetch command's hints name its own options; say what works here
        raise QvError(f"{not_local}, and {exc.message}", hint) from None
    if not (dest / "config.json").is_file():
        raise QvError(f"{repo_id} has no config.json", "is this a model repository?")
    return dest


# -- interpreting config.json -----------------------------------------------------------------------
def _quant(cfg: dict[str, Any]) -> QuantInfo | None:
    q = cfg.get("quantization_config")
    if not isinstance(q, dict):
        return None
    method = str(q.get("quant_method") or q.get("method") or "unknown").lower()
    return QuantInfo(
        method=method,
        bits=q.get("bits") or q.get("w_bit"),
        group_size=q.get("group_size") or q.get("q_group_size"),
        zero_point=q.get("zero_point"),
        version=q.get("version"),
        desc_act=q.get("desc_act"),
        modules_to_not_convert=tuple(q.get("modules_to_not_convert") or ()),
    )


def parse_config(cfg: dict[str, Any], name: str = "", path: str = "") -> ModelInfo:
    """Build a :class:`ModelInfo` (without tensors) from a config.json dict, flat or nested."""
    text = dict(cfg)
    if isinstance(cfg.get("text_config"), dict):  # transformers-5 layout
        text = {**cfg, **cfg["text_config"]}

    def need(key: str) -> Any:
        if text.get(key) is None:
            raise QvError(f"config.json of {name or path} has no {key!r}", "is this a Qwen2.5-VL (or other decoder) checkpoint?")
        return text[key]

    heads = int(need("num_attention_heads"))
    hidden = int(need("hidden_size"))
    head_dim = int(text.get("head_dim") or hidden // heads)
    model_type = str(cfg.get("model_type") or "")
    if model_type not in SUPPORTED_MODEL_TYPES:
        arch = ", ".join(cfg.get("architectures") or []) or "unknown"
        raise QvError(
            f"{name or path}: architecture {arch} (model_type {model_type or 'missing'}) is not one qvdoctor has data for",
            f"qvdoctor plans {' and '.join(SUPPORTED_MODEL_TYPES.values())} checkpoints; it will not plan this one with their numbers",
        )
    vc = cfg.get("vision_config")
    vision = _vision(model_type, vc, hidden) if isinstance(vc, dict) else None
    dtype = text.get("torch_dtype") or text.get("dtype") or cfg.get("torch_dtype")
    return ModelInfo(
        name=name, path=path,
        architectures=list(cfg.get("architectures") or []),
        model_type=model_type,
        torch_dtype=str(dtype) if dtype else None,
        num_attention_heads=heads,
        num_key_value_heads=int(text.get("num_key_value_heads") or heads),
        hidden_size=hidden,
        num_hidden_layers=int(need("num_hidden_layers")),
        intermediate_size=int(need("intermediate_size")),
        head_dim=head_dim,
        vocab_size=int(need("vocab_size")),
        max_position_embeddings=int(text.get("max_position_embeddings") or 32768),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", text.get("tie_word_embeddings", False))),
        vision=vision,
        quantization=_quant(cfg) or _quant(text),
    )


def _vision(model_type: str, vc: dict[str, Any], llm_hidden: int) -> VisionInfo:
    """The vision tower's sizes from ``vision_config`` (Qwen2-VL and Qwen2.5-VL name them differently)."""
    given = {k: val for k, val in vc.items() if val is not None}
    if model_type == "qwen2_vl":
        v = {**QWEN2_VL_VISION_DEFAULTS, **given}
        width = int(v["embed_dim"])
        return VisionInfo(
            depth=int(v["depth"]), hidden_size=width, intermediate_size=int(width * float(v["mlp_ratio"])),
            num_heads=int(v["num_heads"]), out_hidden_size=int(v.get("hidden_size") or llm_hidden),
            patch_size=int(v["patch_size"]), spatial_merge_size=int(v["spatial_merge_size"]),
            temporal_patch_size=int(v["temporal_patch_size"]), window_size=0,
            in_chans=int(v.get("in_chans") or v.get("in_channels") or 3), gated_mlp=False,
        )
    v = {**VISION_DEFAULTS, **given}
    if "out_hidden_size" not in vc:
        v["out_hidden_size"] = llm_hidden
    return VisionInfo(
        depth=int(v["depth"]), hidden_size=int(v.get("hidden_size") or v.get("embed_dim")),
        intermediate_size=int(v["intermediate_size"]), num_heads=int(v["num_heads"]),
        out_hidden_size=int(v["out_hidden_size"]), patch_size=int(v["patch_size"]),
        spatial_merge_size=int(v["spatial_merge_size"]), temporal_patch_size=int(v["temporal_patch_size"]),
        window_size=int(v["window_size"]), in_chans=int(v.get("in_chans") or v.get("in_channels") or 3),
    )


def derived_tensors(m: ModelInfo) -> list[TensorInfo]:
    """The checkpoint's tensors as published Qwen2.5-VL repos lay them out, derived from the
    config (used when no safetensors header is at hand; an estimate, exact for the official repos).
    AWQ (GEMM) linears: ``qweight`` I32[in, out·bits/32], ``qzeros`` I32[in/g, out·bits/32],
    ``scales`` F16[in/g, out]."""
    wdt = "BF16" if (m.torch_dtype or "bfloat16").lower() in ("bfloat16", "bf16") else ("F32" if m.dtype_bytes == 4 else "F16")
    q = m.quantization
    quant = q is not None and q.method in ("awq", "gptq") and q.bits and q.group_size
    out: list[TensorInfo] = []

    def t(name: str, shape: tuple[int, ...], dtype: str = wdt) -> None:
        out.append(TensorInfo(name, dtype, shape, math.prod(shape) * DTYPE_BYTES[dtype]))

    def linear(prefix: str, n_in: int, n_out: int, bias: bool, quantize: bool) -> None:
        if quantize:
            assert q is not None and q.bits and q.group_size
            pack = 32 // int(q.bits)
            g = int(q.group_size) if q.group_size > 0 else n_in
            t(prefix + ".qweight", (n_in, n_out // pack), "I32")
            t(prefix + ".qzeros", (math.ceil(n_in / g), n_out // pack), "I32")
            t(prefix + ".scales", (math.ceil(n_in / g), n_out), "F16")
            if bias:
                t(prefix + ".bias", (n_out,), "F16")
        else:
            t(prefix + ".weight", (n_out, n_in))
            if bias:
                t(prefix + ".bias", (n_out,))

    H, I, kvd = m.hidden_size, m.intermediate_size, m.num_key_value_heads * m.head_dim
    qd = m.num_attention_heads * m.head_dim
    t("model.embed_tokens.weight", (m.vocab_size, H))
    for i in range(m.num_hidden_layers):
        p = f"model.layers.{i}"
        t(p + ".input_layernorm.weight", (H,))
        t(p + ".post_attention_layernorm.weight", (H,))
        linear(p + ".self_attn.q_proj", H, qd, True, bool(quant))
        linear(p + ".self_attn.k_proj", H, kvd, True, bool(quant))
        linear(p + ".self_attn.v_proj", H, kvd, True, bool(quant))
        linear(p + ".self_attn.o_proj", qd, H, False, bool(quant))
        linear(p + ".mlp.gate_proj", H, I, False, bool(quant))
        linear(p + ".mlp.up_proj", H, I, False, bool(quant))
        linear(p + ".mlp.down_proj", I, H, False, bool(quant))
    t("model.norm.weight", (H,))
    if not m.tie_word_embeddings:
        t("lm_head.weight", (m.vocab_size, H))
    v = m.vision
    if v is not None:
        vh, vi = v.hidden_size, v.intermediate_size
        t("visual.patch_embed.proj.weight", (vh, v.in_chans, v.temporal_patch_size, v.patch_size, v.patch_size))
        for i in range(v.depth):
            p = f"visual.blocks.{i}"
            t(p + ".norm1.weight", (vh,))
            t(p + ".norm2.weight", (vh,))
            linear(p + ".attn.qkv", vh, 3 * vh, True, False)
            linear(p + ".attn.proj", vh, vh, True, False)
            if v.gated_mlp:
                linear(p + ".mlp.gate_proj", vh, vi, True, False)
                linear(p + ".mlp.up_proj", vh, vi, True, False)
                linear(p + ".mlp.down_proj", vi, vh, True, False)
            else:
                linear(p + ".mlp.fc1", vh, vi, True, False)
                linear(p + ".mlp.fc2", vi, vh, True, False)
        merged = vh * v.spatial_merge_size**2
        t("visual.merger.ln_q.weight", (vh,))
        linear("visual.merger.mlp.0", merged, merged, True, False)
        linear("visual.merger.mlp.2", merged, v.out_hidden_size, True, False)
    return out


def parse_preprocessor(m: ModelInfo, directory: Path) -> None:
    """Pixel limits from preprocessor_config.json / video_preprocessor_config.json (if present)."""
    pre = directory / "preprocessor_config.json"
    if pre.is_file():
        p = _read_json(pre)
        size = p.get("size") or {}
        m.image_min_pixels = int(p.get("min_pixels") or size.get("shortest_edge") or m.image_min_pixels)
        m.image_max_pixels = int(p.get("max_pixels") or size.get("longest_edge") or m.image_max_pixels)
    else:
        m.notes.append("no preprocessor_config.json: assuming the published Qwen2.5-VL limits (3,136 - 12,845,056 pixels)")
    vpre = directory / "video_preprocessor_config.json"
    if vpre.is_file():
        p = _read_json(vpre)
        size = p.get("size") or {}
        lo, hi = p.get("min_pixels") or size.get("shortest_edge"), p.get("max_pixels") or size.get("longest_edge")
        m.video_min_pixels = int(lo) if lo else None
        m.video_max_pixels = int(hi) if hi else None


def load_model_info(model: str | Path) -> ModelInfo:
    """Read a model directory (or a cached repo id): config, preprocessor limits, tensor headers."""
    directory = resolve_model_dir(str(model))
    cfg = _read_json(directory / "config.json")
    name = str(model) if not Path(str(model)).expanduser().is_dir() else directory.name
    info = parse_config(cfg, name=name, path=str(directory))
    info.serve_as = serve_name(str(model), directory)
    info.notes += [n for n in [where_found(str(model), directory)] if n]
    parse_preprocessor(info, directory)
    tensors = read_checkpoint_tensors(directory)
    if tensors is None:
        info.tensors = derived_tensors(info)
        info.weights_source = "derived from config.json"
        info.notes.append("no safetensors shards in the directory: tensor sizes derived from config.json (published layout)")
    else:
        info.tensors = tensors
        info.weights_source = "safetensors headers"
    return info
