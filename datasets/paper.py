"""Loaders of the paper profile's datasets from the files that ``datasets.fetch`` verified.

A recipe (``config/paper.yaml``, key ``datasets``) names its source, the archive members to read
(glob patterns, taken in sorted order) and the working size. Images are read from a zip or tar
archive, a folder, or an MNIST idx file, converted to RGB (or kept grey for MNIST), resized (not
cropped, as UD2M does for ImageNet) with PIL's bicubic filter, and returned in [0, 1].
"""
from __future__ import annotations

import fnmatch
import gzip
import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def _members(names: list[str], patterns: list[str]) -> list[str]:
    chosen = sorted({n for n in names for p in patterns if fnmatch.fnmatch(n, p)})
    if not chosen:
        raise FileNotFoundError(f"no member matches {patterns} (the archive holds {len(names)} files)")
    return chosen


def _read_archive(path: Path, patterns: list[str], n: int):
    if path.is_dir():
        files = _members([str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()], patterns)[:n]
        return [(path / f).read_bytes() for f in files]
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return [z.read(m) for m in _members(z.namelist(), patterns)[:n]]
    if tarfile.is_tarfile(path):
        with tarfile.open(path) as t:
            names = _members([m.name for m in t.getmembers() if m.isfile()], patterns)[:n]
            return [t.extractfile(m).read() for m in names]
    raise ValueError(f"{path} is neither a folder, a zip nor a tar archive")


def read_idx_images(path: Path, n: int) -> np.ndarray:
    """MNIST's idx3 format (optionally gzipped): (N, rows, cols) uint8."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    magic, count, rows, cols = np.frombuffer(raw[:16], dtype=">i4")
    if magic != 2051:
        raise ValueError(f"{path} is not an idx3 image file (magic {magic})")
    return np.frombuffer(raw[16:], dtype=np.uint8).reshape(count, rows, cols)[:n]


def load_images(recipe: dict, path: str | Path, n: int) -> torch.Tensor:
    """(n, C, S, S) images in [0, 1] from a verified dataset file, S = recipe['image_size']."""
    path, size = Path(path), int(recipe["image_size"])
    if recipe.get("format") == "idx":
        x = torch.from_numpy(read_idx_images(path, n).copy()).float().div(255).unsqueeze(1)
        pad = (size - x.shape[-1]) // 2
        return F.pad(x, (pad, size - x.shape[-1] - pad) * 2)
    patterns = recipe["members"] if isinstance(recipe["members"], list) else [recipe["members"]]
    images = []
    for blob in _read_archive(path, patterns, n):
        im = Image.open(io.BytesIO(blob)).convert("RGB").resize((size, size), Image.BICUBIC)
        images.append(torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float().div(255))
    if len(images) < n:
        raise ValueError(f"asked for {n} images, the dataset holds {len(images)}")
    return torch.stack(images)
