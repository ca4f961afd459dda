"""Small helpers shared by the harness, the pipeline client and the reference."""

from __future__ import annotations

import hashlib
from pathlib import Path


def code_fingerprint() -> dict:
    """Where the imported ``pipeline`` package lives and a hash of its Python sources.

    Two runs with the same fingerprint ran the same step code, whatever else
    changed in the working tree meanwhile.
    """
    import pipeline

    root = Path(pipeline.__file__).resolve().parent
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return {"pipeline_path": str(root), "pipeline_sha256": h.hexdigest()[:16]}
