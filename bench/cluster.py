"""Wall time of ``qvdoctor cluster`` on 1, 3 and 6 namespace nodes, against the peer measured in
the same run: ``qvdoctor diagnose`` run by hand on each node in sequence (what people do
without it: log in to every machine in turn).

Needs root (network namespaces; tests/cluster/netns.py builds the nodes). Each size gets a fresh
Ray cluster; both sides run from inside the nodes' namespaces with the same Python.

    sudo .venv/bin/python bench/cluster.py [--sizes 1,3,6] [--repeat 1]

Prints one table (seconds) and the ratio 6-node / 1-node check. ``qvdoctor cluster`` also runs a
Gloo all-reduce (it imports torch on every node) and probes every port pair, which the
by-hand peer does not do; the "facts" column is its node-facts phase alone."""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.cluster.netns import RAY_PORT, NetnsCluster, cleanup_stale, netns_pids  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def namespace_cpu(c: NetnsCluster) -> float:
    """CPU seconds used so far by every process inside the node namespaces (Ray's GCS, raylets,
    workers), children that exited and were reaped included (utime+stime+cutime+cstime)."""
    total = 0
    for node in c.nodes:
        for pid in netns_pids(node.ns):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            total += sum(int(x) for x in fields[11:15])
    return total / TICK


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def time_cluster(c: NetnsCluster) -> tuple[float, dict]:
    ns0, drv0 = namespace_cpu(c), children_cpu()
    t0 = time.monotonic()
    out = c.qvdoctor(c.nodes[0], ["cluster", "--address", f"{c.nodes[0].ip}:{RAY_PORT}", "--json"], timeout=400)
    wall = time.monotonic() - t0
    drv = children_cpu() - drv0
    time.sleep(1.0)  # let the job's workers exit and be reaped, so their CPU lands in the raylets' cutime
    cpu = {"driver": round(drv, 2), "nodes": round(namespace_cpu(c) - ns0, 2)}
    data = json.loads(out.stdout)
    if any(n["lost"] for n in data["nodes"]) or len(data["nodes"]) != len(c.nodes):
        raise SystemExit(f"cluster check incomplete: {[n['lost'] for n in data['nodes']]}")
    data["cpu"] = cpu
    Path(f"/tmp/qvcb-last-{len(c.nodes)}.json").write_text(json.dumps(data, indent=1))
    return wall, data


def time_by_hand(c: NetnsCluster) -> float:
    t0 = time.monotonic()
    for node in c.nodes:
        out = c.qvdoctor(node, ["diagnose", "--json"], timeout=300)
        if out.returncode not in (0, 1, 2):
            raise SystemExit(f"diagnose failed on {node.hostname}: {out.stderr[-500:]}")
    return time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,3,6")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    cleanup_stale()
    for n in sizes:
        workdir = Path(tempfile.mkdtemp(prefix="qvcb", dir="/tmp"))
        try:
            with NetnsCluster(n, workdir) as c:
                t = time.monotonic()
                c.start_ray()
                up = time.monotonic() - t
                time.sleep(3)
                idle0 = namespace_cpu(c)
                time.sleep(5)
                idle = (namespace_cpu(c) - idle0) / 5
                walls, phases, hands, cpus = [], [], [], []
                for _ in range(args.repeat):
                    wall, data = time_cluster(c)
                    walls.append(wall)
                    phases.append(data["seconds"])
                    cpus.append(data["cpu"])
                    hands.append(time_by_hand(c))
                rows.append({"nodes": n, "ray_up_s": round(up, 1), "cluster_s": round(statistics.median(walls), 1),
                             "facts_s": round(statistics.median(p["facts"] for p in phases), 1),
                             "network_s": round(statistics.median(p["network"] for p in phases), 1),
                             "by_hand_s": round(statistics.median(hands), 1),
                             "cpu_driver_s": round(statistics.median(c["driver"] for c in cpus), 1),
                             "cpu_nodes_s": round(statistics.median(c["nodes"] for c in cpus), 1),
                             "idle_cpu_per_s": round(idle, 2), "load": Path("/proc/loadavg").read_text().split()[0]})
                print(json.dumps(rows[-1]), flush=True)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print("| nodes | `qvdoctor cluster` (s) | its facts phase (s) | its network phase (s) | CPU s: driver / inside the nodes | `diagnose` on each node in turn (s) | cluster / by hand |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['nodes']} | {r['cluster_s']} | {r['facts_s']} | {r['network_s']} | {r['cpu_driver_s']} / {r['cpu_nodes_s']} | {r['by_hand_s']} | {r['cluster_s'] / r['by_hand_s']:.2f} |")
    one = next((r for r in rows if r["nodes"] == 1), None)
    big = max(rows, key=lambda r: r["nodes"])
    if one and big is not one:
        print(f"\n{big['nodes']} nodes / 1 node, qvdoctor cluster: {big['cluster_s'] / one['cluster_s']:.2f}x "
              f"(target <= 1.5x); by hand: {big['by_hand_s'] / one['by_hand_s']:.2f}x")


if __name__ == "__main__":
    main()
