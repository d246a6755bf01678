"""Explicit randomness: one ``torch.Generator`` per image, seeded from (profile, task, role, index).

A stage that draws noise for image i uses only generator i, so a number does not depend on the
batch an image runs in, on the other images, or on the order of the jobs (EDM's
StackedRandomGenerator). ``role`` is the solver name, or "measure" for the degradation.
"""
from __future__ import annotations

import hashlib

import torch


def seed_for(profile: str, task: str, role: str, index: int) -> int:
    key = f"{profile}/{task}/{role}/{int(index)}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") & (2**63 - 1)


def generators(profile: str, task: str, role: str, indices, device="cpu") -> list[torch.Generator]:
    return [torch.Generator(device=device).manual_seed(seed_for(profile, task, role, i)) for i in indices]
