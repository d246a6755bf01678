"""Atomic file writes: a stage writes to a temporary name and renames, so a killed job leaves
nothing that looks complete (and Snakemake reruns it)."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ipbench.store.files import read_tensors, safetensors_bytes, write_atomic

__all__ = ["read_json", "read_tensors", "write_json", "write_tensors", "write_text"]


def write_text(path, text: str) -> None:
    write_atomic(path, text.encode())


def write_json(path, obj) -> None:
    write_text(path, json.dumps(obj, indent=1, sort_keys=False) + "\n")


def read_json(path):
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"missing file: {path}")
    return json.loads(path.read_text())


def write_tensors(path, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> None:
    """Atomically, and byte-identical for identical tensors and metadata (``priors.store.safetensors_bytes``)."""
    write_atomic(path, safetensors_bytes(tensors, metadata))
