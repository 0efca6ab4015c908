"""Pieces of ``qvdoctor cluster`` a user sees without a cluster: NCCL's and Gloo's interface
rules as the findings apply them, the error when the head cannot be reached, and Ray staying
out of qvdoctor's import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from qvdoctor.cluster.ifnames import gloo_names, nccl_exact_value, nccl_matches
from qvdoctor.cluster.nodefacts import vllm_get_ip

NICS = ["lo", "docker0", "ens5", "ens50", "enp134s0f0", "ib0"]


def test_nccl_prefix_exclusion_and_exact_rules():
    assert nccl_matches(None, NICS) == ["ens5", "ens50", "enp134s0f0", "ib0"]  # default: not lo, not docker*
    assert nccl_matches("ens5", NICS) == ["ens5", "ens50"]  # a prefix: ens5 also selects ens50
    assert nccl_matches("=ens5", NICS) == ["ens5"]
    assert nccl_matches("^lo,docker", NICS) == ["ens5", "ens50", "enp134s0f0", "ib0"]
    assert nccl_matches("^=ens5", NICS) == ["lo", "docker0", "ens50", "enp134s0f0", "ib0"]
    assert nccl_matches("eth", NICS) == []
    assert nccl_matches(nccl_exact_value(["ens5", "enp134s0f0", "ens5"]), NICS) == ["ens5", "enp134s0f0"]


def test_gloo_takes_exact_names():
    assert gloo_names("ens5, enp134s0f0") == ["ens5", "enp134s0f0"]
    assert gloo_names(None) == []


def test_vllm_host_ip_wins_over_the_default_route():
    assert vllm_get_ip({"VLLM_HOST_IP": "10.1.2.3"}) == ("10.1.2.3", "VLLM_HOST_IP")


def test_unreachable_head_is_one_error_line_and_exit_3():
    out = subprocess.run([sys.executable, "-m", "qvdoctor", "cluster", "--address", "127.0.0.1:9"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 3
    assert out.stderr.startswith("error: cannot reach the Ray head at 127.0.0.1:9")
    assert "hint:" in out.stderr and "Traceback" not in out.stderr


def test_ray_is_not_imported_with_qvdoctor():
    code = "import sys, qvdoctor.cli as c; c._register(); import qvdoctor.cluster.view, qvdoctor.cluster.render; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_the_head_launch_keeps_tp_within_a_node_at_a_size_the_model_splits():
    """8 GPUs per node × 2 nodes for the 7B (28 heads): TP 8 cannot split it, so the launch runs TP 4
    and twice the pipeline stages, by the same consistency rules as every other launch."""
    from qvdoctor.cluster.launchplan import consistent
    from qvdoctor.launch import Launch

    class View:
        model = str(Path(__file__).resolve().parents[1] / "plan" / "fixtures" / "qwen2.5-vl-7b-instruct")

    launch = consistent(Launch({"tensor_parallel_size": 8, "pipeline_parallel_size": 2, "distributed_executor_backend": "ray"},
                               model=View.model), View)
    assert (launch.flags["tensor_parallel_size"], launch.flags["pipeline_parallel_size"]) == (4, 4)
    assert launch.flags["distributed_executor_backend"] == "ray"
