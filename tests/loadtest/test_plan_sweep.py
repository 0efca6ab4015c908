"""``qvdoctor plan --sweep``: the memory breakdown across one setting, and the KV demand of N
concurrent requests against the KV capacity (Qwen2.5-VL-7B's published config on the RTX 4090
and H100 snapshots)."""

from __future__ import annotations

import csv
import io
import json

from conftest import MACHINES, ROOT, run_qvdoctor

MODEL = str(ROOT / "tests" / "plan" / "fixtures" / "qwen2.5-vl-7b-instruct")


def sweep(*args: str, facts: str = "rtx4090.json"):
    res = run_qvdoctor("plan", "--model", MODEL, "--facts", str(MACHINES / facts), *args, timeout=120)
    assert res.returncode == 0, res.stderr
    return res


def test_concurrency_sweep_marks_where_kv_demand_crosses_capacity(tmp_path):
    png = tmp_path / "mem.png"
    res = sweep("--video-seconds", "60", "--video-size", "1280x720", "--sweep", "concurrency=1,2,4,8", "--plot", str(png), "--json")
    rows = json.loads(res.stdout)["rows"]
    cap = rows[0]["kv_capacity_tokens"]
    assert all(r["kv_capacity_tokens"] == cap and r["visual_tokens"] > 10_000 for r in rows)
    assert [r["kv_demand_tokens"] for r in rows] == [c * rows[0]["kv_demand_tokens"] for c in (1, 2, 4, 8)]
    fill = rows[0]["kv_fill_concurrency"]
    assert [r["fits"] for r in rows] == [r["concurrency"] <= fill for r in rows]
    assert (fill + 1) * rows[0]["kv_demand_tokens"] > cap >= fill * rows[0]["kv_demand_tokens"]
    assert rows[0]["weights"] > 15 * 2**30 and rows[0]["kv_cache"] > 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_fp8_kv_doubles_the_tokens_and_csv_lists_each_value():
    res = sweep("--sweep", "kv_cache_dtype=auto,fp8", "--format", "csv", facts="h100.json")
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert [r["kv_cache_dtype"] for r in rows] == ["auto", "fp8"]
    auto, fp8 = (int(r["kv_capacity_tokens"]) for r in rows)
    assert 1.9 < fp8 / auto < 2.1
    assert rows[0]["weights_bytes"] == rows[1]["weights_bytes"]


def test_frames_sweep_grows_the_visual_tokens_per_request():
    rows = json.loads(sweep("--sweep", "frames=8,32,128", "--json").stdout)["rows"]
    vis = [r["visual_tokens"] for r in rows]
    assert vis[0] < vis[1] < vis[2]


def test_bad_sweep_is_exit_3():
    res = run_qvdoctor("plan", "--model", MODEL, "--facts", str(MACHINES / "t4.json"), "--sweep", "colour=red", timeout=60)
    assert res.returncode == 3 and res.stderr.startswith("error: --sweep 'colour=red' is not KEY=V1,V2,...")
