"""What the GPU host is, recorded next to the vLLM runs made on it.

    PYTHONPATH=/tmp/site:.gpu python3 .gpu/scripts/gpu/host_report.py --out DIR

Writes ``DIR/host.json``:

* ``facts``: ``qvdoctor diagnose --save-facts`` of the host (with the carried vLLM on the path);
* ``cuda_mem_get_info``: ``torch.cuda.mem_get_info()`` in a child process (free, total): the total
  vLLM budgets from, next to NVML's total in the facts;
* ``kernels``: for every shared library of vLLM (``vllm/**/*.so``) the SASS / PTX archs read by
  qvdoctor's reader and by ``cuobjdump --list-elf / --list-ptx``, and whether they agree.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the carried tree (.gpu) holding qvdoctor/


def facts(out: Path) -> dict:
    path = out / "facts.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    t = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "qvdoctor", "diagnose", "--save-facts", str(path), "--json"],
                       capture_output=True, text=True, env=env, timeout=240)
    res = {"exit_code": p.returncode, "seconds": round(time.monotonic() - t, 1), "stderr_tail": p.stderr[-2000:]}
    try:
        res["diagnose"] = json.loads(p.stdout)
    except json.JSONDecodeError:
        res["stdout_tail"] = p.stdout[-3000:]
    if path.exists():
        res["facts"] = json.loads(path.read_text())
    return res


def mem_get_info() -> dict:
    code = ("import torch, json; f, t = torch.cuda.mem_get_info(); p = torch.cuda.get_device_properties(0); "
            "print(json.dumps({'free': f, 'total': t, 'name': p.name, 'props_total_memory': p.total_memory, "
            "'torch': torch.__version__, 'cuda': torch.version.cuda}))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    try:
        return json.loads(p.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return {"error": p.stderr[-1500:]}


def cuobjdump_archs(tool: str, path: str) -> dict:
    out: dict = {}
    for flag, key in (("--list-elf", "sass"), ("--list-ptx", "ptx")):
        p = subprocess.run([tool, flag, path], capture_output=True, text=True, timeout=300)
        text = p.stdout + p.stderr
        found = sorted(set(re.findall(r"\.(sm_\d+[af]?)\.", text))) if key == "sass" else \
            sorted({"compute_" + m[3:] for m in re.findall(r"\.(sm_\d+[af]?)\.ptx", text)})
        out[key] = found
        out[f"{key}_entries"] = len([ln for ln in text.splitlines() if (".cubin" in ln or ".ptx" in ln)])
        if p.returncode not in (0, 255) or "error" in text.lower() and not found:
            out[f"{key}_note"] = text.strip()[-300:]
    return out


def kernels(site: Path) -> dict:
    sys.path.insert(0, str(ROOT))
    from qvdoctor.kernels.scan import scan_file

    tool = shutil.which("cuobjdump") or next((str(p) for p in site.parent.glob("**/triton/backends/nvidia/bin/cuobjdump")), None)
    libs = sorted(p for p in (site / "vllm").rglob("*.so"))
    rows = []
    for lib in libs:
        t = time.monotonic()
        ours = scan_file(lib)
        t_ours = time.monotonic() - t
        row = {"path": str(lib.relative_to(site)), "size": lib.stat().st_size, "qvdoctor_sass": ours.sass,
               "qvdoctor_ptx": ours.ptx, "qvdoctor_error": ours.error, "qvdoctor_s": round(t_ours, 3)}
        if tool:
            t = time.monotonic()
            c = cuobjdump_archs(tool, str(lib))
            row.update({"cuobjdump_" + k: v for k, v in c.items()})
            row["cuobjdump_s"] = round(time.monotonic() - t, 3)
            row["agree"] = sorted(ours.sass) == c["sass"] and sorted(ours.ptx) == c["ptx"]
        rows.append(row)
    return {"cuobjdump": tool, "libraries": rows}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--site", default="/tmp/site")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rep: dict = {"collected_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    rep["cuda_mem_get_info"] = mem_get_info()
    print("[host] mem_get_info", rep["cuda_mem_get_info"], flush=True)
    rep["nvidia_smi"] = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,memory.used,driver_version",
                                        "--format=csv"], capture_output=True, text=True).stdout
    try:
        rep["kernels"] = kernels(Path(a.site))
        agree = [r.get("agree") for r in rep["kernels"]["libraries"]]
        print(f"[host] kernels: {len(agree)} libraries, agree {sum(1 for x in agree if x)}/{len(agree)} with {rep['kernels']['cuobjdump']}", flush=True)
    except Exception as exc:  # noqa: BLE001
        rep["kernels"] = {"error": f"{type(exc).__name__}: {exc}"}
    rep["diagnose"] = facts(out)
    print("[host] diagnose exit", rep["diagnose"].get("exit_code"), rep["diagnose"].get("stderr_tail", "")[-300:], flush=True)
    (out / "host.json").write_text(json.dumps(rep, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
