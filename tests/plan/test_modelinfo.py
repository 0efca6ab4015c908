"""Reading checkpoints without loading tensors: configs, safetensors headers, quantized layouts."""

from __future__ import annotations

import json
import math
import struct

import pytest

from qvdoctor.errors import QvError
from planfix import published, tiny_model  # noqa: F401 (fixtures)
from qvdoctor.model.info import derived_tensors, load_model_info, read_safetensors_header


# Published parameter counts / payloads (memory_planning.md §3.4, cross-checked there with HF shard sizes).
@pytest.mark.parametrize("name,params,payload", [
    ("qwen2.5-vl-3b-instruct", 3_754_622_976, 7_509_245_952),
    ("qwen2.5-vl-7b-instruct", 8_292_166_656, 16_584_333_312),
])
def test_published_configs_give_published_sizes(published, name, params, payload):
    m = published(name)
    assert sum(math.prod(t.shape) for t in m.tensors) == params
    assert m.weights_bytes == payload
    assert m.weights_source == "derived from config.json"


def test_awq_72b_checkpoint_size_matches_the_published_shards(published):
    m = published("qwen2.5-vl-72b-instruct-awq")
    assert m.quantization.method == "awq" and m.quantization.group_size == 128 and m.quantization.bits == 4
    assert round(m.weights_bytes / 1e9, 2) == 43.00  # 11 shards of ~3.9 GB; recipes list 43 GB
    qweight = next(t for t in m.tensors if t.name == "model.layers.0.mlp.down_proj.qweight")
    assert (qweight.dtype, qweight.shape) == ("I32", (29696, 8192 // 8))
    scales = next(t for t in m.tensors if t.name == "model.layers.0.mlp.down_proj.scales")
    assert (scales.dtype, scales.shape) == ("F16", (29696 // 128, 8192))
    assert not any(t.name.startswith("visual.") and t.dtype == "I32" for t in m.tensors)  # vision not quantized


def test_real_checkpoint_headers_are_exact(tiny_model):
    m = load_model_info(tiny_model)
    assert m.weights_source == "safetensors headers"
    path = tiny_model / "model.safetensors"
    with open(path, "rb") as fh:
        (header_len,) = struct.unpack("<Q", fh.read(8))
    assert m.weights_bytes == path.stat().st_size - 8 - header_len
    # the published layout derived from config.json names and shapes every tensor of the real file
    derived = {t.name: (t.dtype, t.shape) for t in derived_tensors(m)}
    assert derived == {t.name: (t.dtype, t.shape) for t in m.tensors}
    assert (m.num_hidden_layers, m.num_attention_heads, m.num_key_value_heads, m.head_dim) == (2, 2, 1, 64)


def _write_header(path, tensors, declared_len=None):
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, dtype, shape, size in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", declared_len or len(raw)) + raw)


def test_sharded_index_with_quantized_layout(tmp_path, published):
    """A header-only synthetic AWQ checkpoint (index + 2 shards): bytes come from the headers."""
    src = published("qwen2.5-vl-72b-instruct-awq")
    cfg = json.loads((src.path and (__import__("pathlib").Path(src.path) / "config.json")).read_text())
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    tensors = [(t.name, t.dtype, t.shape, t.nbytes) for t in src.tensors]
    half = len(tensors) // 2
    _write_header(tmp_path / "model-00001-of-00002.safetensors", tensors[:half])
    _write_header(tmp_path / "model-00002-of-00002.safetensors", tensors[half:])
    index = {"weight_map": {n: f"model-0000{1 if i < half else 2}-of-00002.safetensors" for i, (n, *_) in enumerate(tensors)}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    m = load_model_info(tmp_path)
    assert m.weights_source == "safetensors headers"
    assert m.weights_bytes == src.weights_bytes
    assert len(m.tensors) == len(src.tensors)


def test_bad_checkpoints_are_one_line_errors(tmp_path):
    with pytest.raises(QvError, match="not found"):
        load_model_info(tmp_path / "nope")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(QvError, match="not valid JSON"):
        load_model_info(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    with pytest.raises(QvError, match="has no 'num_attention_heads'"):
        load_model_info(tmp_path)
    bad = tmp_path / "x.safetensors"
    _write_header(bad, [("w", "BF16", (4, 4), 32)], declared_len=10**6)
    with pytest.raises(QvError, match="truncated"):
        read_safetensors_header(bad)
    _write_header(bad, [("w", "BF16", (4, 4), 30)])
    with pytest.raises(QvError, match="claims 30 bytes"):
        read_safetensors_header(bad)


def test_index_naming_missing_shards_says_so(tmp_path, published):
    src = published("qwen2.5-vl-3b-instruct")
    (tmp_path / "config.json").write_text((__import__("pathlib").Path(src.path) / "config.json").read_text())
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    # only the JSON files (fetched for planning): sizes derived from the config, and said so
    m = load_model_info(tmp_path)
    assert m.weights_source == "derived from config.json" and any("derived" in n for n in m.notes)
    _write_header(tmp_path / "model-00001-of-00002.safetensors", [("a", "BF16", (2,), 4)])
    with pytest.raises(QvError, match="1 are missing"):  # a half-finished download
        load_model_info(tmp_path)
