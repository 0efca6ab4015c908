"""``qvdoctor bench`` against a local server whose slots, TTFT and time per token are set
exactly (qvdoctor.loadtest.testserver): what it measures must be what the server was told, to
within 10 % beyond what the server itself recorded doing for the same requests (on a loaded
machine the server's own timers run late; that lateness is the server's, not the client's)."""

from __future__ import annotations

import pytest

from conftest import run_qvdoctor
from tests.loadtest.benchfix import (CLIP, CLIP_TOKENS, assert_measures_the_server, result_json, server, server_p50_ms,
                                     server_records, split_points)

SLOTS, TTFT_MS, TPOT_MS = 4, 200.0, 20.0
TOLD = {"ttft": TTFT_MS, "tpot": TPOT_MS, "itl": TPOT_MS}


def bench(url: str, *args: str):
    return run_qvdoctor("bench", "--url", url, "--synthetic-video", CLIP, "--max-tokens", "8", "--json", *args, timeout=240)


@pytest.fixture(scope="module")
def sweep():
    with server("--slots", str(SLOTS), "--ttft", str(TTFT_MS / 1000), "--tpot", str(TPOT_MS / 1000),
                "--visual-tokens", str(CLIP_TOKENS)) as url:
        res = bench(url, "--concurrency", "1,2,4,8,16,32", "--requests", "8", "--slo", "ttft=300ms", "--no-ceiling")
        out = result_json(res)
        records = split_points(server_records(url, 8), out["points"])
    return res, out, records


def test_json_has_the_documented_shape(sweep):
    res, out, _ = sweep
    assert res.returncode == 0, res.stderr[-2000:]
    assert {"points", "knee", "client_ceiling", "prediction"} <= set(out)
    for p in out["points"]:
        assert {"concurrency", "rate", "requests", "ok", "errors", "ttft_ms", "tpot_ms", "itl_ms", "e2e_ms",
                "req_per_s", "output_tok_per_s", "prompt_tokens", "visual_tokens"} <= set(p)
        for key in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"):
            assert set(p[key]) >= {"p50", "p90", "p99"}


def test_ttft_and_tpot_within_ten_percent_of_what_the_server_was_told(sweep):
    _, out, records = sweep
    below = [(p, r) for p, r in zip(out["points"], records) if p["concurrency"] <= SLOTS]
    assert [p["concurrency"] for p, _ in below] == [1, 2, 4]
    for p, recs in below:
        assert p["ok"] == p["requests"] == len(recs) == 8, p
        assert_measures_the_server(p, server_p50_ms(recs), TOLD)


def test_knee_is_the_slot_count_and_the_sweep_stops_past_it(sweep):
    _, out, _ = sweep
    assert out["knee"]["concurrency"] == SLOTS
    assert [p["concurrency"] for p in out["points"]] == [1, 2, 4, 8]  # 16 and 32 never run
    assert "stopped early" in out["stopped"]
    over = out["points"][-1]
    assert over["ttft_ms"]["p90"] > 300 and over["meets_slo"] is False
    # the queue the server reports explains the TTFT past the knee
    assert over["ttft_breakdown_ms"]["queue_ms"] > 50 > out["points"][0]["ttft_breakdown_ms"]["queue_ms"]


def test_unique_media_keeps_the_multimodal_cache_cold_and_usage_agrees(sweep):
    _, out, _ = sweep
    for p in out["points"]:
        assert p["server_cache"]["mm_cache"]["hits"] == 0
        assert p["visual_tokens"] == CLIP_TOKENS == p["visual_tokens_expected"]
        assert p["usage_mismatch"] is False
    assert out["usage_check"]["mismatch"] is False


def test_same_media_shows_cache_hits():
    with server("--visual-tokens", str(CLIP_TOKENS)) as url:
        out = result_json(bench(url, "--concurrency", "2", "--requests", "6", "--same-media", "--no-ceiling"))
    # 6 requests with one clip: the first is a miss, the other five hit (the text baseline has no media)
    assert out["points"][0]["server_cache"]["mm_cache"] == {"queries": 6, "hits": 5, "hit_rate": round(5 / 6, 4)}


def test_misreported_usage_is_flagged():
    with server("--visual-tokens", str(CLIP_TOKENS), "--misreport-usage", "7") as url:
        res = bench(url, "--concurrency", "1", "--requests", "3", "--no-ceiling")
    out = result_json(res)
    p = out["points"][0]
    assert p["visual_tokens"] == CLIP_TOKENS + 7 and p["visual_tokens_expected"] == CLIP_TOKENS
    assert p["usage_mismatch"] is True and out["usage_check"]["mismatch"] is True
    assert res.returncode == 1


def test_failures_are_counted_apart_and_never_in_latency():
    with server("--slots", "2", "--ttft", str(TTFT_MS / 1000), "--tpot", str(TPOT_MS / 1000),
                "--visual-tokens", str(CLIP_TOKENS), "--fail-every", "3") as url:
        res = bench(url, "--concurrency", "2", "--requests", "12", "--no-ceiling")
        out = result_json(res)
        recs = server_records(url, 8)
    p = out["points"][0]
    assert p["requests"] == 12 and p["errors"] >= 3 and p["ok"] + p["errors"] == 12 == len(recs) + p["errors"]
    assert "HTTP 500" in next(iter(p["error_messages"]))
    # failed answers come back at once: had they counted, the TTFT p50 would be far below the server's
    assert_measures_the_server(p, server_p50_ms(recs), TOLD)
    assert p["ttft_ms"]["p50"] > 0.9 * TTFT_MS
    assert res.returncode == 1  # failed requests are a warning


def test_rate_sweep_is_open_loop_at_the_asked_rate():
    with server("--slots", "8", "--ttft", "0.05", "--tpot", "0.01", "--visual-tokens", str(CLIP_TOKENS)) as url:
        out = result_json(bench(url, "--rate", "4,8", "--requests", "12", "--no-ceiling", "--seed", "1"))
        records = split_points(server_records(url, 8), out["points"])
    assert [p["rate"] for p in out["points"]] == [4.0, 8.0] and all(p["concurrency"] is None for p in out["points"])
    for p, recs in zip(out["points"], records):
        assert p["ok"] == 12
        srv = server_p50_ms(recs)
        assert srv["ttft"] >= 50 - 0.5 and srv["ttft"] - 0.5 <= p["ttft_ms"]["p50"] <= srv["ttft"] + 5
        assert 0.4 * p["rate"] < p["req_per_s"] < 2.5 * p["rate"]  # Poisson arrivals: 12 of them
    assert out["knee"]["rate"] == 8.0


def test_no_point_meeting_the_slo_is_exit_2():
    with server("--ttft", "0.05", "--visual-tokens", str(CLIP_TOKENS)) as url:
        res = bench(url, "--concurrency", "1,2", "--requests", "2", "--slo", "ttft=10ms", "--no-ceiling")
    out = result_json(res)
    assert res.returncode == 2 and out["knee"]["concurrency"] is None
    assert [p["concurrency"] for p in out["points"]] == [1]  # the first point already missed: no second


def test_duration_cap_lets_the_requests_in_flight_finish():
    with server("--slots", "2", "--ttft", "0.05", "--tpot", "0.05", "--visual-tokens", str(CLIP_TOKENS)) as url:
        out = result_json(bench(url, "--concurrency", "2", "--duration", "1", "--no-ceiling"))
        recs = server_records(url, 8)
    p = out["points"][0]
    # 0.4 s per request, 2 at a time: about 6 requests start within the second; none is cut
    assert 4 <= p["requests"] <= 8 and p["errors"] == 0 and p["ok"] == p["requests"] == len(recs)
    # none was sent after the second (the first went out at its start) ...
    assert recs[-1]["head"] - recs[0]["head"] < 1.0 + 0.1
    # ... and the point lasted until the last one in flight had finished, and not much longer
    # (each worker sends until the second is over, so never less than 1 s)
    served = max(r["end"] for r in recs) - recs[0]["head"]
    assert 1.0 <= p["duration_s"] and served - 0.05 <= p["duration_s"] <= served + 0.25, (p["duration_s"], served)


def test_a_duration_point_encodes_the_media_it_can_send_not_the_cap():
    """Unique media are encoded before a point; a duration-bounded point prepares what it can send
    in its duration (an upper bound from the previous point's rate, +25 %), not the 1000-request
    cap, so the run's time goes to measuring. (On the GPU host the cap's encoding once took the
    whole --max-time before the first request.)"""
    with server("--slots", "2", "--ttft", "0.05", "--tpot", "0.05", "--visual-tokens", str(CLIP_TOKENS)) as url:
        res = bench(url, "--concurrency", "1,2", "--duration", "1.5", "--max-time", "60", "--no-ceiling")
    out = result_json(res)
    prepared = [int(line.split()[1]) for line in res.stderr.splitlines() if line.startswith("preparing ")]
    # 0.4 s a request: about 4 (one at a time) and 8 (two) requests fit in 1.5 s
    assert [p["concurrency"] for p in out["points"]] == [1, 2] and all(p["errors"] == 0 for p in out["points"])
    assert len(prepared) == 2 and all(16 <= n <= 40 for n in prepared), res.stderr
    assert all(p["duration_s"] >= 1.5 and p["requests"] < n for p, n in zip(out["points"], prepared)), res.stderr


def test_a_duration_point_that_runs_out_of_requests_says_so():
    with server("--slots", "2", "--ttft", "0.01", "--tpot", "0.01", "--visual-tokens", str(CLIP_TOKENS)) as url:
        res = bench(url, "--concurrency", "2", "--duration", "5", "--requests", "4", "--no-ceiling")
    p = result_json(res)["points"][0]
    assert p["requests"] == p["ok"] == 4 and p["duration_s"] < 5
    assert "all 4 prepared requests were sent before --duration 5 s ended (raise --requests)" in res.stderr


def test_requests_the_time_cap_cuts_say_so():
    """A request still running when --max-time ends is failed, and says it was cut by the cap,
    not that the server timed out (it had the run's remaining time, not --timeout)."""
    with server("--slots", "1", "--ttft", "0.05", "--tpot", "0.5", "--visual-tokens", str(CLIP_TOKENS)) as url:
        res = bench(url, "--concurrency", "2", "--requests", "6", "--max-time", "3", "--no-ceiling")
    p = result_json(res)["points"][0]
    assert p["errors"] >= 1 and p["ok"] + p["errors"] == p["requests"]
    assert set(p["error_messages"]) == {"cut by the run's time cap (--max-time) before it finished"}, p["error_messages"]
