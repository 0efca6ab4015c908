
# ---- verify: qvdoctor's kernel reader over the installed libraries; fails the build when
# ---- torch / vLLM / xformers carry no kernel image for the target compute capability.
FROM runtime AS verify
ARG CC={{CC}}
COPY qvdoctor-verify/ /opt/qvdoctor-verify/
RUN PYTHONPATH=/opt/qvdoctor-verify python -m qvdoctor.image.verify --cc "${CC}" \
        --policy /opt/qvdoctor-verify/policy.json --report /opt/qvdoctor-verify/kernel-report.json

# ---- final: the runtime stage plus the verification report, labels and serving defaults.
FROM runtime AS final
COPY --from=verify /opt/qvdoctor-verify/kernel-report.json /opt/qvdoctor/kernel-report.json
{{ENV_LINES}}
LABEL {{LABELS}}
EXPOSE 8000
# `docker run IMAGE MODEL [vllm serve flags]`: the defaults come first, so flags given here win.
ENTRYPOINT ["/bin/sh", "-c", "exec vllm serve ${QVDOCTOR_SERVE_ARGS} \"$@\"", "vllm-serve"]
