"""Facts about a machine: gathered live (:func:`gather`) or loaded from a snapshot file."""

from qvdoctor.facts.snapshot import Facts, load_facts

__all__ = ["Facts", "load_facts", "gather"]


def gather(*, probe: bool = False, scan_libraries: bool = True, probe_timeout: float = 60.0) -> Facts:
    from qvdoctor.facts.live import gather as _gather

    return _gather(probe=probe, scan_libraries=scan_libraries, probe_timeout=probe_timeout)
