"""Where a start-up stopped: the last start-up stage a log shows when it has no error and no sign
that the engine became ready (a hang, a process killed without a message, or a cut copy), and a
copy that stops inside a traceback, before the line that names its error."""

from __future__ import annotations

from dataclasses import dataclass

from qvdoctor.doctor.findings import Evidence, Finding
from qvdoctor.doctor.triage.scanning import _number_lines, cut_in_traceback, traceback_functions

STAGE_ID = "startup-stopped"
CUT_ID = "traceback-cut"
TAIL = 64 * 1024  # a stop is at the end: only the log's tail is read, so a 100 MB log costs nothing


@dataclass(frozen=True)
class Stage:
    name: str
    markers: tuple[str, ...]  # substrings of the lines vLLM prints while in this stage
    why: str  # what a silent stop at this stage usually is
    fix: str
    frames: tuple[str, ...] = ()  # vLLM functions a traceback passes through in this stage


STAGES = (
    Stage("engine set-up, before the model loads",
          # "Initializing a V1 LLM engine (v0.11.0)"; Ray Serve's vLLM app: "Starting with engine args: ..."
          ("Automatically detected platform", "vLLM API server version", "LLM engine (v", "LLM engine with config:",
           "non-default args:", "args: Namespace(", "Starting with engine args"),
          "a configuration or platform check that failed right after this line (the model's config, the GPU, a "
          "missing package: its error is printed next), or a hang before the first worker reports",
          "run it again and keep the lines after this one; with VLLM_LOGGING_LEVEL=DEBUG vLLM prints each step, "
          "so the last line shows where it stops",
          ("create_engine_config", "get_config", "get_hf_processor")),
    Stage("distributed initialisation (NCCL / Ray)",
          ("NCCL INFO", "Started a local Ray instance", "Connecting to existing Ray cluster", "world_size=",
           "is using nccl=="),  # pynccl: "vLLM is using nccl==2.21.5"
          "a hang in NCCL or Ray set-up between the GPUs or nodes (peer-to-peer or the network interface "
          "does not work, a node waits for a peer that never comes)",
          "re-run with NCCL_DEBUG=INFO to see where it waits; on GPUs without working peer-to-peer, "
          "NCCL_P2P_DISABLE=1; across nodes, NCCL_SOCKET_IFNAME / GLOO_SOCKET_IFNAME set to the interface that connects them",
          ("init_device", "init_worker_distributed_environment", "init_distributed_environment",
           "ensure_model_parallel_initialized", "initialize_model_parallel", "init_process_group")),
    Stage("loading the weights",
          ("Starting to load model", "Loading safetensors checkpoint shards", "Loading pt checkpoint shards",
           "Using model weights format"),
          "the host's OOM killer ending the process while the weights pass through host memory (no Python error "
          "is printed; exit -9), or very slow storage",
          "check `dmesg | grep -i -E 'killed process|out of memory'` and the exit code; give the host more RAM "
          "or swap, or load from local safetensors files",
          ("load_model", "load_weights", "get_model")),
    Stage("memory profiling",
          ("Model loading took", "Starting profile run", "Memory profiling takes", "Encoder cache will be initialized"),
          "a kill during the profile run with the largest multimodal dummy input (host or GPU memory), or a hang in "
          "the first forward pass",
          "check `dmesg` for the OOM killer; lower the profiling peak: --max-num-seqs, --max-num-batched-tokens, "
          "--limit-mm-per-prompt, --mm-processor-kwargs max_pixels",
          ("determine_available_memory", "determine_num_available_blocks", "profile_run", "_dummy_run",
           "_dummy_sampler_run", "profile")),
    Stage("torch.compile",
          ("Dynamo bytecode transform time", "Compiling a graph for", "Using cache directory:"),
          "the first torch.compile of a model, which takes minutes (later starts reuse the cache), or a hang in it",
          "wait for it once (it is cached under ~/.cache/vllm/torch_compile_cache); if it never ends, start with "
          "--enforce-eager",
          ("compile_fx", "_compile")),
    Stage("CUDA graph capture",
          ("Capturing CUDA graph", "Capturing cudagraphs", "Capturing the model for CUDA graphs", "GPU KV cache size",
           "Maximum concurrency for"),
          "a hang or a crash without message while CUDA graphs are captured (after the KV cache was allocated)",
          "start with --enforce-eager (no CUDA graphs) to confirm; a smaller --max-num-seqs captures fewer graphs",
          ("capture_model", "capture")),
)
# vLLM's own lines that may not say "vllm" (transformers' progress bar is "Loading checkpoint shards")
VLLM_WORDS = ("LLM engine", "tensor_parallel_size=", "Loading safetensors checkpoint shards", "(APIServer pid=",
              "(EngineCore", "Capturing CUDA graph shapes")
# lines that come only after start-up finished: serving, a finished offline run, or a shutdown
DONE = ("Shutting down", "shutting down", "Application startup complete", "Uvicorn running on", "Avg prompt throughput",
        "Processed prompts: 100%", "init engine (profile, create kv cache, warmup model) took", "Graph capturing finished",
        "Available routes are", "Starting vLLM API server", '"POST /v1/', "Received request")


# NCCL's lines once a communicator is ready or the program is done: "comm 0x... rank 0 ... - Init COMPLETE",
# nccl-tests' "Launch mode Parallel" and its result summary
NCCL_DONE = ("Init COMPLETE", "Destroy COMPLETE", "Launch mode", "Avg bus bandwidth", "Out of bounds values")
NCCL_STAGE = next(s for s in STAGES if s.name.startswith("distributed initialisation"))


# vLLM (0.2x) logs that a signal asked it to stop; what it logs while tearing down after that (the API
# server's "AsyncLLM output_handler failed ... EngineDeadError" for an engine it stopped itself) is no failure
REQUESTED_STOP = ("trigger received signal=SIG",)  # "[shutdown] EngineCore: trigger received signal=SIGINT"
TEARDOWN_MAX = 256 * 1024  # a teardown is a few hundred lines; more than this after a stop is a run of its own


def teardown_lines(text: str) -> set[int]:
    """Line starts of the teardown after the last line saying a signal asked the server to stop (SIGINT,
    SIGTERM), up to the next start-up, if any: a log of several runs keeps the errors of the runs after it."""
    at = max(text.rfind(m) for m in REQUESTED_STOP)
    if at < 0:
        return set()
    start = text.rfind("\n", 0, at) + 1
    restarts = [i for i in (text.find(m, at) for m in STAGES[0].markers) if i >= 0]
    end = min(text.rfind("\n", 0, min(restarts)) + 1 if restarts else len(text), start + TEARDOWN_MAX)
    lines = {start}
    nl = text.find("\n", start, end)
    while nl >= 0 and nl + 1 < end:
        lines.add(nl + 1)
        nl = text.find("\n", nl + 1, end)
    return lines


def stopped_stage(text: str) -> tuple[Stage, int, str] | None:
    """The stage of the last vLLM start-up line in the log's tail, its 1-based line number and
    text, when no line after it says the engine became ready or shut down."""
    offset = max(0, len(text) - TAIL)
    tail = text[offset:]
    best: tuple[int, Stage] | None = None
    if any(word in tail for word in VLLM_WORDS) or "vllm" in tail.lower():
        ready = max(tail.rfind(m) for m in DONE)
        for stage in STAGES:
            for marker in stage.markers:
                at = tail.rfind(marker)
                if at > ready and (best is None or at > best[0]):
                    best = (at, stage)
    else:  # an NCCL program alone (nccl-tests, a training job): its last NCCL line is before a communicator was ready
        at = tail.rfind("NCCL INFO")
        if at >= 0 and at > max(tail.rfind(m) for m in NCCL_DONE):
            best = (at, NCCL_STAGE)
    if best is None:
        return None
    at, stage = best
    start = tail.rfind("\n", 0, at) + 1
    end = tail.find("\n", at)
    line_no = text.count("\n", 0, offset + start) + 1
    return stage, line_no, tail[start:end if end >= 0 else len(tail)]


def stopped_finding(text: str) -> Finding | None:
    """A warning for a log that stops inside start-up with no error: never an all-clear for it."""
    found = stopped_stage(text)
    if found is None:
        return None
    stage, line_no, line = found
    return Finding(
        id=STAGE_ID, family="other", status="warn", role="unknown",
        title=f"No sign that start-up finished: the log stops during {stage.name}",
        cause=("The log has no error line and nothing after this line says the engine became ready. Either the "
               "copy is cut (the error is in the part that is missing) or the process stopped here without a "
               f"message: at this stage that is usually {stage.why}."),
        fix=f"If the copy is complete: {stage.fix}. Otherwise triage the whole log.",
        evidence=[Evidence(line.strip()[:240], source="log", line=line_no)],
    )


def cut_traceback_finding(text: str) -> Finding | None:
    """A failing finding for a log that ends inside a traceback, after its frames and before its
    exception line: the copy was cut where the error is named. The frames still tell the stage."""
    cut = cut_in_traceback(text)
    if cut is None:
        return None
    at, line = cut
    functions = traceback_functions(text, at)
    hit = next(((name, s) for name in functions for s in STAGES if name in s.frames), None)
    during = f" It failed during {hit[1].name} (the frame `{hit[0]}`)." if hit else ""
    return Finding(
        id=CUT_ID, family="other", status="fail", role="unknown",
        title="The copy stops inside a traceback, before the line that names the error"
              + (f" (last frame: `{functions[0]}`)" if functions else ""),
        cause=("The log's last traceback has frames but no exception line after them: the copy was cut (a length "
               f"limit, a partial paste) just before the 'SomeError: message' line that says what failed.{during}"),
        fix=("Copy the log again down to its end: the traceback with the line after its last frame ('XxxError: ...') "
             "and the lines above it; run 'qvdoctor diagnose --log' on that copy."),
        evidence=[Evidence(line.strip()[:240], source="log", line=_number_lines(text, [at])[at])],
    )
