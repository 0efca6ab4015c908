"""qvdoctor: get Qwen2.5-VL from nothing to serving on vLLM.

Pipeline: facts are gathered (``qvdoctor.facts``), checks under ``checks/`` turn facts and
logs into findings (``qvdoctor.doctor.rules``), findings carry patches (``qvdoctor.doctor.findings``), a plan
applies them (``qvdoctor.launch``), and commands render the result (``qvdoctor.commands``).
Nothing here imports torch or vllm at import time.
"""

__version__ = "0.1.0"
