"""Loaders of the paper profile's datasets from the files that ``datasets.fetch`` verified.

A recipe (``config/paper.yaml``, key ``datasets``) names its source, the archive members to read
(glob patterns, taken in sorted order) and the working size. Images are read from a zip or tar
archive, a folder, or an MNIST idx file, converted to RGB (or kept grey for MNIST), resized (not
cropped, as UD2M does for ImageNet) with PIL's bicubic filter, and returned in [0, 1].
Video recipes (``format: frames``) read folders of frames, one folder per video: each video is cut into
clips of consecutive frames (in the frames' natural order), resized to ``frame_size`` (height, width),
as LVTINO's ``load_video_from_frames``.
"""
from __future__ import annotations

import fnmatch
import gzip
import io
import re
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


def _read_archive(path: Path, patterns: list[str], n: int | None = None, choose=None) -> list[tuple[str, bytes]]:
    """(name, bytes) of the first n members matching ``patterns`` in sorted order, or of those ``choose`` picks
    from the matching names (only the chosen members are read)."""
    def chosen(names):
        names = _members(names, patterns)
        return choose(names) if choose else sorted(names)[:n]
    if path.is_dir():
        return [(f, (path / f).read_bytes()) for f in chosen([str(p.relative_to(path)) for p in path.rglob("*")
                                                               if p.is_file()])]
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return [(m, z.read(m)) for m in chosen(z.namelist())]
    if tarfile.is_tarfile(path):
        with tarfile.open(path) as t:
            return [(m, t.extractfile(m).read()) for m in chosen([m.name for m in t.getmembers() if m.isfile()])]
    raise ValueError(f"{path} is neither a folder, a zip nor a tar archive")


def natural_key(name: str) -> list:
    """Sort key with digit runs compared as numbers ('9.png' before '10.png')."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _patterns(recipe: dict) -> list[str]:
    return recipe["members"] if isinstance(recipe["members"], list) else [recipe["members"]]


def _rgb(blob: bytes, size: tuple[int, int]) -> torch.Tensor:
    """An image file as a (3, H, W) tensor in [0, 1], bicubic-resized to size = (H, W)."""
    im = Image.open(io.BytesIO(blob)).convert("RGB").resize((size[1], size[0]), Image.BICUBIC)
    return torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float().div(255)


def load_clips(recipe: dict, path: str | Path, n: int, frames: int) -> torch.Tensor:
    """(n, frames, 3, H, W) clips in [0, 1]: the frames matching the recipe's members, grouped by folder (one video
    each, folders in natural order), each video cut into consecutive non-overlapping clips of ``frames`` frames
    from its first; the first n clips."""
    size = tuple(recipe["frame_size"])
    found = {}

    def first_clips(names):
        videos: dict[str, list[str]] = {}
        for name in sorted(names, key=natural_key):
            videos.setdefault(name.rsplit("/", 1)[0] if "/" in name else "", []).append(name)
        clips = [frames_of[start:start + frames] for folder in sorted(videos, key=natural_key)
                 for frames_of in [videos[folder]] for start in range(0, len(frames_of) - frames + 1, frames)]
        found.update(videos=len(videos), clips=len(clips))
        return [name for clip in clips[:n] for name in clip]

    blobs = [blob for _, blob in _read_archive(Path(path), _patterns(recipe), choose=first_clips)]
    if found["clips"] < n:
        raise ValueError(f"asked for {n} clips of {frames} frames, the dataset's {found['videos']} videos hold "
                         f"{found['clips']}")
    return torch.stack([_rgb(b, size) for b in blobs]).view(n, frames, 3, *size)


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
    images = [_rgb(blob, (size, size)) for _, blob in _read_archive(path, _patterns(recipe), n)]
    if len(images) < n:
        raise ValueError(f"asked for {n} images, the dataset holds {len(images)}")
    return torch.stack(images)
