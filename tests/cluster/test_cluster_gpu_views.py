"""The GPU-side cross-node checks, on nodes whose machine facts are the published-spec snapshots
in qvdoctor/data/machines/ (labelled there: 4x A100-SXM4-80GB in Docker, a T4) and whose network
part is the shape a Ray task reports (NICs, env, hostname). No GPU on this machine, so these
nodes are assembled, not collected; tests/cluster/test_cluster_checks.py runs the real collection."""

from __future__ import annotations

import json
from pathlib import Path

from qvdoctor.cluster.collect import Collected, RayNode
from qvdoctor.cluster.findings import cluster_findings
from qvdoctor.cluster.launchplan import ray_starts, serve_launch
from qvdoctor.cluster.view import build_view

MACHINES = Path(__file__).resolve().parents[2] / "qvdoctor" / "data" / "machines"


def node(i: int, machine: str | None, ray_gpus: float, head: bool = False) -> RayNode:
    facts = json.loads((MACHINES / f"{machine}.json").read_text()) if machine else {"label": "cpu", "provenance": "published-spec"}
    versions = {"python": "3.12.3", "ray": "2.60.0", "vllm": "0.11.0", "torch": "2.8.0", "nccl": "2.27.3"}
    ip = f"10.0.0.{i + 1}"
    nf = {"hostname": f"gpu{i}", "hostname_addrs": [ip], "nics": [{"name": "lo", "addrs": ["127.0.0.1"]}, {"name": "ens5", "addrs": [ip]}],
          "env": {}, "vllm_ip": ip, "vllm_ip_how": "default route", "versions": versions, "facts": facts, "free_port": 29500}
    return RayNode(f"id{i}", ip, head, {"CPU": 32.0, "GPU": ray_gpus}, 40000, 40001, facts=nf)


def view_of(nodes, tp=None, pp=None):
    collected = Collected(address="10.0.0.1:6379", gcs_port=6379, nodes=nodes)
    view = build_view(collected, model="Qwen/Qwen2.5-VL-72B-Instruct", tp=tp, pp=pp)
    findings = cluster_findings(view)
    return view, findings, {f.id: f for f in findings if f.status in ("fail", "warn")}


def test_tp_across_two_4_gpu_nodes_becomes_tp4_pp2():
    view, findings, bad = view_of([node(0, "a100-x4-docker", 4, head=True), node(1, "a100-x4-docker", 4)], tp=8, pp=1)
    f = bad["cluster-parallel-layout"]
    assert "TP 8 spans nodes (4 GPUs per node)" in f.cause
    assert f.patch.flags == {"tensor_parallel_size": 4, "pipeline_parallel_size": 2}
    argv = serve_launch(view, findings, 6379).argv()
    assert argv[argv.index("--tensor-parallel-size") + 1] == "4" and argv[argv.index("--pipeline-parallel-size") + 1] == "2"


def test_ray_gpu_resource_below_nvml_count_gets_num_gpus_in_ray_start():
    view, findings, bad = view_of([node(0, "a100-x4-docker", 4, head=True), node(1, "a100-x4-docker", 2)])
    assert bad["cluster-ray-gpus-mismatch"].subject == "gpu1 (10.0.0.2)"
    starts = ray_starts(view, findings, 6379)
    assert "--num-gpus=4" in starts[1].argv and starts[1].argv[:3] == ["ray", "start", "--address=10.0.0.1:6379"]


def test_head_without_gpu():
    _, _, bad = view_of([node(0, None, 0, head=True), node(1, "a100-x4-docker", 4)])
    assert bad["cluster-head-without-gpus"].status == "fail"


def test_t4_and_a100_mix_serves_float16():
    view, findings, bad = view_of([node(0, "a100-x4-docker", 4, head=True), node(1, "t4", 1)])
    assert bad["cluster-cc-mix"].patch.flags == {"dtype": "float16"}
    assert serve_launch(view, findings, 6379).flags["dtype"] == "float16"
    # the head's Docker /dev/shm (64 MiB, per the snapshot) comes from the per-node diagnose checks
    assert bad["shm-too-small"].subject.startswith("gpu0 (10.0.0.1, head)")
