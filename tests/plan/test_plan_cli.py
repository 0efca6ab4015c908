"""``qvdoctor plan`` as a user runs it."""

from __future__ import annotations

import csv
import io

from planfix import FIXTURES, MACHINES, published, tiny_model  # noqa: F401 (fixtures)

M7 = str(FIXTURES / "qwen2.5-vl-7b-instruct")
AWQ_OLD = str(FIXTURES / "qwen2.5-vl-72b-instruct-awq-29568")
AWQ_NEW = str(FIXTURES / "qwen2.5-vl-72b-instruct-awq")
A100_40 = str(FIXTURES / "a100-40gb.json")


def test_json_has_the_promised_keys(qvdoctor):
    r = qvdoctor("plan", "--model", M7, "--facts", str(MACHINES / "rtx4090.json"), "--json")
    assert r.returncode in (0, 1), r.stderr  # 1: vision-encoder-oom-v2 warns (V2 reserves nothing for a 32k-token video on 24 GB)
    d = r.json()
    for key in ("kv_bytes_per_token", "weights_bytes_per_gpu", "kv_capacity_tokens", "max_model_len_fit",
                "valid_tensor_parallel_sizes", "recommended_flags"):
        assert key in d
    assert d["kv_bytes_per_token"] == 57_344 and d["valid_tensor_parallel_sizes"][:3] == [1, 2, 4]
    kinds = {t["kind"] for t in d["ranks"][0]["terms"]}
    assert kinds <= {"exact", "calibrated", "estimated"} and "estimated" in kinds


def test_table_shows_terms_sources_and_a_bar(qvdoctor):
    r = qvdoctor("plan", "--model", M7, "--facts", str(MACHINES / "rtx4090.json"))
    assert r.returncode == 0, r.stderr
    for text in ("KV bytes per token", "peak activation", "calibrated", "estimated", "Memory per GPU", "GPU 0 ", "█",
                 "--max-model-len"):
        assert text in r.stdout


def test_markdown_and_csv(qvdoctor):
    md = qvdoctor("plan", "--model", M7, "--facts", str(MACHINES / "rtx4090.json"), "--format", "markdown")
    assert md.returncode in (0, 1) and md.stdout.startswith("| quantity | value |")
    out = qvdoctor("plan", "--model", M7, "--facts", str(MACHINES / "rtx4090.json"), "--format", "csv")
    rows = list(csv.reader(io.StringIO(out.stdout)))
    assert rows[0][:2] == ["quantity", "value"] and any(r[0] == "KV blocks" for r in rows)


def test_awq_29568_on_four_gpus_with_tp4_fails_naming_the_cause(qvdoctor):
    r = qvdoctor("plan", "--model", AWQ_OLD, "--facts", A100_40, "--gpus", "4", "--tp", "4", "--json")
    assert r.returncode == 2
    f = next(f for f in r.json()["findings"] if f["id"] == "quantized-tp-alignment")
    assert f["status"] == "fail"
    assert "29568" in f["title"] and "7392" in f["cause"] and "group size 128" in f["cause"]
    assert "29696" in f["fix"]
    assert f["patch"]["flags"] == {"tensor_parallel_size": 1, "pipeline_parallel_size": 4}


def test_awq_29696_on_four_gpus_with_tp4_is_fine(qvdoctor):
    r = qvdoctor("plan", "--model", AWQ_NEW, "--facts", A100_40, "--gpus", "4", "--tp", "4", "--json")
    d = r.json()
    assert not [f for f in d["findings"] if f["status"] == "fail"], d["findings"]
    assert d["fits"] and d["recommended_flags"]["tensor_parallel_size"] == 4


def test_too_long_context_fails_with_the_largest_that_fits(qvdoctor):
    r = qvdoctor("plan", "--model", M7, "--facts", str(MACHINES / "rtx4090.json"), "--max-model-len", "40000",
                 "--kv-cache-dtype", "auto", "--json")
    assert r.returncode == 2
    d = r.json()
    f = next(f for f in d["findings"] if f["id"] == "max-model-len-does-not-fit")
    assert f["patch"]["flags"]["max_model_len"] == d["max_model_len_fit"] // 16 * 16 < 40000


def test_default_context_on_24gb_leaves_nothing_for_kv(qvdoctor):
    """7B's default max_model_len (128000) makes vLLM profile a 14-frame 3584² dummy video."""
    r = qvdoctor("plan", "--model", M7, "--facts", str(MACHINES / "rtx4090.json"), "--max-model-len", "128000", "--json")
    assert r.returncode == 2
    d = r.json()
    assert d["mm_dummy"]["video_frames"] == 14 and d["mm_dummy"]["patches"] == 458_752
    f = next(f for f in d["findings"] if f["id"] == "no-memory-for-kv-cache")
    assert f["patch"]["flags"] == {"max_model_len": d["max_model_len_fit"] // 16 * 16}


def test_heads_not_divisible(qvdoctor):
    r = qvdoctor("plan", "--model", M7, "--facts", str(MACHINES / "h100.json"), "--gpus", "8", "--tp", "8", "--json")
    assert r.returncode == 2
    f = next(f for f in r.json()["findings"] if f["id"] == "attention-heads-tp")
    assert "(28) must be divisible by tensor parallel size (8)" in f["cause"]
    assert f["patch"]["flags"] == {"tensor_parallel_size": 4, "pipeline_parallel_size": 2}


def test_fp8_kv_on_ampere_warns(qvdoctor):
    r = qvdoctor("plan", "--model", M7, "--facts", A100_40, "--kv-cache-dtype", "fp8", "--json")
    d = r.json()
    assert d["kv_bytes_per_token"] == 28_672
    f = next(f for f in d["findings"] if f["id"] == "fp8-kv-cache-capability")
    assert f["status"] == "warn" and f["patch"]["flags"] == {"kv_cache_dtype": "auto"}


def test_bad_input_is_one_line_and_exit_3(qvdoctor, tmp_path):
    for args, msg in (
        (["--model", str(tmp_path / "missing")], "model directory not found"),
        (["--model", M7, "--facts", str(MACHINES / "h100.json"), "--video-size", "big", "--video-seconds", "3"], "invalid --video-size"),
        (["--model", M7, "--device", "cpu"], "needs the KV size pinned"),
        (["--model", M7, "--facts", str(MACHINES / "h100.json"), "--kv-cache-dtype", "int3"], "unknown --kv-cache-dtype"),
        (["--model", M7, "--facts", str(MACHINES / "h100.json"), "--format", "xml"], "unknown --format"),
    ):
        r = qvdoctor("plan", *args)
        assert r.returncode == 3, (args, r.stdout, r.stderr)
        assert r.stderr.startswith("error: ") and msg in r.stderr and "Traceback" not in r.stderr


def test_diagnose_model_runs_the_plan(qvdoctor):
    r = qvdoctor("diagnose", "--facts", str(MACHINES / "t4.json"), "--model", str(FIXTURES / "qwen2.5-vl-3b-instruct"), "--json")
    d = r.json()
    assert d["plan"]["recommended_flags"]["dtype"] == "float16"
    assert d["plan"]["kv_bytes_per_token"] == 36_864
    assert any(f["id"] == "bf16-needs-cc80" and f["status"] == "fail" for f in d["findings"])
    assert any(f["id"] == "attention-heads-tp" for f in d["findings"])  # the plan's checks ran
