"""Saving and loading weights: safetensors only, every file checked against its sha256.

The checksum functions import no torch (planning the DAG reads them); safetensors' torch half is imported
where weights are read or written."""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


class ChecksumError(RuntimeError):
    """A file's sha256 differs from the pinned or recorded one."""


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def verify_sha256(path: str | os.PathLike, expected: str | None) -> str:
    """Return the file's sha256; raise ChecksumError if ``expected`` is given and differs."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"missing file: {path}" + (f" (expected sha256 {expected})" if expected else ""))
    got = sha256_of(path)
    if expected is not None and got != expected:
        raise ChecksumError(f"checksum mismatch for {path}: expected sha256 {expected}, got {got}. "
                            "The file is corrupt or not the pinned one; delete it and fetch or retrain it.")
    return got


def save_weights(model: torch.nn.Module, path: str | os.PathLike, metadata: dict | None = None) -> str:
    """Write ``model.state_dict()`` as safetensors atomically (temporary name, then rename); return sha256."""
    return save_tensors(model.state_dict(), path, metadata)


def save_tensors(tensors: dict[str, torch.Tensor], path: str | os.PathLike, metadata: dict | None = None) -> str:
    """Write named tensors as safetensors atomically (temporary name, then rename); return sha256."""
    from safetensors.torch import save_file
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        save_file(state, tmp, metadata={k: str(v) for k, v in (metadata or {}).items()})
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return sha256_of(path)


def load_weights(model: torch.nn.Module, path: str | os.PathLike, sha256: str | None) -> torch.nn.Module:
    """Load safetensors weights into ``model`` after checking the pinned sha256."""
    from safetensors.torch import load_file
    verify_sha256(path, sha256)
    model.load_state_dict(load_file(str(path)))
    return model.eval()
