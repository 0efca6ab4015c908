"""What to run: per node the ``ray start`` line with its environment (the node's current
network-relevant variables with the findings' patches applied), and the one ``vllm serve``
launch for the head, a :class:`qvdoctor.launch.Launch`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qvdoctor.cluster.findings import flag_patch, node_patches
from qvdoctor.cluster.view import ClusterView
from qvdoctor.doctor.findings import Finding, Patch
from qvdoctor.launch import Launch, shell_line

# variables of the raylet's environment that decide how workers talk to each other
KEEP_PREFIXES = ("NCCL_", "GLOO_", "VLLM_", "UCX_")
KEEP_NAMES = ("CUDA_VISIBLE_DEVICES", "PYTHONPATH", "HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE")


@dataclass
class RayStart:
    label: str
    env: dict[str, str]
    argv: list[str]

    def command(self) -> str:
        return shell_line(self.env, self.argv)

    def to_json(self) -> dict[str, Any]:
        return {"node": self.label, "command": self.command(), "argv": self.argv, "env": dict(sorted(self.env.items()))}


def _kept_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if (k.startswith(KEEP_PREFIXES) or k in KEEP_NAMES) and "<redacted>" not in v}


def ray_starts(view: ClusterView, findings: list[Finding], port: int) -> list[RayStart]:
    patches = node_patches(view, findings)
    head_ip = view.head.ip if view.head is not None else (view.nodes[0].ip if view.nodes else "HEAD_IP")
    out = []
    for node in view.nodes:
        env = {**_kept_env(node.env), **patches.get(node.label, {})}
        argv = ["ray", "start"]
        argv += ["--head", f"--port={port}"] if node.is_head else [f"--address={head_ip}:{port}"]
        argv += [f"--node-ip-address={node.ip}"]
        if view.device == "GPU":
            argv += [f"--num-gpus={node.nvml_gpus}"]
        out.append(RayStart(node.label, env, argv))
    return out


def serve_launch(view: ClusterView, findings: list[Finding], port: int) -> Launch:
    """``vllm serve`` on the head: Ray executor, TP x PP (asked for, or recommended), the head's
    network env patches (vLLM copies NCCL_*/VLLM_* from here to the workers)."""
    head = view.head
    tp = view.tp or view.rec_tp
    pp = view.pp or view.rec_pp
    flags: dict[str, Any] = {"tensor_parallel_size": tp, "pipeline_parallel_size": pp, "distributed_executor_backend": "ray"}
    env: dict[str, str] = {}
    if head is not None:
        env["RAY_ADDRESS"] = f"{head.ip}:{port}"
        patches = node_patches(view, findings).get(head.label, {})
        kept = {k: v for k, v in _kept_env(head.env).items() if k.startswith(("NCCL_", "GLOO_", "VLLM_"))}
        env.update({**kept, **patches})
    vllm_version = head.versions.get("vllm") if head is not None else None
    launch = Launch(flags, env, model=view.model or "MODEL", vllm_version=vllm_version)
    return consistent(launch.apply(Patch(flag_patch(findings))), view)


def consistent(launch: Launch, view: ClusterView) -> Launch:
    """The launch checked against the model (when its config is readable here) by the same rules
    as every launch (qvdoctor.consistency): TP stays within a node at a size the model splits,
    the GPUs it frees become pipeline stages; max_model_len within the model's limit."""
    from qvdoctor.consistency import repair, valid_tp_sizes
    from qvdoctor.errors import QvError
    from qvdoctor.model.info import load_model_info

    try:
        info = load_model_info(view.model) if view.model else None
    except QvError:  # not readable on this node: the per-node model checks report it
        return launch
    if info is None:
        return launch
    tp = int(launch.flags.get("tensor_parallel_size") or 1)
    pp = int(launch.flags.get("pipeline_parallel_size") or 1)
    valid = valid_tp_sizes(info, tp, launch.vllm_version)
    if valid and valid[-1] != tp:  # e.g. 8 GPUs per node, 28 heads: TP 4 and twice the stages
        launch = launch.copy()
        launch.flags["tensor_parallel_size"] = valid[-1]
        launch.flags["pipeline_parallel_size"] = min(tp * pp // valid[-1], info.num_hidden_layers)
    fixed, _ = repair(launch, info, None)
    return fixed
