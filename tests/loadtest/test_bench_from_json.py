"""``qvdoctor bench --from-json FILE --report DIR``: a result saved with ``--json`` on a machine
without matplotlib (a GPU host) renders here into the same report a direct ``--report`` writes."""

from __future__ import annotations

import json

from conftest import ROOT, run_qvdoctor
from tests.loadtest.benchfix import CLIP, CLIP_TOKENS, server


def test_a_saved_json_result_renders_the_same_report(tmp_path):
    no_mpl = tmp_path / "no_mpl"
    (no_mpl / "matplotlib").mkdir(parents=True)
    (no_mpl / "matplotlib" / "__init__.py").write_text("raise ImportError('no matplotlib on this host')\n")
    direct = tmp_path / "direct"
    with server("--slots", "2", "--ttft", "0.02", "--tpot", "0.005", "--visual-tokens", str(CLIP_TOKENS)) as url:
        args = ("bench", "--url", url, "--synthetic-video", CLIP, "--concurrency", "1,2", "--requests", "4",
                "--max-tokens", "8", "--no-ceiling", "--json")
        # the GPU host: no matplotlib, so --report only warns; the JSON result is complete
        gpu = run_qvdoctor(*args, "--report", str(tmp_path / "gpu"), timeout=240,
                           env={"PYTHONPATH": f"{no_mpl}:{ROOT}"})
        here = run_qvdoctor(*args, "--report", str(direct), timeout=240)
    assert gpu.returncode in (0, 1) and "warning: the plots need matplotlib" in gpu.stderr, gpu.stderr[-2000:]
    assert here.returncode in (0, 1), here.stderr[-2000:]
    saved = tmp_path / "result.json"
    saved.write_text(gpu.stdout)
    out = tmp_path / "rendered"
    res = run_qvdoctor("bench", "--from-json", str(saved), "--report", str(out), timeout=120)
    assert res.returncode == gpu.returncode, res.stderr[-2000:]
    assert "knee:" in res.stdout  # the table and summary, as after a run
    for png in ("latency.png", "throughput.png", "kv_capacity.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "result.json").read_text()) == {k: v for k, v in json.loads(gpu.stdout).items() if k != "report_files"}
    # the same files as a direct --report run, but for the numbers (two measurements)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in direct.iterdir())
    assert (out / "points.csv").read_text().splitlines()[0] == (direct / "points.csv").read_text().splitlines()[0]
    md = (out / "report.md").read_text()
    assert "![latency](latency.png)" in md and md.count("\n| 1 |") + md.count("\n| 2 |") == 2
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3


def test_from_json_measures_nothing_and_refuses_what_is_not_a_result(tmp_path):
    bad = tmp_path / "err.json"
    bad.write_text(json.dumps({"error": {"message": "cannot read the served model"}, "hint": "x"}))
    res = run_qvdoctor("bench", "--from-json", str(bad), "--report", str(tmp_path / "r"), timeout=60)
    assert res.returncode == 3 and "holds a failed run" in res.stderr.splitlines()[0], res.stderr
    res = run_qvdoctor("bench", "--from-json", str(bad), "--url", "http://127.0.0.1:9/v1", timeout=60)
    assert res.returncode == 3 and "--url does not go with it" in res.stderr.splitlines()[0], res.stderr
    res = run_qvdoctor("bench", "--from-json", str(tmp_path / "missing.json"), timeout=60)
    assert res.returncode == 3 and "cannot read" in res.stderr.splitlines()[0], res.stderr
    res = run_qvdoctor("bench", "--concurrency", "1", timeout=60)
    assert res.returncode == 3 and "--url is missing" in res.stderr.splitlines()[0], res.stderr
