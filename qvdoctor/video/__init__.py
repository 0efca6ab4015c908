"""Video input for Qwen2.5-VL: decode only the sampled frames with PyAV, sample and resize them
exactly as qwen-vl-utils does, and hand vLLM ``(frames, metadata)``.

PyAV and numpy are imported inside the functions, so importing this package stays cheap.
"""

from qvdoctor.video.decode import decode_frames
from qvdoctor.video.probe import VideoInfo, probe_video
from qvdoctor.video.sample import SampledVideo, load_video, vllm_metadata
from qvdoctor.video.synthetic import make_test_clip

__all__ = [
    "SampledVideo", "VideoInfo", "decode_frames", "load_video", "make_test_clip", "probe_video", "vllm_metadata",
]
