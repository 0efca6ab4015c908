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

from tests.cluster.netns import RAY_PORT, NetnsCluster, cleanup_stale  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


class NamespaceCpu:
    """CPU seconds used by every process inside the node namespaces (Ray's GCS, raylets, the
    job's workers), sampled every 100 ms from /proc/PID/stat (utime+stime, the largest value seen
    per process), so workers that exit during the check still count (up to their last sample).
    Processes are matched to the namespaces by /proc/PID/ns/net (no subprocess per sample)."""

    def __init__(self, c: NetnsCluster):
        import threading

        self.inodes = {os.stat(f"/run/netns/{node.ns}").st_ino for node in c.nodes}
        self.seen: dict[tuple[int, str], int] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def sample(self) -> None:
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                if os.stat(f"/proc/{entry.name}/ns/net").st_ino not in self.inodes:
                    continue
                fields = Path(f"/proc/{entry.name}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            key = (int(entry.name), fields[19])  # pid, start time
            self.seen[key] = max(self.seen.get(key, 0), int(fields[11]) + int(fields[12]))

    def loop(self) -> None:
        while not self.stop.wait(0.1):
            self.sample()

    def __enter__(self) -> "NamespaceCpu":
        self.sample()
        self.start = dict(self.seen)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.sample()

    @property
    def seconds(self) -> float:
        return sum(v - self.start.get(k, 0) for k, v in self.seen.items()) / TICK


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def time_cluster(c: NetnsCluster) -> tuple[float, dict]:
    drv0 = children_cpu()
    with NamespaceCpu(c) as ns:
        t0 = time.monotonic()
        out = c.qvdoctor(c.nodes[0], ["cluster", "--address", f"{c.nodes[0].ip}:{RAY_PORT}", "--json"], timeout=400)
        wall = time.monotonic() - t0
        drv = children_cpu() - drv0
    # the driver runs through nsenter, so it is inside the head's namespace too: subtract it
    cpu = {"driver": round(drv, 2), "nodes": round(ns.seconds - drv, 2)}
    data = json.loads(out.stdout)
    if any(n["lost"] for n in data["nodes"]) or len(data["nodes"]) != len(c.nodes):
        raise SystemExit(f"cluster check incomplete: {[n['lost'] for n in data['nodes']]}")
    data["cpu"] = cpu
    if len(c.nodes) > 1 and not data["gloo_allreduce"]["ok"]:  # a failed all-reduce is no valid timing
        errors = {n["label"]: (n.get("gloo") or {}).get("error") for n in data["nodes"]}
        print(f"warning: the Gloo all-reduce failed on {len(c.nodes)} nodes: {errors}", file=sys.stderr, flush=True)
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
    ap.add_argument("--no-bytecode", action="store_true",
                    help="nodes run without a bytecode cache (every process compiles Ray's and torch's sources, as this venv has no .pyc)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    cleanup_stale()
    for n in sizes:
        workdir = Path(tempfile.mkdtemp(prefix="qvcb", dir="/tmp"))
        try:
            with NetnsCluster(n, workdir, bytecode=not args.no_bytecode) as c:
                c.warm_bytecode()
                t = time.monotonic()
                c.start_ray()
                up = time.monotonic() - t
                time.sleep(3)
                with NamespaceCpu(c) as ns:
                    time.sleep(5)
                idle = ns.seconds / 5
                walls, phases, hands, cpus, gloo = [], [], [], [], []
                for _ in range(args.repeat):
                    wall, data = time_cluster(c)
                    walls.append(wall)
                    phases.append(data["seconds"])
                    cpus.append(data["cpu"])
                    gloo.append(data["gloo_allreduce"]["ok"])
                    hands.append(time_by_hand(c))
                rows.append({"nodes": n, "ray_up_s": round(up, 1), "cluster_s": round(statistics.median(walls), 1),
                             "facts_s": round(statistics.median(p["facts"] for p in phases), 1),
                             "network_s": round(statistics.median(p["network"] for p in phases), 1),
                             "by_hand_s": round(statistics.median(hands), 1),
                             "cpu_driver_s": round(statistics.median(c["driver"] for c in cpus), 1),
                             "cpu_nodes_s": round(statistics.median(c["nodes"] for c in cpus), 1),
                             "gloo_ok": gloo, "idle_cpu_per_s": round(idle, 2), "load": Path("/proc/loadavg").read_text().split()[0]})
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
