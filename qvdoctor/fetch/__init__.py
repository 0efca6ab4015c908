"""``qvdoctor fetch``: resumable, verified downloads from Hugging Face, hf-mirror, ModelScope and
git-lfs.

Layout: ``sources/`` list a repo through each hub's own API and say how to GET a file;
``engine`` moves bytes (ranged part files, several connections, sha256 as bytes arrive);
``partfile`` keeps the resume journal; ``manifest`` records and re-verifies what landed;
``probe`` picks a source for ``--source auto``; ``progress`` renders events; ``run`` ties them.
"""
