"""``qvdoctor smoke``: one real video inference, with the flags patched until the engine runs.

The pipeline, one module per step:

* :mod:`qvdoctor.model.locate` resolves ``--model`` (a directory, a cached repo id, ``tiny-random``);
* :mod:`qvdoctor.smoke.media` decodes and samples the video once (``qvdoctor.video``), or makes a
  synthetic clip;
* :mod:`qvdoctor.smoke.planning` gives the first attempt's flags (plan + diagnose facts);
* :mod:`qvdoctor.smoke.attempts` runs attempts through :mod:`qvdoctor.smoke.backends` (each in its
  own process group, log kept), triages a failed attempt's log and applies the root cause's patch;
* :mod:`qvdoctor.smoke.report` says what happened; :mod:`qvdoctor.launch` renders the
  ``vllm serve`` command line and the ``--config`` YAML that worked.

Nothing heavy is imported here: torch/vllm/transformers only load in the engine child.
"""

from qvdoctor.smoke.session import SmokeOptions, run_smoke

__all__ = ["SmokeOptions", "run_smoke"]
