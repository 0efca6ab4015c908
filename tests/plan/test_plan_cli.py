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


def test_awq_29568_tp4_request_is_replaced_by_tp1_pp4_naming_the_cause(qvdoctor):
    """TP 4 cannot split the 29568 AWQ checkpoint: the launch uses TP 1 × PP 4 on the same GPUs and
    says why (exit 0: the recommendation works; the request's problem is reported as fixed)."""
    r = qvdoctor("plan", "--model", AWQ_OLD, "--facts", A100_40, "--gpus", "4", "--tp", "4", "--json")
    d = r.json()
    assert r.returncode == 0, d["nothing_fits"]
    assert d["launch"]["argv"][d["launch"]["argv"].index("--tensor-parallel-size") + 1] == "1"
    assert d["recommended_flags"]["pipeline_parallel_size"] == 4
    change = next(c for c in d["changes"] if "tensor parallel 4 -> 1" in c)
    assert "29568/4 = 7392" in change and "group size 128" in change


def test_awq_29696_on_four_gpus_with_tp4_is_fine(qvdoctor):
    r = qvdoctor("plan", "--model", AWQ_NEW, "--facts", A100_40, "--gpus", "4", "--tp", "4", "--json")
    d = r.json()
    assert not [f for f in d["findings"] if f["status"] == "fail"], d["findings"]
    assert d["fits"] and d["recommended_flags"]["tensor_parallel_size"] == 4


def test_too_long_context_is_lowered_to_the_largest_that_fits(qvdoctor):
    r = qvdoctor("plan", "--model", M7, "--facts", str(MACHINES / "rtx4090.json"), "--max-model-len", "40000",
                 "--kv-cache-dtype", "auto", "--json")
    assert r.returncode == 0
    d = r.json()
    f = next(f for f in d["findings"] if f["id"] == "max-model-len-does-not-fit")
    assert f["status"] == "fixed"
    assert d["fits"] and d["recommended_flags"]["max_model_len"] <= d["max_model_len_fit"] < 40000


def test_default_context_on_24gb_leaves_nothing_for_kv(qvdoctor):
    """7B's default max_model_len (128000) makes vLLM profile a 14-frame 3584² dummy video."""
    r = qvdoctor("plan", "--model", M7, "--facts", str(MACHINES / "rtx4090.json"), "--max-model-len", "128000", "--json")
    assert r.returncode == 0
    d = r.json()
    f = next(f for f in d["findings"] if f["id"] == "no-memory-for-kv-cache")
    assert f["status"] == "fixed"
    assert d["fits"] and d["recommended_flags"]["max_model_len"] < 128000
    from qvdoctor.model.info import load_model_info
    from qvdoctor.plan import make_plan, PlanSettings
    from qvdoctor.facts.snapshot import load_facts

    asked = make_plan(load_model_info(M7), load_facts(MACHINES / "rtx4090.json"), PlanSettings(max_model_len=128000))
    assert asked.dummy.video_frames == 14 and asked.dummy.patches == 458_752 and asked.available_kv_bytes <= 0


def test_heads_not_divisible(qvdoctor):
    r = qvdoctor("plan", "--model", M7, "--facts", str(MACHINES / "h100.json"), "--gpus", "8", "--tp", "8", "--json")
    assert r.returncode == 0
    d = r.json()
    assert (d["recommended_flags"]["tensor_parallel_size"], d["recommended_flags"]["pipeline_parallel_size"]) == (4, 2)
    assert any("(28) must be divisible by tensor parallel size (8)" in c for c in d["changes"])


def test_fp8_kv_on_ampere_warns(qvdoctor):
    """An fp8 KV cache on compute capability 8.0: the launch keeps the 16-bit cache and says why."""
    r = qvdoctor("plan", "--model", M7, "--facts", A100_40, "--kv-cache-dtype", "fp8", "--json")
    d = r.json()
    assert d["kv_bytes_per_token"] == 57_344 and d["recommended_flags"]["kv_cache_dtype"] == "auto"
    assert any("fp8 KV cache needs compute capability 8.9" in c for c in d["changes"])


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
    # the plan's launch already serves float16, so bfloat16 is not a problem of it
    assert not any(f["id"] == "bf16-needs-cc80" and f["status"] == "fail" for f in d["findings"])
    assert any(f["id"] == "attention-heads-tp" for f in d["findings"])  # the plan's checks ran
    # torch on this T4 snapshot has no sm_75: no flag fixes that, so no launch is recommended
    assert d["launch"] is None and any("no-kernel-image" in w for w in d["nothing_fits"])
