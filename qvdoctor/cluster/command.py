"""Implementation of ``qvdoctor cluster`` (imported only when the command runs; Ray only inside)."""

from __future__ import annotations

from qvdoctor.errors import EXIT_FAIL, EXIT_OK, EXIT_WARN


def run(*, address: str | None, model: str | None, tp: int | None, pp: int | None, timeout: float,
        gloo_timeout: float, json_out: bool, verbose: bool) -> int:
    from qvdoctor.cluster.collect import collect
    from qvdoctor.cluster.findings import cluster_findings
    from qvdoctor.cluster.launchplan import ray_starts, serve_launch
    from qvdoctor.cluster.render import print_report, to_json
    from qvdoctor.cluster.view import build_view
    from qvdoctor.doctor.findings import worst_status

    collected = collect(address, model, timeout=timeout, gloo_timeout=gloo_timeout)
    view = build_view(collected, model=model, tp=tp, pp=pp)
    findings = cluster_findings(view)
    starts = ray_starts(view, findings, collected.gcs_port)
    launch = serve_launch(view, findings, collected.gcs_port)
    code = {"fail": EXIT_FAIL, "warn": EXIT_WARN}.get(worst_status(findings), EXIT_OK)
    if json_out:
        print(to_json(view, findings, starts, launch, code))
    else:
        print_report(view, findings, starts, launch, verbose=verbose)
    return code
