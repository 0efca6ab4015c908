"""Log triage: find the known failure signatures in a vLLM log and name the root cause.

Signatures are the ``[log]`` tables of the check catalogue (``checks/``; schema in
``docs/checks.md``). Matching is built to stay linear on 100 MB logs and hostile lines:

* every pattern has a literal ``needle``; the text is scanned with ``str.find`` (C speed), never
  with a regex over the whole log; on big logs ``grep -F`` first keeps the lines that contain any
  needle (one C pass for all of them), with the same result;
* a pattern's ``regex`` runs only on a bounded window of the line around the needle (at most
  ``BEFORE`` characters before it and ``AFTER`` after it), so a 1 MB line costs no more than a
  short one, and patterns themselves avoid nested quantifiers (a test checks both);
* numbers in the message become ``log.<group>`` for the entry's templates, so fixes are computed
  from them (``max_model_len = log.estimated``...).

Ranking: the root cause is the earliest *cause* hit (wrappers such as "Engine core initialization
failed" never are); a matched signature that ``explains`` the root (a warning that predicts it)
takes its place. Other causes and warnings follow as contributing, then benign lines as
"not a problem".
"""

from qvdoctor.doctor.triage.docs import main, signatures_markdown
from qvdoctor.doctor.triage.ranking import TriageResult, triage_file, triage_text
from qvdoctor.doctor.triage.scanning import (
           Hit,
           context_numbers,
           last_error,
           mm_limit,
           read_log,
           scan,
)
from qvdoctor.doctor.triage.schema import (
           _CONTEXT,
           Extra,
           Pattern,
           Signature,
           load_signatures,
           signature_of,
)

__all__ = ["Extra", "Hit", "Pattern", "Signature", "TriageResult", "context_numbers", "last_error", "load_signatures",
           "main", "mm_limit", "read_log", "scan", "signature_of", "signatures_markdown", "triage_file", "triage_text",
           "_CONTEXT"]
