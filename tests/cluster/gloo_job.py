"""A torch.distributed Gloo job, one rank per process: init over TCP at MASTER, all-reduce a
tensor, print the result. Run one per namespace node (tests/cluster/test_gloo_job.py): this is
the collective vLLM's CPU process group runs between nodes, without Ray and without vLLM.

    python tests/cluster/gloo_job.py RANK WORLD MASTER_IP PORT [TIMEOUT_S]"""

from __future__ import annotations

import datetime
import sys
import time

import torch
import torch.distributed as dist


def main() -> None:
    rank, world, master, port = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 20.0
    dist.init_process_group("gloo", init_method=f"tcp://{master}:{port}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=timeout))
    t = torch.ones(1 << 16) * (rank + 1)
    t0 = time.monotonic()
    dist.all_reduce(t)
    print(f"rank {rank}: all-reduce of {t.numel()} floats = {t[0].item():g} in {(time.monotonic() - t0) * 1000:.1f} ms", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
