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
    write_atomic(path, safetensors_bytes(tensors, metadata))
    return sha256_of(path)


def safetensors_bytes(tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> bytes:
    """The safetensors file of ``tensors``, byte for byte the same in every process: safetensors writes its
    metadata in hash-map order, which changes from process to process, so the header is written again with
    the metadata's keys sorted (same length: only the order changes)."""
    import json

    from safetensors.torch import save
    state = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    raw = save(state, metadata={str(k): str(v) for k, v in (metadata or {}).items()})
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    if "__metadata__" in header:
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    if len(text) > n:
        raise RuntimeError("the canonical safetensors header is longer than safetensors' own")
    return raw[:8] + text + b" " * (n - len(text)) + raw[8 + n:]


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to a temporary name beside ``path``, then rename: a killed writer leaves no file that
    looks complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _header(path: str | os.PathLike) -> tuple[int, dict]:
    """(length, parsed JSON) of a safetensors file's header; ValueError if the length runs past the file."""
    import json
    import struct
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        if n > size - 8:
            raise ValueError(f"{path}: the header length {n} runs past the end of the file")
        return n, json.loads(f.read(n))


def safetensors_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata in a safetensors file's header (no torch; empty for a file without)."""
    return _header(path)[1].get("__metadata__") or {}


def safetensors_intact(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a whole safetensors file: its JSON header parses and the tensors' byte ranges end
    exactly at the end of the file (a truncated or overwritten file fails). Reads the header only, no torch."""
    import struct
    try:
        n, header = _header(path)
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
        return os.path.getsize(path) == 8 + n + end
    except (OSError, ValueError, KeyError, TypeError, IndexError, struct.error):
        return False


def read_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; a missing, truncated or corrupt file is named in the error."""
    from safetensors.torch import load_file
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"missing file: {path}")
    try:
        return load_file(str(path))
    except Exception as err:                 # safetensors raises its own error types for a damaged file
        raise ValueError(f"{path} is not a readable safetensors file (truncated or corrupt: {err}); delete it "
                         "and run again to rebuild it") from None


def load_weights(model: torch.nn.Module, path: str | os.PathLike, sha256: str | None) -> torch.nn.Module:
    """Load safetensors weights into ``model`` after checking the pinned sha256."""
    verify_sha256(path, sha256)
    model.load_state_dict(read_tensors(path))
    return model.eval()
