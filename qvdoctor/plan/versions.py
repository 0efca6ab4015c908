"""How a vLLM release sizes its KV cache (../shared/reference/memory_planning.md §1.1, read from
the wheels). One :class:`VllmBehaviour` per version answers every version-dependent question."""

from __future__ import annotations

from dataclasses import dataclass

from qvdoctor.compat import version_key

#: The newest release the reference notes were checked against; the default when nothing says.
LATEST_KNOWN = "0.33.0"


def _ge(version: str, floor: str) -> bool:
    return version_key(version) >= version_key(floor)


@dataclass(frozen=True)
class VllmBehaviour:
    version: str

    @property
    def v0(self) -> bool:
        """Before 0.8 the V0 engine sized the cache (``# GPU blocks: N``)."""
        return not _ge(self.version, "0.8.0")

    @property
    def default_utilization(self) -> float:
        return 0.92 if _ge(self.version, "0.20.0") else 0.90

    @property
    def cudagraph_subtracted(self) -> bool:
        """CUDA-graph memory is estimated and subtracted before sizing the KV cache (0.20.0+)."""
        return _ge(self.version, "0.20.0")

    @property
    def null_block_reserved(self) -> bool:
        """The fit check keeps one block back for BlockPool's null block (0.29.0+)."""
        return _ge(self.version, "0.29.0")

    @property
    def capacity_from_concurrency(self) -> bool:
        """'KV cache size: N tokens' is ``int(concurrency × max_model_len)`` (0.20.2+), else blocks × block size."""
        return _ge(self.version, "0.20.2")

    @property
    def requested_ceil(self) -> bool:
        """``requested = ceil(total × util)`` (0.27.0+), else the float product."""
        return _ge(self.version, "0.27.0")

    @property
    def has_kv_cache_memory_bytes(self) -> bool:
        return _ge(self.version, "0.11.0")

    @property
    def has_limit_mm_dict(self) -> bool:
        return _ge(self.version, "0.11.1")

    @property
    def has_mm_encoder_tp_mode(self) -> bool:
        return _ge(self.version, "0.10.2")

    @property
    def vision_tp_falls_back_to_data(self) -> bool:
        """Vision heads not divisible by TP: newer releases switch the encoder to data mode with a
        warning instead of failing (seen in 0.33's vision.py; the first release is unverified)."""
        return _ge(self.version, "0.20.0")

    @property
    def dummy_image_factorised(self) -> bool:
        """The largest dummy image factorises ``max_pixels // 28²`` (0.33, 0.32) instead of
        smart-resizing a 9,999,999² square (0.11). The release in between that switched is
        unverified; we take 0.13.0."""
        return _ge(self.version, "0.13.0")

    def default_batching(self, gpu_bytes: int, gpu_name: str, device: str = "cuda", server: bool = True) -> tuple[int, int]:
        """``(max_num_seqs, max_num_batched_tokens)`` vLLM picks when the user gives neither
        (engine/arg_utils.py ``_set_default_max_num_seqs_and_batched_tokens_args``)."""
        gib = 1024**3
        if device == "cpu":
            return (128, 2048) if server else (256, 4096)
        if gpu_bytes >= 160 * gib and _ge(self.version, "0.20.0"):
            return 1024, 16384
        if gpu_bytes >= 70 * gib and "a100" not in gpu_name.lower():
            return 1024, (8192 if server else 16384)
        return 256, (2048 if server else 8192)


def block_size_for(device: str) -> int:
    """vLLM's default KV block: 16 tokens on CUDA (FLASH_ATTN, head_dim 128); 128 on the CPU backend."""
    return 128 if device == "cpu" else 16
