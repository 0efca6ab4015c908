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
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.cluster.netns import RAY_PORT, NetnsCluster, cleanup_stale  # noqa: E402


def time_cluster(c: NetnsCluster) -> tuple[float, dict]:
    t0 = time.monotonic()
    out = c.qvdoctor(c.nodes[0], ["cluster", "--address", f"{c.nodes[0].ip}:{RAY_PORT}", "--json"], timeout=400)
    wall = time.monotonic() - t0
    data = json.loads(out.stdout)
    if any(n["lost"] for n in data["nodes"]) or len(data["nodes"]) != len(c.nodes):
        raise SystemExit(f"cluster check incomplete: {[n['lost'] for n in data['nodes']]}")
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
                walls, phases, hands = [], [], []
                for _ in range(args.repeat):
                    wall, data = time_cluster(c)
                    walls.append(wall)
                    phases.append(data["seconds"])
                    hands.append(time_by_hand(c))
                rows.append({"nodes": n, "ray_up_s": round(up, 1), "cluster_s": round(statistics.median(walls), 1),
                             "facts_s": round(statistics.median(p["facts"] for p in phases), 1),
                             "network_s": round(statistics.median(p["network"] for p in phases), 1),
                             "by_hand_s": round(statistics.median(hands), 1)})
                print(json.dumps(rows[-1]), flush=True)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print("| nodes | `qvdoctor cluster` (s) | its facts phase (s) | its network phase (s) | `diagnose` on each node in turn (s) | cluster / by hand |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['nodes']} | {r['cluster_s']} | {r['facts_s']} | {r['network_s']} | {r['by_hand_s']} | {r['cluster_s'] / r['by_hand_s']:.2f} |")
    one = next((r for r in rows if r["nodes"] == 1), None)
    big = max(rows, key=lambda r: r["nodes"])
    if one and big is not one:
        print(f"\n{big['nodes']} nodes / 1 node, qvdoctor cluster: {big['cluster_s'] / one['cluster_s']:.2f}x "
              f"(target <= 1.5x); by hand: {big['by_hand_s'] / one['by_hand_s']:.2f}x")


if __name__ == "__main__":
    main()
