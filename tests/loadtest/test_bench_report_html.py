"""``qvdoctor bench --report DIR``: markdown, CSV and PNG files, and one HTML page that renders its
plots in headless Chromium with every network path closed (the images are inline)."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess

import pytest

from conftest import run_qvdoctor
from tests.loadtest.benchfix import CLIP, CLIP_TOKENS, server

C0_BLUE = (31, 119, 180)  # matplotlib's first line colour: only the plots have it


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    with server("--slots", "2", "--ttft", "0.02", "--tpot", "0.005", "--visual-tokens", str(CLIP_TOKENS)) as url:
        res = run_qvdoctor("bench", "--url", url, "--synthetic-video", CLIP, "--concurrency", "1,2,4", "--requests", "6",
                           "--max-tokens", "8", "--no-ceiling", "--report", str(out), timeout=240)
    assert res.returncode in (0, 1), res.stderr[-2000:]
    return out


def test_report_files_hold_the_points(report):
    rows = list(csv.DictReader((report / "points.csv").open()))
    assert [r["concurrency"] for r in rows] == ["1", "2", "4"]
    assert all(r["ok"] == "6" and float(r["ttft_ms_p50"]) > 0 for r in rows)
    md = (report / "report.md").read_text()
    assert "knee:" in md and "![latency](latency.png)" in md and "![kv_capacity](kv_capacity.png)" in md
    for png in ("latency.png", "throughput.png", "kv_capacity.png"):
        assert (report / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_html_is_self_contained_and_renders_its_plots_without_network(report, tmp_path):
    page = (report / "report.html").read_text()
    refs = re.findall(r"""(?:src|href)\s*=\s*['"]([^'"]*)""", page)
    assert len(refs) == 3 and all(r.startswith("data:image/png;base64,") for r in refs)
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing (scripts/apt-packages.txt installs it)")
        pytest.skip("chromium is not installed")
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--proxy-server=127.0.0.1:9",
                    "--host-resolver-rules=MAP * ~NOTFOUND", "--window-size=1300,2600",
                    f"--screenshot={shot}", (report / "report.html").as_uri()],
                   capture_output=True, timeout=120, check=False, env={**os.environ, "HOME": str(tmp_path)})
    import numpy as np
    from PIL import Image

    px = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    blue = int((np.abs(px - np.array(C0_BLUE)).max(axis=2) <= 12).sum())
    assert blue > 500, f"only {blue} plot-coloured pixels: the inline images did not render"
