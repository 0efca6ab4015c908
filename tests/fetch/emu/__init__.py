"""Loopback emulators of the hubs qvdoctor fetch talks to, speaking the wire protocols written
down in the project's download_protocols.md (checklist in its §7), with fault injection.

``hf``: Hugging Face Hub + CDN; ``ms``: ModelScope API + OSS; ``git``: git http-backend plus
the LFS batch API. All bind 127.0.0.1 only. ``python -m fetch.emu`` (with tests/ on sys.path)
runs them as a process for benchmarks."""
