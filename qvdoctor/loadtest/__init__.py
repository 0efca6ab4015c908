"""``qvdoctor bench`` / ``monitor``: load a multimodal OpenAI-compatible server and read its metrics.

Layout: :mod:`httpclient` (raw asyncio HTTP/1.1 streaming client), :mod:`client` (one timed
streaming chat request), :mod:`media` (unique media per request and its visual-token arithmetic),
:mod:`stats` (percentiles, one point's summary), :mod:`promtext` (Prometheus text),
:mod:`vllm_metrics` (vLLM's metric names by release), :mod:`sweep` (points, knee, early stop),
:mod:`testserver` (a local OpenAI-compatible server: do-nothing or fixed slots/TTFT/TPOT),
:mod:`ceiling` (the client's own ceiling against that server), :mod:`predict` (the plan's
prediction), :mod:`report` / :mod:`plots` (JSON, markdown, CSV, PNG, HTML)."""
